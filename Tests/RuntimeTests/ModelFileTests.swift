// ModelFileTests.swift — the GGUF reader and writer: every metadata type round
// trips; bad files give one clear error naming the file and the key or
// tensor; thousands of corrupted files never crash or hang the parser.

import Foundation
import GLMRuntime
import KernelBridge
import Testing

private func goodModelBytes() throws -> [UInt8] {
    let model = try ConvertedModels.model("glm-130b-tiny", .q4_row)
    return try GGUFWriter(copying: model.file!).bytes()
}

private func load(_ bytes: [UInt8], name: String = "test.gguf") throws -> GLMModel {
    try GLMModel(file: GGUFFile(file: MappedFile(bytes: bytes, name: name)))
}

/// Rewrites the golden q4_row model with `change` applied.
private func modified(_ change: (inout GGUFWriter) throws -> Void) throws -> [UInt8] {
    var writer = try GGUFWriter(copying: ConvertedModels.model("glm-130b-tiny", .q4_row).file!)
    try change(&writer)
    return writer.bytes()
}

@Suite("Model file", .serialized)
struct ModelFileTests {
    @Test("every GGUF metadata type round-trips")
    func metadata_roundTrips() throws {
        var writer = GGUFWriter()
        let values: [String: GGUFValue] = [
            "u8": .uint8(200), "i8": .int8(-5), "u16": .uint16(60000), "i16": .int16(-300), "u32": .uint32(4_000_000_000),
            "i32": .int32(-2_000_000), "f32": .float32(3.5), "bool": .bool(true), "str": .string("汉字 and ascii"),
            "u64": .uint64(1 << 40), "i64": .int64(-(1 << 40)), "f64": .float64(2.25),
            "arr": .array(.string, [.string("a"), .string("")]), "nested": .array(.array, [.array(.int32, [.int32(1), .int32(2)])]),
        ]
        for key in values.keys.sorted() { writer.set(key, values[key]!) }
        writer.addTensor("t", shape: [2, 3], type: .f32, data: [UInt8](repeating: 0, count: 24))
        let file = try GGUFFile(file: MappedFile(bytes: writer.bytes(), name: "roundtrip.gguf"))
        for (key, value) in values { #expect(file.metadata[key] == value, "\(key)") }
        #expect(file.tensorInfo("t")?.shape == [2, 3])
        #expect(file.version == 3)
    }

    @Test("a converted model survives a rewrite unchanged")
    func convertedModel_rewritesIdentically() throws {
        let bytes = try goodModelBytes()
        let again = try GGUFWriter(copying: GGUFFile(file: MappedFile(bytes: bytes, name: "a.gguf"))).bytes()
        #expect(again == bytes)
        _ = try load(bytes)
    }

    @Test("bad files fail with one clear error naming the problem")
    func badFiles_failClearly() throws {
        let good = try goodModelBytes()
        func message(_ bytes: [UInt8]) -> String {
            do { _ = try load(bytes, name: "bad.gguf"); return "loaded" } catch { return "\(error)" }
        }
        #expect(message(Array(good.prefix(3000))).contains("bad.gguf"))
        #expect(message(Array(good.prefix(3000))).contains("truncated") || message(Array(good.prefix(3000))).contains("outside"))
        #expect(message(Array("GGML".utf8) + good.dropFirst(4)).contains("not a GGUF file (magic GGML"))
        #expect(message([]).contains("truncated"))
        #expect(message(try modified { $0.set("general.architecture", .string("llama")) }).contains("unknown architecture 'llama'"))
        #expect(message(try modified { $0.removeTensor("blk.1.ffn_up.weight") }).contains("missing tensor 'blk.1.ffn_up.weight'"))
        #expect(message(try modified { $0.removeKey("glm130b.block_count") }).contains("missing metadata key 'glm130b.block_count'"))
        #expect(message(try modified { $0.set("glm130b.block_count", .string("two")) }).contains("'glm130b.block_count' is string"))
        #expect(message(try modified {
            $0.removeTensor("output_norm.bias")
            $0.addTensor("output_norm.bias", shape: [65], type: .f32, data: [UInt8](repeating: 0, count: 260))
        }).contains("'output_norm.bias' has shape [65], expected [64]"))
        // a tensor offset moved past the end of the data
        var outside = good
        let file = try GGUFFile(file: MappedFile(bytes: good, name: "x"))
        let last = file.tensors.max { $0.offset < $1.offset }!
        let nameBytes = Array(last.name.utf8)
        let at = (0..<(outside.count - nameBytes.count)).first { Array(outside[$0..<($0 + nameBytes.count)]) == nameBytes }!
        let offsetPosition = at + nameBytes.count + 4 + 8 * last.dims.count + 4
        let farAway = UInt64(outside.count).roundedUp(to: 32)
        for i in 0..<8 { outside[offsetPosition + i] = UInt8(truncatingIfNeeded: farAway >> (8 * UInt64(i))) }
        #expect(message(outside).contains("'\(last.name)' lies outside the file"))
        // an unsupported tensor type (ggml Q2_K = 10)
        var badType = good
        for i in 0..<4 { badType[offsetPosition - 4 + i] = i == 0 ? 10 : 0 }
        #expect(message(badType).contains("unsupported type ggml type 10"))
    }

    @Test("a checkpoint folder without config.json is a clear error")
    func checkpointWithoutConfig_failsClearly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-noconfig-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let weights = dir.appendingPathComponent("model.safetensors").path
        if !FileManager.default.fileExists(atPath: weights) {
            try FileManager.default.copyItem(atPath: Fixtures.folder("glm-130b-tiny") + "/model.safetensors", toPath: weights)
        }
        #expect(throws: ModelFileError.self) { try ModelConverter(type: .f32).convert(folder: dir.path, to: dir.path + "/out.gguf") }
        do { _ = try ModelConverter(type: .f32).convert(folder: dir.path, to: dir.path + "/out.gguf") } catch {
            #expect("\(error)".contains("no config.json"))
        }
    }

    /// 3000 corrupted copies of a real model file: bytes flipped in the header and
    /// tensor table, random 64-bit values written over counts, lengths and
    /// offsets, truncations. Each must load or throw; a crash or a hang fails the run.
    @Test("corrupted files never crash or hang the parser")
    func corruptedFiles_neverCrash() throws {
        let good = try goodModelBytes()
        let file = try GGUFFile(file: MappedFile(bytes: good, name: "x"))
        let headerEnd = file.dataOffset
        var rng = SplitMix64(seed: 2024)
        func draw() -> UInt64 { rng.next() }
        var loaded = 0, rejected = 0
        for round in 0..<3000 {
            var bytes = good
            switch round % 4 {
            case 0: // flip a few header bytes
                for _ in 0..<(1 + Int(draw() % 4)) { bytes[Int(draw() % UInt64(headerEnd))] ^= UInt8(truncatingIfNeeded: draw() | 1) }
            case 1: // write a random u64 over a header position
                let at = Int(draw() % UInt64(headerEnd - 8))
                let value = [draw(), draw() % 1000, UInt64.max, 1 << 62][Int(draw() % 4)]
                for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
            case 2: // truncate anywhere
                bytes = Array(bytes.prefix(Int(draw() % UInt64(bytes.count))))
            default: // corrupt the data section too (weights may be any bits)
                for _ in 0..<16 { bytes[Int(draw() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: draw()) }
            }
            do {
                let model = try load(bytes)
                // a file that loads must also run
                let session = try InferenceSession(model: model, capacity: 8)
                _ = try session.forward([1, Int32(model.config.tokens.gmask), Int32(model.config.tokens.sop)].map { min($0, Int32(model.config.vocab - 1)) })
                loaded += 1
            } catch {
                rejected += 1
            }
        }
        print("corruption test: \(loaded) files loaded and ran, \(rejected) rejected with an error")
        #expect(loaded + rejected == 3000)
        #expect(rejected > 1000, "most corruptions must be detected")
    }
}

extension UInt64 {
    func roundedUp(to alignment: UInt64) -> UInt64 { (self + alignment - 1) / alignment * alignment }
}
