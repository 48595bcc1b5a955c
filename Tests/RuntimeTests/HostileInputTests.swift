// HostileInputTests.swift — small crafted files of every class of hostile
// input, run through the real `glm-run` binary: each must end within seconds
// with one error line and an exit code below 128 (no trap, no abort, no
// signal), never a silent wrong answer. The classes: conversions of file
// values that would trap, byte counts that overflow, nesting and
// amplification, allocations sized by untrusted fields, non-finite weights,
// and command-line numbers.

import Foundation
@testable import GLMRuntime
import Testing

private let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// glm-run beside the test bundle (swift build --build-tests builds both).
private let glmRun: String = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("glm-run").path

private let scratch: String = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-hostile-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

private struct Outcome { let status: Int32; let stdout: String; let stderr: String; let seconds: Double }

private func glmRun(_ arguments: [String], seconds limit: Double = 20) throws -> Outcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: glmRun)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let start = Date()
    try process.run()
    let deadline = Date().addingTimeInterval(limit)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { process.terminate(); process.waitUntilExit() }
    let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return Outcome(status: process.terminationStatus, stdout: stdout, stderr: stderr, seconds: Date().timeIntervalSince(start))
}

/// The run ended by itself with an error exit below 128 and one error line naming `expected`.
private func expectCleanError(_ arguments: [String], _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let o = try glmRun(arguments)
    let lines = o.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
    #expect(o.status > 0 && o.status < 128, "exit \(o.status): \(o.stderr)", sourceLocation: sourceLocation)
    #expect(lines.count == 1 && o.stderr.contains(expected), "\(arguments): \(o.stderr)", sourceLocation: sourceLocation)
    #expect(o.seconds < 15, "took \(o.seconds) s", sourceLocation: sourceLocation)
}

/// The seed model (glm-130b-tiny, q4_0, with a tokenizer) with metadata changed.
private func model(_ name: String, _ change: (inout GGUFWriter) -> Void) throws -> String {
    let seed = try GGUFFile(path: repo.appendingPathComponent("Tests/Fuzz/corpus/gguf/glm130b-tiny-q4_0-tokenizer.gguf").path)
    var writer = try GGUFWriter(copying: seed)
    change(&writer)
    let path = scratch + "/" + name + ".gguf"
    try writer.write(to: path)
    return path
}

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
private func ggufString(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

@Suite("Hostile inputs through glm-run", .serialized)
struct HostileInputTests {
    @Test("the binary is there")
    func binary_exists() { #expect(FileManager.default.isExecutableFile(atPath: glmRun), "\(glmRun)") }

    @Test("file values that would trap a conversion")
    func trappingConversions_areErrors() throws {
        let a = "glm130b"
        // an optional id stored as 0xFFFFFFFF means absent: the model still runs
        let padNone = try model("pad-none") { $0.set(ModelKeys.padToken, .uint32(0xFFFF_FFFF)) }
        #expect(try glmRun(["logits", padNone, "--ids", "1,2"]).status == 0)
        try expectCleanError(["logits", try model("smask-huge") { $0.set(ModelKeys.smaskToken, .uint32(0xFFFF_FFF0)) }, "--ids", "1"], "smask")
        try expectCleanError(["logits", try model("layers-huge") { $0.set(ModelKeys.blockCount(a), .uint64(1 << 62)) }, "--ids", "1"], "layers")
        try expectCleanError(["logits", try model("mask-neg") { $0.set(ModelKeys.maskToken, .int64(-5)) }, "--ids", "1"], "token id")
        try expectCleanError(["tokenize", try model("types-huge") { w in
            w.set(TokenizerKeys.types, .array(.uint32, (0..<1000).map { _ in .uint32(1 << 31) }))
        }, "hello"], "token type")
        try expectCleanError(["logits", try model("context-1") { $0.set(ModelKeys.contextLength(a), .uint32(1)) }, "--ids", "1,2"], "context")
    }

    @Test("config.json numbers that do not fit: 1e300, 2^40, -1")
    func configNumbers_areErrors() throws {
        for (key, value, expected) in [("hidden_size", "1e300", "hidden_size"), ("num_layers", "1099511627776", "num_layers"),
                                       ("vocab_size", "-1", "vocab_size"), ("num_layers", "16777216", "layers 16777216 exceeds")] {
            let dir = scratch + "/config-\(key)-\(value)"
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let golden = repo.appendingPathComponent("Tests/Fixtures/chatglm-6b-tiny")
            var text = try String(contentsOf: golden.appendingPathComponent("config.json"), encoding: .utf8)
            text = text.replacingOccurrences(of: #""\#(key)": [0-9]+"#, with: "\"\(key)\": \(value)", options: .regularExpression)
            try text.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: golden.appendingPathComponent("model.safetensors").path, toPath: dir + "/model.safetensors")
            try expectCleanError(["convert", dir, "-o", dir + "/out.gguf"], expected)
        }
    }

    @Test("byte counts that overflow, in GGUF and safetensors")
    func overflowingByteCounts_areErrors() throws {
        // a tensor of dims 2^39 x 2^39 x 2^39 (each dimension is allowed, the product is not)
        var writer = GGUFWriter()
        writer.set(ModelKeys.architecture, .string("glm130b"))
        writer.declareTensor("token_embd.weight", shape: [1 << 39, 1 << 39, 1 << 39], type: .f32, byteCount: 0)
        let path = scratch + "/overflow.gguf"
        try writer.write(to: path)
        try expectCleanError(["info", path], "more bytes than a file can hold")
        // safetensors: a shape whose byte count overflows
        let header = Data(#"{"w": {"dtype": "F64", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}}"#.utf8)
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        let dir = scratch + "/st-overflow"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (file + header).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        try FileManager.default.copyItem(atPath: repo.appendingPathComponent("Tests/Fixtures/chatglm-6b-tiny/config.json").path, toPath: dir + "/config.json")
        try expectCleanError(["convert", dir, "-o", dir + "/out.gguf"], "does not match")
    }

    @Test("nesting and amplification: a deep pickle, a huge metadata array, 2^24 layers")
    func nestingAndAmplification_areBounded() throws {
        // a million nested tuples: read, refused (not a dict) and freed without recursion
        var pickle: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 1_000_000) + [0x2E]
        var unpickler = Unpickler(bytes: pickle, file: "deep.pkl")
        let objects = try unpickler.load()
        #expect(objects.tuples.count == 1_000_000)
        // a million lists each appended into the one before, through the memo
        pickle = [0x80, 0x02, 0x5D, 0x94]
        for i in 0..<200_000 { pickle += [0x5D, 0x94, 0x6A] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init) + [0x61] }
        pickle += [0x2E]
        var chained = Unpickler(bytes: pickle, file: "chain.pkl")
        #expect(throws: Never.self) { _ = try chained.load() }
        // 25 MB of one-byte metadata values is refused before it becomes boxed values
        var raw: [UInt8] = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(2))
        raw += ggufString("general.architecture") + le(UInt32(8)) + ggufString("glm130b")
        raw += ggufString("general.junk") + le(UInt32(9)) + le(UInt32(0)) + le(UInt64(25_000_000))
        raw += [UInt8](repeating: 1, count: 25_000_000)
        let amplified = scratch + "/amplified.gguf"
        FileManager.default.createFile(atPath: amplified, contents: Data(raw))
        try expectCleanError(["info", amplified], "metadata arrays hold more than")
        let deep = try model("layers-2e24") { $0.set(ModelKeys.blockCount("glm130b"), .uint32(1 << 24)) }
        try expectCleanError(["info", deep], "layers")
    }

    @Test("caches are sized by the run: eval on a context of 2^20 does not allocate the context")
    func cacheSizedByRun() throws {
        let big = try model("context-big") { $0.set(ModelKeys.contextLength("glm130b"), .uint32(1 << 20)) }
        let text = scratch + "/text.txt"
        try "The meaning of life is a short text.".write(toFile: text, atomically: true, encoding: .utf8)
        let o = try glmRun(["eval", big, "--text", text])
        #expect(o.status == 0 && o.stdout.contains("perplexity"), "\(o.stderr)")
        let tiny = try model("context-2") { $0.set(ModelKeys.contextLength("glm130b"), .uint32(2)) }
        try expectCleanError(["eval", tiny, "--text", text], "context")
    }

    @Test("NaN weights stop generation with an error naming the position")
    func nanWeights_stopGeneration() throws {
        let seed = try GGUFFile(path: repo.appendingPathComponent("Tests/Fuzz/corpus/gguf/glm130b-tiny-q4_0-tokenizer.gguf").path)
        var writer = try GGUFWriter(copying: seed)
        let info = try #require(seed.tensorInfo("output_norm.weight"))
        writer.removeTensor("output_norm.weight")
        let nan = [Float](repeating: .nan, count: info.dims[0])
        writer.addTensor("output_norm.weight", shape: info.shape, type: .f32, data: nan.withUnsafeBytes(Array.init))
        let path = scratch + "/nan.gguf"
        try writer.write(to: path)
        try expectCleanError([path, "-p", "The meaning of life", "--max-tokens", "4"], "not finite")
        try expectCleanError(["logits", path, "--ids", "1,2"], "position")
    }

    @Test("command-line numbers out of range, and a global option before a subcommand")
    func commandLine_rangeChecked() throws {
        try expectCleanError(["-p", "x", "--max-tokens", "9223372036854775807"], "--max-tokens")
        try expectCleanError(["-p", "x", "--threads", "3000000000"], "--threads")
        try expectCleanError(["--plugin", "X", "plugins"], "'plugins' is a subcommand")
        try expectCleanError(["bench", "--layers", "100000"], "--layers")
        try expectCleanError(["pipeline", "simulate", "glm-130b", "--micro-batches", "1000000000"], "--micro-batches")
    }
}
