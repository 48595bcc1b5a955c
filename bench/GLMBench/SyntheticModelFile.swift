// SyntheticModelFile.swift — a model file of any configuration's shape with
// random weights (norm weights 1, biases 0, as SyntheticModel builds in
// memory), written tensor by tensor: for the figures that need a real file,
// such as a GLM-130B-shaped model spread over MPI ranks (each rank maps it).

import GLMRuntime
import KernelBridge

public enum SyntheticModelFile {
    /// Writes `config`'s tensors in `type` (1D tensors FP32) to `path`; `progress` gets each tensor's name.
    public static func write(_ c: ModelConfig, type: GGUFTensorType, to path: String, progress: (String, Int, Int) -> Void = { _, _, _ in }) throws {
        let h = c.hidden, layerNorm = c.norm == .layerNorm, sandwich = c.residual == .sandwich
        enum Content { case matrix(rows: Int, cols: Int, seed: UInt64), ones(Int), zeros(Int) }
        var plan: [(String, Content)] = [(TensorNames.tokenEmbedding, .matrix(rows: c.vocab, cols: h, seed: 99))]
        for i in 0..<c.layers {
            let seed = UInt64(i * 7 + 1)
            plan.append((TensorNames.attentionNormWeight(i), .ones(h)))
            if layerNorm { plan.append((TensorNames.attentionNormBias(i), .zeros(h))) }
            plan.append((TensorNames.qkvWeight(i), .matrix(rows: c.qkvWidth, cols: h, seed: seed)))
            if c.qkvBias { plan.append((TensorNames.qkvBias(i), .zeros(c.qkvWidth))) }
            plan.append((TensorNames.attentionOutputWeight(i), .matrix(rows: h, cols: c.attentionWidth, seed: seed + 1)))
            if c.linearBias { plan.append((TensorNames.attentionOutputBias(i), .zeros(h))) }
            if sandwich { plan.append((TensorNames.postAttentionNormWeight(i), .ones(h))) }
            plan.append((TensorNames.ffnNormWeight(i), .ones(h)))
            if layerNorm { plan.append((TensorNames.ffnNormBias(i), .zeros(h))) }
            plan.append((TensorNames.ffnUpWeight(i), .matrix(rows: c.ffnUpRows, cols: h, seed: seed + 2)))
            if c.linearBias { plan.append((TensorNames.ffnUpBias(i), .zeros(c.ffnUpRows))) }
            plan.append((TensorNames.ffnDownWeight(i), .matrix(rows: h, cols: c.ffnInner, seed: seed + 3)))
            if c.linearBias { plan.append((TensorNames.ffnDownBias(i), .zeros(h))) }
            if sandwich { plan.append((TensorNames.postFFNNormWeight(i), .ones(h))) }
        }
        plan.append((TensorNames.outputNormWeight, .ones(h)))
        if layerNorm { plan.append((TensorNames.outputNormBias, .zeros(h))) }
        if !c.tiedOutput { plan.append((TensorNames.output, .matrix(rows: c.vocab, cols: h, seed: 98))) }

        var writer = GGUFWriter()
        c.write(to: &writer)
        for (name, content) in plan {
            switch content {
            case let .matrix(rows, cols, _):
                guard let rowBytes = type.weightType.rowBytes(cols: cols) else {
                    throw GenerationError.invalidArgument("\(name): \(cols) columns cannot be stored as \(type.name)")
                }
                writer.declareTensor(name, shape: [rows, cols], type: type, byteCount: rowBytes * rows)
            case let .ones(n), let .zeros(n):
                writer.declareTensor(name, shape: [n], type: .f32, byteCount: 4 * n)
            }
        }
        let stream = try writer.stream(to: path)
        for (i, (name, content)) in plan.enumerated() {
            progress(name, i, plan.count)
            switch content {
            case let .matrix(rows, cols, seed):
                try stream.write(try WeightMatrix.random(type.weightType, rows: rows, cols: cols, seed: seed).data.bytes)
            case let .ones(n):
                try stream.write([Float](repeating: 1, count: n).withUnsafeBytes { Array($0) })
            case let .zeros(n):
                try stream.write([UInt8](repeating: 0, count: 4 * n))
            }
        }
        try stream.finish()
    }
}
