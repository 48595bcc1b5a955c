// SATCheckpoint.swift — a SwissArmyTransformer checkpoint, as GLM-130B is
// released: `latest` names the iteration folder, which holds one
// mp_rank_XX_model_states.pt per tensor-parallel rank. The ranks are merged
// back exactly as GLM-130B's tools/convert_tp.py splits them:
//  - LayerNorms, attention.dense.bias, mlp.dense_4h_to_h.bias: copied to every rank;
//  - word_embeddings: vocabulary rows split across ranks (concatenate dim 0);
//  - query_key_value: whole heads per rank, q/k/v rows together (concatenate dim 0);
//  - attention.dense.weight, dense_4h_to_h.weight: input columns split (concatenate dim 1);
//  - GeGLU dense_h_to_4h: 2T pieces, rank r holds pieces r and T + r, i.e. its
//    [x1 part; x2 part]: the x1 parts of all ranks, then their x2 parts;
//  - RoPE inv_freq: ignored (the runtime recomputes it).
// The checkpoint has no configuration: it comes from --config, a config.json
// beside or above the folder, or a named preset.

import Foundation

public struct SATCheckpoint: CheckpointSource {
    public let folder: String
    public let config: [String: Any]
    private let ranks: [TorchCheckpoint]

    public init(folder: String, configPath: String? = nil, preset: String? = nil) throws {
        self.folder = folder
        let fm = FileManager.default
        var directory = folder
        let latest = (folder as NSString).appendingPathComponent("latest")
        if let data = fm.contents(atPath: latest) {
            let iteration = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            directory = (folder as NSString).appendingPathComponent(iteration)
        }
        let files = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("mp_rank_") && $0.hasSuffix("_model_states.pt") }
        let indices = files.compactMap { Int($0.dropFirst("mp_rank_".count).prefix { $0.isNumber }) }.sorted()
        guard let maxRank = indices.last else {
            throw ModelFileError.badConfig(file: directory, reason: "no mp_rank_XX_model_states.pt files")
        }
        for r in 0...maxRank where !indices.contains(r) {
            throw CheckpointError.missingRank(folder: directory, file: String(format: "mp_rank_%02d_model_states.pt", r))
        }
        ranks = try (0...maxRank).map { r in
            try TorchCheckpoint(path: (directory as NSString).appendingPathComponent(String(format: "mp_rank_%02d_model_states.pt", r)))
        }
        config = try SATCheckpoint.findConfig(folder: folder, configPath: configPath, preset: preset)
    }

    /// --config, else config.json in the folder or up to three folders above it, else the preset.
    static func findConfig(folder: String, configPath: String?, preset: String?) throws -> [String: Any] {
        if let configPath {
            return try readJSON(configPath)
        }
        var dir = (folder as NSString).standardizingPath
        for _ in 0..<4 {
            let candidate = (dir as NSString).appendingPathComponent("config.json")
            if FileManager.default.fileExists(atPath: candidate) { return try readJSON(candidate) }
            dir = (dir as NSString).deletingLastPathComponent
        }
        if let preset {
            guard let p = Presets.all[preset] else {
                throw ModelFileError.badConfig(file: folder, reason: "unknown preset '\(preset)' (known: \(Presets.all.keys.sorted().joined(separator: ", ")))")
            }
            return p
        }
        throw CheckpointError.noConfig(folder: folder)
    }

    private static func readJSON(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelFileError.badConfig(file: path, reason: "cannot read a JSON object")
        }
        return json
    }

    public var names: [String] { ranks[0].names.filter { !$0.hasSuffix("inv_freq") } }

    enum Split { case replicated, rows, columns, geglu }

    static func split(_ name: String) -> Split {
        if name.contains("layernorm") || name.hasSuffix("attention.dense.bias") || name.hasSuffix("dense_4h_to_h.bias") { return .replicated }
        if name.hasSuffix("attention.dense.weight") || name.hasSuffix("dense_4h_to_h.weight") { return .columns }
        if name.contains("dense_h_to_4h") { return .geglu }
        return .rows // word_embeddings, query_key_value
    }

    public func shape(_ name: String) throws -> [Int] {
        let shapes = try ranks.map { try $0.shape(name) }
        // convert_tp.py splits evenly, so every rank holds the same shape
        for (r, s) in shapes.enumerated() where s != shapes[0] {
            throw CheckpointError.rankMismatch(tensor: name, reason: "rank 0 has shape \(shapes[0]), rank \(r) has \(s)")
        }
        switch SATCheckpoint.split(name) {
        case .replicated: return shapes[0]
        case .rows, .geglu:
            for (r, s) in shapes.enumerated() where Array(s.dropFirst()) != Array(shapes[0].dropFirst()) {
                throw CheckpointError.rankMismatch(tensor: name, reason: "rank 0 has shape \(shapes[0]), rank \(r) has \(s)")
            }
            return [shapes.reduce(0) { $0 + $1[0] }] + shapes[0].dropFirst()
        case .columns:
            for (r, s) in shapes.enumerated() where s.count != 2 || s[0] != shapes[0][0] {
                throw CheckpointError.rankMismatch(tensor: name, reason: "rank 0 has shape \(shapes[0]), rank \(r) has \(s)")
            }
            return [shapes[0][0], shapes.reduce(0) { $0 + $1[1] }]
        }
    }

    public func floats(_ name: String) throws -> [Float] {
        let shape = try shape(name)
        let parts = try ranks.map { try $0.floats(name) }
        switch SATCheckpoint.split(name) {
        case .replicated:
            return parts[0]
        case .rows:
            return parts.flatMap { $0 }
        case .columns:
            let rows = shape[0]
            var out = [Float]()
            out.reserveCapacity(shape[0] * shape[1])
            for row in 0..<rows {
                for part in parts {
                    let width = part.count / rows
                    out += part[(row * width)..<((row + 1) * width)]
                }
            }
            return out
        case .geglu:
            // each rank is [x1 part; x2 part] (rows); the merged tensor is [all x1 parts; all x2 parts]
            for (r, part) in parts.enumerated() where (part.count / max(1, shape.dropFirst().reduce(1, *))) % 2 != 0 {
                throw CheckpointError.rankMismatch(tensor: name, reason: "rank \(r) has an odd number of GeGLU rows")
            }
            let halves = parts.map { ($0[..<($0.count / 2)], $0[($0.count / 2)...]) }
            return halves.flatMap { Array($0.0) } + halves.flatMap { Array($0.1) }
        }
    }
}

/// Configurations of released models, for checkpoints that carry none (the architectures' own).
public enum Presets {
    public static var all: [String: [String: Any]] {
        Architectures.all.reduce(into: [:]) { all, arch in all.merge(arch.checkpointPresets) { first, _ in first } }
    }
}
