// SyntheticModel.swift — a model of any configuration's shape with random
// weights built in memory, for the figures that need real layer shapes but no
// file: norm weights 1, biases 0 where the configuration has them.

import GLMRuntime
import KernelBridge

enum SyntheticModel {
    static func build(_ c: ModelConfig, type: WeightType) throws -> GLMModel {
        let h = c.hidden
        func vector(_ n: Int, _ value: Float) -> [Float] { [Float](repeating: value, count: n) }
        func bias(_ n: Int, _ has: Bool) -> [Float]? { has ? vector(n, 0) : nil }
        let layerNorm = c.norm == .layerNorm, sandwich = c.residual == .sandwich
        var layers: [LayerWeights] = []
        for i in 0..<c.layers {
            let seed = UInt64(i * 7 + 1)
            layers.append(LayerWeights(
                attentionNormWeight: vector(h, 1), attentionNormBias: bias(h, layerNorm),
                qkv: try .random(type, rows: c.qkvWidth, cols: h, seed: seed), qkvBias: bias(c.qkvWidth, c.qkvBias),
                attentionOutput: try .random(type, rows: h, cols: c.attentionWidth, seed: seed + 1), attentionOutputBias: bias(h, c.linearBias),
                ffnNormWeight: vector(h, 1), ffnNormBias: bias(h, layerNorm),
                ffnUp: try .random(type, rows: c.ffnUpRows, cols: h, seed: seed + 2), ffnUpBias: bias(c.ffnUpRows, c.linearBias),
                ffnDown: try .random(type, rows: h, cols: c.ffnInner, seed: seed + 3), ffnDownBias: bias(h, c.linearBias),
                postAttentionNormWeight: sandwich ? vector(h, 1) : nil, postFFNNormWeight: sandwich ? vector(h, 1) : nil))
        }
        return try GLMModel(config: c, tokenEmbedding: .random(type, rows: c.vocab, cols: h, seed: 99), layers: layers,
                            outputNormWeight: vector(h, 1), outputNormBias: bias(h, layerNorm),
                            output: c.tiedOutput ? nil : try .random(type, rows: c.vocab, cols: h, seed: 98))
    }
}
