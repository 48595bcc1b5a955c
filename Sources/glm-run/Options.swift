// Options.swift — argument groups shared by several subcommands, and the one
// place errors become a single clear line with a non-zero exit.

import ArgumentParser
import Foundation
import GLMRuntime
import KernelBridge
import Plugins

struct RuntimeOptions: ParsableArguments {
    @Option(name: [.customShort("t"), .long], help: "Threads (default: one per physical core, or OMP_NUM_THREADS).")
    var threads: Int?

    @Flag(help: "Bind thread i to physical core i.")
    var bind = false

    @Option(name: .customLong("plugin"), help: "Load a kernel plugin (a shared library with the glm_plugin.h ABI); repeatable.")
    var plugins: [String] = []

    @Option(name: .customLong("kernel"), help: "Force a provider for an operation, e.g. matvec.q4_0=example-q4; repeatable (also GLM_KERNEL).")
    var kernels: [String] = []

    @Flag(name: .shortAndLong, help: "Print which provider serves each weight product.")
    var verbose = false

    @Flag(help: "Run each layer unfused: every bias add, residual, LayerNorm and activation its own pass.")
    var noFusion = false

    @Option(help: "Activations of the quantized weight products: q16 (default: decode takes 16-bit blocks and integer dot products; the golden models' greedy tokens are unchanged), f32, q16-prefill (q16 in prefill too, with AVX-512 VNNI: 1.2-1.6x faster prompts, moves logits more), or q8 (8-bit blocks in decode and, with AVX-512 VNNI, in prefill: fastest, changes some greedy tokens).")
    var activations: ActivationPrecision = .default

    @Option(help: "KV cache element type: f32 (default) or f16 (half the memory; keys and values rounded to fp16, the softmax stays FP32; keeps the golden models' greedy tokens, but moves logits more than an fp16 run).")
    var kvType: KVCacheType = .default

    /// More threads than any machine this runs on has cores (OpenMP takes an int).
    static let maxThreads = 4096

    func validate() throws {
        if let threads, !(1...RuntimeOptions.maxThreads).contains(threads) {
            throw ValidationError("--threads must be in 1...\(RuntimeOptions.maxThreads), got \(threads)")
        }
    }

    /// Applies the thread settings.
    func apply() throws {
        try validate()
        try Threads.configure(count: threads, bind: bind)
    }

    /// The registry with GLM_PLUGIN_PATH's plugins (skipped with a warning when
    /// unusable), --plugin's (an error when unusable) and the forced choices.
    func registry() throws -> KernelRegistry {
        let registry = try KernelRegistry(activations: activations)
        let environment = ProcessInfo.processInfo.environment
        registry.loadPluginPath(environment["GLM_PLUGIN_PATH"], warn: printError)
        for path in plugins { try registry.loadPlugin(path: path, explicit: true) }
        try registry.force(options: (environment["GLM_KERNEL"].map { [$0] } ?? []) + kernels)
        return registry
    }

    /// The kernels a model runs on; with --verbose, says which provider serves what.
    func kernelSet(for model: GLMModel? = nil) throws -> KernelDispatcher {
        let registry = try registry()
        if verbose {
            let types = Set(model.map { m in [m.tokenEmbedding, m.output] + m.layers.flatMap { [$0.qkv, $0.attentionOutput, $0.ffnUp, $0.ffnDown] } }?
                .map(\.type) ?? WeightType.allCases)
            for type in types.sorted(by: { $0.rawValue < $1.rawValue }) {
                for op in [OperationName.matvec(type), OperationName.matmul(type)] {
                    let p = registry.choice(for: op)
                    printError("kernel \(op): \(p.name) \(p.version)")
                }
            }
        }
        return registry.dispatcher()
    }
}

/// How tokens are sampled (run and chat share them).
struct SamplingOptions: ParsableArguments {
    @Option(help: "Most tokens to generate (per blank with --mask, per answer in chat).") var maxTokens = 128
    @Option(help: "Temperature; 0 is greedy.") var temp: Float = 0.7
    @Option(help: "Sample from the k most likely tokens (0: all).") var topK = 40
    @Option(help: "Sample from the smallest set of tokens with probability >= p.") var topP: Float = 0.9
    @Option(help: "Penalty for repeating tokens (1: none).") var repeatPenalty: Float = 1.1
    @Option(help: "Random seed; the same seed gives the same output.") var seed: UInt64 = 0

    var parameters: GenerateParameters {
        var p = GenerateParameters()
        (p.maxTokens, p.temperature, p.topK, p.topP, p.repetitionPenalty, p.seed) = (maxTokens, temp, topK, topP, repeatPenalty, seed)
        return p
    }

    func validate() throws { try parameters.validate() }
}

/// Loads a model file, turning every failure into one line naming the file.
func loadModel(_ path: String) throws -> GLMModel {
    guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): no such file") }
    return try GLMModel(path: path)
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// The process's peak resident memory (VmHWM from /proc/self/status) for reports.
func peakResidentMemory() -> String {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return "unknown" }
    return String(format: "%.1f MB", kb / 1024)
}

extension ActivationPrecision: ExpressibleByArgument {}

/// `--ids 1,2,3` as token ids; a clear error for anything else.
func parseIDs(_ text: String) throws -> [Int32] {
    let ids = try text.split(separator: ",").map { part -> Int32 in
        guard let id = Int32(part.trimmingCharacters(in: .whitespaces)) else { throw CLIError("--ids: '\(part)' is not a token id") }
        return id
    }
    guard !ids.isEmpty else { throw CLIError("--ids is empty") }
    return ids
}

extension KVCacheType: ExpressibleByArgument {}
