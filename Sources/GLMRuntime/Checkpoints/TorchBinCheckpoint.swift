// TorchBinCheckpoint.swift — a Hugging Face folder of PyTorch shards
// (pytorch_model-0000N-of-0000M.bin + pytorch_model.bin.index.json, or one
// pytorch_model.bin) with its config.json, as ChatGLM-6B is published.

import Foundation

public struct TorchBinCheckpoint: CheckpointSource {
    public let folder: String
    public let config: [String: Any]
    private let files: [String: TorchCheckpoint]

    public init(folder: String) throws {
        self.folder = folder
        config = try readConfig(folder: folder)
        let fm = FileManager.default
        let index = (folder as NSString).appendingPathComponent("pytorch_model.bin.index.json")
        var shards: [String]
        if fm.fileExists(atPath: index) {
            guard let data = fm.contents(atPath: index), let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = json["weight_map"] as? [String: String] else {
                throw ModelFileError.badConfig(file: index, reason: "index has no weight_map")
            }
            shards = Array(Set(map.values)).sorted()
        } else {
            shards = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".bin") }.sorted()
        }
        guard !shards.isEmpty else { throw ModelFileError.badConfig(file: folder, reason: "no pytorch_model*.bin files") }
        var files: [String: TorchCheckpoint] = [:]
        for shard in shards {
            let path = (folder as NSString).appendingPathComponent(shard)
            guard fm.fileExists(atPath: path) else { throw CheckpointError.unreadable(file: shard, reason: "named in the index but missing") }
            let file = try TorchCheckpoint(path: path)
            for name in file.names { files[name] = file }
        }
        self.files = files
    }

    public var names: [String] { files.keys.sorted() }

    private func file(_ name: String) throws -> TorchCheckpoint {
        guard let f = files[name] else { throw ModelFileError.missingTensor(file: folder, tensor: name) }
        return f
    }

    public func shape(_ name: String) throws -> [Int] { try file(name).shape(name) }
    public func floats(_ name: String) throws -> [Float] { try file(name).floats(name) }
}

/// A folder's config.json as a JSON object.
func readConfig(folder: String) throws -> [String: Any] {
    let path = (folder as NSString).appendingPathComponent("config.json")
    guard FileManager.default.fileExists(atPath: path) else {
        throw ModelFileError.badConfig(file: folder, reason: "no config.json in the checkpoint folder")
    }
    guard let data = FileManager.default.contents(atPath: path),
          let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw ModelFileError.badConfig(file: path, reason: "config.json is not a JSON object")
    }
    return json
}
