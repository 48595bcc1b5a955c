// Bench.swift — one bench run: the machine's limits at 1 and all threads, then
// every kernel figure, then end to end, each printed as it is measured; the
// report is returned for JSON and the roofline.

import Foundation
import KernelBridge

public struct BenchOptions: Sendable {
    public var quick = false
    public var repetitions = 5
    public var layers = 2
    /// Thread counts for limits, decode and end to end (default: 1 and all cores).
    public var threadCounts: [Int] = []
    public var skipEndToEnd = false
    /// Skip the (slow) prefill mat-mat figures.
    public var skipPrefill = false
    /// Skip the kernel figures (the limits are always measured).
    public var skipKernels = false
    public var skipBatchedDecode = false
    public var skipChatPrefix = false
    /// Run the memory figure (a ChatGLM-6B-shaped model generating 512 tokens at context 2048, ~4 GB and minutes).
    public var memory = false
    /// Weight types of the product figures (empty: all).
    public var types: Set<String> = []
    /// Appended to the results file name (e.g. "decode").
    public var tag = ""
    public init() {}
}

public enum Bench {
    public static func run(_ options: BenchOptions, log: @escaping (String) -> Void) throws -> BenchReport {
        let topology = try Topology.query()
        let isa = InstructionSet.best
        let all = Threads.defaultCount
        let threadCounts = options.threadCounts.isEmpty ? Array(Set([1, all])).sorted() : options.threadCounts.sorted()
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        var machine = MachineFigures(cpu: topology.cpuModel.isEmpty ? "unknown-cpu" : topology.cpuModel, cores: topology.cores,
                                     hardware_threads: topology.hardwareThreads, isa: isa.displayName, l1d_bytes: topology.l1dBytes,
                                     l2_bytes: topology.l2Bytes, l3_bytes: topology.l3Bytes, limits: [])
        log("\(machine.cpu): \(topology.cores) cores, \(topology.hardwareThreads) threads, kernels \(isa.displayName)")
        for threads in threadCounts {
            let l = try measureLimits(threads: threads, isa: isa, quick: options.quick, topology: topology)
            machine.limits.append(l)
            log(Table.limitsRow(l))
        }
        var report = BenchReport(date: formatter.string(from: Date()), quick: options.quick, machine: machine)
        report.tag = options.tag
        var kernels = KernelBench(kernels: try Kernels(isa: isa), machine: machine, quick: options.quick,
                                  repetitions: options.repetitions, log: log)
        kernels.prefill = !options.skipPrefill
        kernels.types = options.types
        if !options.skipKernels {
            log("")
            log(Table.kernelHeader)
            report.kernels += try kernels.elementwise(threads: threadCounts.last!)
            report.kernels += try kernels.attention(threads: threadCounts.last!)
            report.kernels += try kernels.products(threadCounts: threadCounts)
        }
        if !options.skipEndToEnd {
            log("")
            let e2e = EndToEndBench(machine: machine, quick: options.quick, repetitions: options.repetitions, log: log)
            report.end_to_end = try e2e.run(layers: options.layers, threadCounts: threadCounts)
            report.extrapolation = e2e.extrapolate(report.end_to_end, kernels: report.kernels, layers: options.layers)
            if let x = report.extrapolation {
                log(String(format: "GLM-130B (70 layers, %.1f GB in INT4) on this machine: decode %.2f s/token, prefill %.3f s/token",
                           x.model_bytes / 1e9, x.decode_s_per_token, x.prefill_s_per_token))
            }
        }
        if !options.skipBatchedDecode {
            log("")
            let batched = BatchedDecodeBench(machine: machine, quick: options.quick, repetitions: options.repetitions, log: log)
            report.batched_decode = try batched.run(layers: options.layers, threads: threadCounts.last!)
        }
        if options.memory {
            log("")
            report.memory = try MemoryBench(quick: options.quick, log: log).run(threads: threadCounts.last!)
        }
        if !options.skipChatPrefix {
            log("")
            let chat = ChatPrefixBench(quick: options.quick, repetitions: max(3, options.repetitions / 2), log: log)
            report.chat_prefix = try chat.run(layers: options.layers, threads: threadCounts.last!)
        }
        try Threads.configure()
        return report
    }

    /// Writes `<dir>/<cpu>-<date>.json` and the roofline `.svg` beside it; returns the JSON path.
    public static func save(_ report: BenchReport, in directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cpu = report.machine.cpu.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
            .split(separator: "-").joined(separator: "-")
        let suffix = (report.quick ? "-quick" : "") + (report.tag.isEmpty ? "" : "-" + report.tag)
        let base = (directory as NSString).appendingPathComponent("\(cpu)-\(report.date)\(suffix)")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: URL(fileURLWithPath: base + ".json"))
        try Roofline.svg(report).write(toFile: base + ".svg", atomically: true, encoding: .utf8)
        return base + ".json"
    }

    public static func json(_ report: BenchReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}
