// ModelConverter.swift — checkpoint folder -> GGUF model file. Reads the
// config through the architecture that recognises it, maps the reference
// code's parameter names to ours, checks every shape, and encodes the 2D
// weights in the requested type (1D norms and biases stay FP32).

import Foundation
import KernelBridge

public enum ConversionType: String, CaseIterable, Sendable {
    case f32, f16, q8_0, q4_0
    /// GLM-130B's per-row INT4, stored losslessly as Q4_0 blocks that all carry the row's scale.
    case q4_row
}

public struct ConversionProgress: Sendable {
    public let tensor: String
    public let tensorsDone: Int, tensors: Int
    public let parametersDone: Int, parameters: Int
}

public struct ConversionReport: Sendable {
    public var tensors = 0
    public var bytes = 0
    /// Tensors stored in another type than asked, and why.
    public var fallbacks: [String] = []
}

public struct ModelConverter {
    public let type: ConversionType
    /// Called after each tensor is written.
    public var progress: ((ConversionProgress) -> Void)?

    public init(type: ConversionType, progress: ((ConversionProgress) -> Void)? = nil) {
        self.type = type
        self.progress = progress
    }

    /// Converts any checkpoint layout CheckpointFolder recognises; `configPath` and
    /// `preset` supply the configuration of SAT checkpoints, which carry none.
    public func convert(folder: String, to output: String, configPath: String? = nil, preset: String? = nil) throws -> ConversionReport {
        let checkpoint = try CheckpointFolder.open(folder, configPath: configPath, preset: preset)
        return try convert(checkpoint, source: folder, to: output)
    }

    public func convert(_ checkpoint: CheckpointSource, source: String, to output: String) throws -> ConversionReport {
        guard let arch = Architectures.all.first(where: { $0.recognises(checkpointConfig: checkpoint.config) }) else {
            throw ModelFileError.unknownArchitecture(file: "\(source)/config.json", name: (checkpoint.config["model_type"] as? String) ?? "unrecognised config",
                                                     known: Architectures.names)
        }
        var config = try arch.config(fromCheckpoint: checkpoint.config, source: "\(source)/config.json")
        // the kin's GLM token ids come from their tokenizer (their config.json names only eos)
        let kinTokenizer = config.residual == .deepNorm ? nil : try KinTokenizer.find(in: source)
        if let kinTokenizer { config = try kinTokenizer.configure(config, source: source) }
        try config.validate(source: "\(source)/config.json")

        var writer = GGUFWriter()
        config.write(to: &writer)
        writer.set(ModelKeys.name, .string((source as NSString).lastPathComponent))
        writer.set(ModelKeys.fileType, .string(type.rawValue))

        if let kinTokenizer {
            kinTokenizer.write(to: &writer)
        } else if let tokenizer = try CheckpointTokenizer.find(in: source, config: config, architecture: arch) {
            tokenizer.vocabulary.write(to: &writer)
            tokenizer.layout.write(to: &writer)
        }

        // Declare every tensor first (its encoded size follows from its shape and
        // type), then stream them: one tensor is in memory at a time.
        let plan = arch.checkpointTensors(config)
        var report = ConversionReport()
        var targets: [GGUFTensorType] = []
        for entry in plan {
            var shape: [Int] = []
            for name in entry.checkpoints {
                let part = try checkpoint.shape(name)
                // stacked parts share their columns (1D parts: their one dimension adds up)
                if shape.isEmpty { shape = part } else if part.count == shape.count, part.dropFirst() == shape.dropFirst() { shape[0] += part[0] } else {
                    throw ModelFileError.tensorShape(file: source, tensor: name, expected: [part[0]] + shape.dropFirst(), actual: part)
                }
            }
            guard shape == entry.shape else {
                throw ModelFileError.tensorShape(file: source, tensor: entry.checkpoints.joined(separator: " + "), expected: entry.shape, actual: shape)
            }
            let (type, note) = target(for: shape)
            targets.append(type)
            writer.declareTensor(entry.name, shape: shape, type: type, byteCount: type.weightType.rowBytes(cols: shape.last!)! * shape.dropLast().reduce(1, *))
            if let note { report.fallbacks.append("\(entry.name): \(note)") }
        }
        let total = plan.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let stream = try writer.stream(to: output)
        var done = 0
        for (entry, type) in zip(plan, targets) {
            var values: [Float] = []
            for name in entry.checkpoints { values += try checkpoint.floats(name) }
            let bytes = try encode(values, shape: entry.shape, as: type)
            try stream.write(bytes)
            report.tensors += 1
            report.bytes += bytes.count
            done += entry.shape.reduce(1, *)
            progress?(ConversionProgress(tensor: entry.name, tensorsDone: report.tensors, tensors: plan.count,
                                         parametersDone: done, parameters: total))
        }
        try stream.finish()
        return report
    }

    /// The stored type of a tensor: 1D tensors stay FP32; a matrix whose columns
    /// are not a multiple of 32 cannot use the block types, so it falls back to F16.
    private func target(for shape: [Int]) -> (GGUFTensorType, String?) {
        guard shape.count == 2 else { return (.f32, nil) }
        switch type {
        case .f32: return (.f32, nil)
        case .f16: return (.f16, nil)
        case .q8_0, .q4_0, .q4_row:
            guard shape[1] % 32 == 0 else {
                return (.f16, "\(shape[1]) columns is not a multiple of 32: stored as f16 instead of \(type.rawValue)")
            }
            return (type == .q8_0 ? .q8_0 : .q4_0, nil)
        }
    }

    private func encode(_ values: [Float], shape: [Int], as stored: GGUFTensorType) throws -> [UInt8] {
        let (rows, cols) = shape.count == 2 ? (shape[0], shape[1]) : (1, values.count)
        if stored == .q4_0 && type == .q4_row {
            return try Q4RowAsQ4_0.encode(WeightMatrix.quantize(values, rows: rows, cols: cols, as: .q4Row))
        }
        return try WeightMatrix.quantize(values, rows: rows, cols: cols, as: stored.weightType).data.bytes
    }
}

/// GLM-130B per-row INT4 in GGUF Q4_0 blocks, without loss: every block of a
/// row stores the row's fp16 scale as d, and q in [-7, 7] as the nibble q + 8
/// (Q4_0 decodes d * (nibble - 8)). Q4_0 puts element j of a block in the low
/// nibble of byte j and element j + 16 in its high nibble.
public enum Q4RowAsQ4_0 {
    public static func encode(_ w: WeightMatrix) throws -> [UInt8] {
        precondition(w.type == .q4Row && w.cols % 32 == 0, "encode takes a q4_row matrix with cols % 32 == 0")
        let q = try Int4Packing.unpack(w.data.bytes, count: w.rows * w.rowBytes * 2)
        let blocks = w.cols / 32
        var out = [UInt8]()
        out.reserveCapacity(w.rows * blocks * 18)
        for r in 0..<w.rows {
            let scale = w.scales[r]
            for b in 0..<blocks {
                out.append(UInt8(scale & 0xFF))
                out.append(UInt8(scale >> 8))
                let base = r * w.rowBytes * 2 + b * 32
                for j in 0..<16 {
                    let low = UInt8(Int(q[base + j]) + 8), high = UInt8(Int(q[base + j + 16]) + 8)
                    out.append(low | high << 4)
                }
            }
        }
        return out
    }
}
