// ConverterTests.swift — checkpoint layouts the converter reads: a sharded
// safetensors folder (model.safetensors.index.json) converts to exactly the
// file a single-file checkpoint gives.

import Foundation
import GLMRuntime
import Testing

/// Writes `names` of `source` into a safetensors file (F32, as stored).
private func writeShard(_ source: SafeTensorsFile, names: [String], to path: String) throws {
    var header: [String: Any] = [:]
    var data = Data()
    for name in names {
        let bytes = try source.bytes(name)
        let entry = try source.entry(name)
        header[name] = ["dtype": entry.dtype, "shape": entry.shape, "data_offsets": [data.count, data.count + bytes.count]]
        data += bytes
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file += json + data
    try file.write(to: URL(fileURLWithPath: path))
}

@Suite("Converter")
struct ConverterTests {
    @Test("a sharded safetensors checkpoint converts like the single file", arguments: ["glm-130b-tiny", "chatglm-6b-tiny"])
    func shardedCheckpoint_convertsIdentically(arch: String) throws {
        let folder = Fixtures.folder(arch)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-sharded-\(arch)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: folder + "/config.json", toPath: dir + "/config.json")
        let source = try SafeTensorsFile(path: folder + "/model.safetensors")
        let names = source.names
        let half = names.count / 2
        let shards = ["model-00001-of-00002.safetensors": Array(names[..<half]), "model-00002-of-00002.safetensors": Array(names[half...])]
        var map: [String: String] = [:]
        for (file, members) in shards {
            try writeShard(source, names: members, to: dir + "/" + file)
            for name in members { map[name] = file }
        }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": map])
        try index.write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))

        _ = try ModelConverter(type: .q8_0).convert(folder: dir, to: dir + "/sharded.gguf")
        _ = try ModelConverter(type: .q8_0).convert(folder: folder, to: dir + "/single.gguf")
        let sharded = try GGUFFile(path: dir + "/sharded.gguf"), single = try GGUFFile(path: dir + "/single.gguf")
        #expect(sharded.tensors.map(\.name) == single.tensors.map(\.name))
        for info in single.tensors {
            #expect(try sharded.storage(sharded.tensorInfo(info.name)!).bytes == single.storage(info).bytes, "\(info.name)")
        }
    }

    @Test("a checkpoint of an unknown architecture is refused by name")
    func unknownArchitecture_isRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-unknown-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(#"{"model_type": "llama", "hidden_size": 64}"#.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        try FileManager.default.copyItem(atPath: Fixtures.folder("glm-130b-tiny") + "/model.safetensors", toPath: dir + "/model.safetensors")
        do {
            _ = try ModelConverter(type: .f32).convert(folder: dir, to: dir + "/out.gguf")
            Issue.record("converted an unknown architecture")
        } catch {
            #expect("\(error)".contains("unknown architecture 'llama'"), "\(error)")
        }
    }

    @Test("config numbers 0 and 1 are numbers, not booleans (Foundation's NSNumber answers `is Bool` for them)")
    func zeroAndOne_areIntegers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-zero-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let golden = Fixtures.folder("chatglm-6b-tiny")
        var text = try String(contentsOfFile: golden + "/config.json", encoding: .utf8)
        text = text.replacingOccurrences(of: #""pad_token_id": 3"#, with: #""pad_token_id": 0"#)
        try text.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: golden + "/model.safetensors", toPath: dir + "/model.safetensors")
        _ = try ModelConverter(type: .f16).convert(folder: dir, to: dir + "/model.gguf")
        #expect(try GLMModel(path: dir + "/model.gguf").config.tokens.pad == 0)
    }
}
