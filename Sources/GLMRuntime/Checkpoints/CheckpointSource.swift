// CheckpointSource.swift — a checkpoint folder as the converter sees it: its
// configuration and named tensors, whatever the files they come in:
// safetensors (one file or sharded with model.safetensors.index.json),
// PyTorch .bin shards (TorchBinCheckpoint) or SAT rank files (SATCheckpoint).

import Foundation

public protocol CheckpointSource {
    /// The folder's config.json, parsed.
    var config: [String: Any] { get }
    var names: [String] { get }
    func shape(_ name: String) throws -> [Int]
    func floats(_ name: String) throws -> [Float]
}

public struct SafeTensorsCheckpoint: CheckpointSource {
    public let folder: String
    public let config: [String: Any]
    private let files: [String: SafeTensorsFile]   // tensor name -> file holding it

    public init(folder: String) throws {
        self.folder = folder
        let fm = FileManager.default
        config = try readConfig(folder: folder)

        let indexPath = (folder as NSString).appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        if fm.fileExists(atPath: indexPath) {
            guard let data = fm.contents(atPath: indexPath),
                  let index = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = index["weight_map"] as? [String: String] else {
                throw ModelFileError.badConfig(file: indexPath, reason: "index has no weight_map")
            }
            shardNames = Array(Set(map.values)).sorted()
        } else {
            shardNames = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        }
        guard !shardNames.isEmpty else {
            throw ModelFileError.badConfig(file: folder, reason: "no *.safetensors files in the checkpoint folder")
        }
        var files: [String: SafeTensorsFile] = [:]
        for shard in shardNames {
            let file = try SafeTensorsFile(path: (folder as NSString).appendingPathComponent(shard))
            for name in file.names {
                guard files[name] == nil else { throw ModelFileError.badConfig(file: shard, reason: "tensor '\(name)' appears in two shards") }
                files[name] = file
            }
        }
        self.files = files
    }

    public var names: [String] { files.keys.sorted() }

    private func file(_ name: String) throws -> SafeTensorsFile {
        guard let file = files[name] else { throw ModelFileError.missingTensor(file: folder, tensor: name) }
        return file
    }

    public func shape(_ name: String) throws -> [Int] { try file(name).entry(name).shape }
    public func floats(_ name: String) throws -> [Float] { try file(name).floats(name) }
}

public enum CheckpointFolder {
    /// Opens `folder` as whichever layout it holds: SAT (a `latest` file or
    /// mp_rank_XX files), safetensors, or PyTorch .bin shards.
    public static func open(_ folder: String, configPath: String? = nil, preset: String? = nil) throws -> any CheckpointSource {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelFileError.unreadable(file: folder, reason: "not a folder")
        }
        let names = (try? fm.contentsOfDirectory(atPath: folder)) ?? []
        if names.contains("latest") || names.contains(where: { $0.hasPrefix("mp_rank_") }) {
            return try SATCheckpoint(folder: folder, configPath: configPath, preset: preset)
        }
        if names.contains(where: { $0.hasSuffix(".safetensors") }) { return try SafeTensorsCheckpoint(folder: folder) }
        if names.contains(where: { $0.hasSuffix(".bin") }) { return try TorchBinCheckpoint(folder: folder) }
        throw ModelFileError.badConfig(file: folder, reason: "no checkpoint found (*.safetensors, pytorch_model*.bin, or a SAT folder with latest and mp_rank_XX_model_states.pt)")
    }
}
