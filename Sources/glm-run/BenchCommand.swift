// BenchCommand.swift — `glm-run bench`: limits, kernel figures and end-to-end
// tokens per second, each next to the limit measured in the same run.

import ArgumentParser
import Foundation
import GLMBench

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the machine's limits, every kernel at GLM-130B shapes and end-to-end tokens/s.",
        discussion: """
        A full run takes several minutes and about 5 GB of memory (the FP32 FFN up projection alone is \
        3.2 GB). Results go to --output (default: ./glm-bench-results, made in the current directory) as <cpu>-<date>.json with a roofline SVG beside it; --quick writes nothing unless --output is given. \
        --quick runs small shapes in seconds (CI uses it to check the bench works, not how fast it is).
        """
    )

    @Flag(help: "Small shapes, a few seconds.") var quick = false
    @Option(help: "GLM-130B-shaped layers for the end-to-end figures (one is about 0.9 GB in INT4).") var layers = 2
    @Option(help: "Timed repetitions per figure (median and spread are reported).") var repetitions = 5
    @Option(help: "Comma-separated thread counts (default: 1 and one per physical core).") var threads: String?
    @Flag(help: "Skip the end-to-end figures.") var skipEndToEnd = false
    @Flag(help: "Skip the prefill mat-mat figures (the slow part).") var skipPrefill = false
    @Flag(help: "Skip the kernel figures (the machine's limits are always measured).") var skipKernels = false
    @Flag(help: "Skip batched decode (1 to 16 sequences per decode step).") var skipBatchedDecode = false
    @Flag(help: "Skip the chat figure (a ChatGLM3-shaped second turn with and without the first turn's KV cache).") var skipChatPrefix = false
    @Flag(help: "Also measure peak resident memory: a ChatGLM-6B-shaped q4_0 model generating 512 tokens at context 2048 (about 5 GB, minutes).") var memory = false
    @Option(help: "Comma-separated weight types of the product figures (q4_row,q4_group,q4_0,q8_0,f16,f32; default all).") var types: String?
    @Option(help: "A label appended to the results file name, for partial runs.") var tag = ""
    @Flag(help: "Print the report as JSON on stdout (the table goes to stderr).") var json = false
    @Option(help: "Folder for the results JSON and SVG (default: ./\(BenchCommand.defaultOutput); --quick writes only when this is given).")
    var output: String?

    static let defaultOutput = "glm-bench-results"

    func run() throws {
        var options = BenchOptions()
        options.quick = quick
        options.layers = layers
        options.repetitions = repetitions
        options.skipEndToEnd = skipEndToEnd
        options.skipPrefill = skipPrefill
        options.skipKernels = skipKernels
        options.skipBatchedDecode = skipBatchedDecode
        options.skipChatPrefix = skipChatPrefix
        options.memory = memory
        if let types {
            let known: Set<String> = ["q4_row", "q4_group", "q4_0", "q8_0", "f16", "f32"]
            options.types = Set(types.split(separator: ",").map(String.init))
            guard options.types.isSubset(of: known) else {
                throw ValidationError("--types: '\(types)' names a type outside \(known.sorted().joined(separator: ", "))")
            }
        }
        options.tag = tag
        guard (1...64).contains(layers), (1...1000).contains(repetitions) else {
            throw ValidationError("--layers must be in 1...64 and --repetitions in 1...1000")
        }
        if let threads {
            options.threadCounts = try threads.split(separator: ",").map {
                guard let n = Int($0), (1...RuntimeOptions.maxThreads).contains(n) else {
                    throw ValidationError("--threads: '\($0)' is not a thread count in 1...\(RuntimeOptions.maxThreads)")
                }
                return n
            }
        }
        let report = try Bench.run(options) { line in
            // unbuffered, so each figure appears as it is measured, even into a pipe or a file
            if json { printError(line) } else { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        }
        if json { print(try Bench.json(report)) }
        // a quick run checks that the bench works: it keeps nothing unless asked to
        guard !quick || output != nil else { return }
        let path = try Bench.save(report, in: output ?? BenchCommand.defaultOutput)
        printError("results: \(path) (roofline: \(path.replacingOccurrences(of: ".json", with: ".svg")))")
    }
}
