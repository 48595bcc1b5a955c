// NativeCheckpointTests.swift — the checkpoints real users have: ChatGLM-6B's
// PyTorch .bin shards and GLM-130B's SAT rank files (1-way and 2-way tensor
// parallel), read without Python, must convert to exactly the model file the
// safetensors checkpoint gives, and pass the golden cases. Malicious and
// broken checkpoints fail with clear errors.

import Foundation
import GLMRuntime
import Testing

private let native: [(arch: String, folder: String)] = [
    ("chatglm-6b-tiny", "native"), ("glm-130b-tiny", "native/sat_mp1"), ("glm-130b-tiny", "native/sat_mp2"),
]

private func tempDir(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-native-\(name)-\(getpid())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("Native checkpoints", .serialized)
struct NativeCheckpointTests {
    @Test("each native checkpoint converts to the same tensors as model.safetensors, bit for bit", arguments: native.indices)
    func nativeCheckpoint_equalsSafetensors(index: Int) throws {
        let (arch, sub) = native[index]
        let dir = try tempDir("\(index)")
        _ = try ModelConverter(type: .f32).convert(folder: Fixtures.folder(arch) + "/" + sub, to: dir + "/native.gguf")
        let reference = try ConvertedModels.model(arch, .f32).file!
        let converted = try GGUFFile(path: dir + "/native.gguf")
        #expect(converted.tensors.map(\.name) == reference.tensors.map(\.name))
        for info in reference.tensors {
            let other = try #require(converted.tensorInfo(info.name))
            #expect(other.shape == info.shape, "\(info.name)")
            #expect(try converted.storage(other).bytes == reference.storage(info).bytes, "\(arch) \(sub): \(info.name)")
        }
        // and the golden prompt logits
        let golden = try Golden(arch)
        let model = try GLMModel(path: dir + "/native.gguf")
        for c in golden.cases {
            let logits = try InferenceSession(model: model, capacity: 64).forward(c.inputIDs, allLogits: true)
            #expect(maxAbsDiff(logits, try golden.expected.floats("\(c.name).logits")) <= LogitTolerance.f32 * golden.maxAbsLogit)
        }
    }

    @Test("the 2-way SAT split merges to exactly the 1-way checkpoint")
    func satTwoWay_mergesToOneWay() throws {
        let one = try SATCheckpoint(folder: Fixtures.folder("glm-130b-tiny") + "/native/sat_mp1")
        let two = try SATCheckpoint(folder: Fixtures.folder("glm-130b-tiny") + "/native/sat_mp2")
        #expect(one.names.sorted() == two.names.sorted())
        for name in one.names {
            #expect(try two.shape(name) == one.shape(name), "\(name)")
            #expect(try two.floats(name) == one.floats(name), "\(name)")
        }
    }

    @Test("a pickle that would run a command is refused without running anything")
    func maliciousPickle_isRefused() throws {
        let dir = try tempDir("evil")
        let marker = dir + "/pwned"
        // pickle protocol 2 for: os.system("touch <marker>") — GLOBAL 'posix system', a string, TUPLE1, REDUCE
        let command = "touch \(marker)"
        var pickle: [UInt8] = [0x80, 0x02] + Array("cposix\nsystem\n".utf8) + [0x58]
        withUnsafeBytes(of: UInt32(command.utf8.count).littleEndian) { pickle += $0 }
        pickle += Array(command.utf8) + [0x85, 0x52, 0x2E]
        try writeZip(["archive/data.pkl": pickle, "archive/byteorder": Array("little".utf8)], to: dir + "/pytorch_model.bin")
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        do {
            _ = try TorchCheckpoint(path: dir + "/pytorch_model.bin")
            Issue.record("a malicious pickle was accepted")
        } catch {
            #expect("\(error)".contains("the global posix.system"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "the command ran")
    }

    @Test("broken checkpoints fail with one clear error")
    func brokenCheckpoints_failClearly() throws {
        let dir = try tempDir("broken")
        func message(_ body: () throws -> Void) -> String { do { try body(); return "no error" } catch { return "\(error)" } }
        // truncated zip
        let shard = try Data(contentsOf: URL(fileURLWithPath: Fixtures.folder("chatglm-6b-tiny") + "/native/pytorch_model-00002-of-00002.bin"))
        try shard.prefix(shard.count / 2).write(to: URL(fileURLWithPath: dir + "/truncated.bin"))
        #expect(message { _ = try TorchCheckpoint(path: dir + "/truncated.bin") }.contains("truncated.bin: not a valid torch checkpoint archive"))
        // an unknown opcode
        try writeZip(["a/data.pkl": [0x80, 0x02, 0x7D, 0x69, 0x2E]], to: dir + "/opcode.bin")
        #expect(message { _ = try TorchCheckpoint(path: dir + "/opcode.bin") }.contains("opcode 0x69"))
        // a missing rank file
        let sat = dir + "/sat"
        try FileManager.default.createDirectory(atPath: sat + "/49300", withIntermediateDirectories: true)
        try Data("49300".utf8).write(to: URL(fileURLWithPath: sat + "/latest"))
        let mp2 = Fixtures.folder("glm-130b-tiny") + "/native/sat_mp2/49300/mp_rank_01_model_states.pt"
        try? FileManager.default.copyItem(atPath: mp2, toPath: sat + "/49300/mp_rank_01_model_states.pt")
        #expect(message { _ = try SATCheckpoint(folder: sat, preset: "glm-130b") }.contains("missing tensor-parallel rank file mp_rank_00_model_states.pt"))
        // ranks that disagree on shapes: rank 0 from the 1-way checkpoint, rank 1 from the 2-way one
        let mp1 = Fixtures.folder("glm-130b-tiny") + "/native/sat_mp1/49300/mp_rank_00_model_states.pt"
        try? FileManager.default.copyItem(atPath: mp1, toPath: sat + "/49300/mp_rank_00_model_states.pt")
        let mixed = try SATCheckpoint(folder: sat, configPath: Fixtures.folder("glm-130b-tiny") + "/config.json")
        #expect(message { _ = try mixed.shape("transformer.layers.0.input_layernorm.weight") }.contains("no error"))
        #expect(message { _ = try mixed.shape("transformer.layers.0.attention.dense.weight") }.contains("ranks disagree"))
        // a SAT folder with no configuration anywhere
        #expect(message { _ = try SATCheckpoint(folder: sat) }.contains("carries no configuration"))
    }
}

/// A minimal stored (uncompressed) ZIP, as torch.save writes.
func writeZip(_ files: [String: [UInt8]], to path: String) throws {
    var out: [UInt8] = [], central: [UInt8] = []
    func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func u32(_ v: Int, _ a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8(v >> (8 * i) & 0xFF)) } }
    for (name, data) in files.sorted(by: { $0.key < $1.key }) {
        let offset = out.count
        u32(0x0403_4B50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0, &out)
        u32(0, &out); u32(data.count, &out); u32(data.count, &out); u16(name.utf8.count, &out); u16(0, &out)
        out += Array(name.utf8) + data
        u32(0x0201_4B50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
        u32(0, &central); u32(data.count, &central); u32(data.count, &central); u16(name.utf8.count, &central); u16(0, &central); u16(0, &central)
        u16(0, &central); u16(0, &central); u32(0, &central); u32(offset, &central)
        central += Array(name.utf8)
    }
    let cdOffset = out.count
    out += central
    u32(0x0605_4B50, &out); u16(0, &out); u16(0, &out); u16(files.count, &out); u16(files.count, &out)
    u32(central.count, &out); u32(cdOffset, &out); u16(0, &out)
    try Data(out).write(to: URL(fileURLWithPath: path))
}
