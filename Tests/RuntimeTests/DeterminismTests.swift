// DeterminismTests.swift — end-to-end logits are bitwise the same on 1 and 2
// threads, for every weight type and every activation mode. Every parallel
// kernel splits its work by output rows, (query, head) pairs or element rows,
// and each output is computed by one thread in a fixed order (ThreadingTests
// checks the kernels alone), so exact equality is the bound. The model is
// synthetic and just large enough that every kernel passes its parallel
// threshold (hidden 256, up projection 768 rows, a 40-token prompt). The
// pipelined run's bitwise agreement is PipelinedExecutionTests'.

import Foundation
import GLMRuntime
import KernelBridge
import Testing

private func syntheticModel(_ type: WeightType, architecture: String) throws -> GLMModel {
    let (hidden, heads, inner, vocab, layers) = (256, 4, 384, 512, 2)
    let chat = architecture == ChatGLM6B.name
    let tokens = SpecialTokens(mask: 500, gmask: 501, smask: chat ? nil : 502, sop: 504, eop: 505, eos: chat ? 505 : 2, pad: nil)
    let config = ModelConfig(architecture: architecture, layers: layers, hidden: hidden, heads: heads, headDim: hidden / heads,
                             ffnInner: inner, vocab: vocab, contextLength: 256, layerNormEps: 1e-5, ropeBase: 10000,
                             rope: chat ? .twoD : .oneD, feedForward: chat ? .geluTanh : .gegluErf, tiedOutput: !chat,
                             tokens: tokens, alpha: chat ? ChatGLM6B.referenceAlpha : 2)
    let group = type == .q4Group ? 32 : 0
    func matrix(_ rows: Int, _ cols: Int, _ seed: UInt64) throws -> WeightMatrix {
        try .random(type, rows: rows, cols: cols, group: group, seed: seed)
    }
    func vector(_ n: Int, _ value: Float) -> [Float] { [Float](repeating: value, count: n) }
    let built = try (0..<layers).map { i -> LayerWeights in
        let seed = UInt64(i * 7 + 1)
        return LayerWeights(
            attentionNormWeight: vector(hidden, 1), attentionNormBias: vector(hidden, 0.01),
            qkv: try matrix(3 * hidden, hidden, seed), qkvBias: vector(3 * hidden, 0.02),
            attentionOutput: try matrix(hidden, hidden, seed + 1), attentionOutputBias: vector(hidden, 0),
            ffnNormWeight: vector(hidden, 1), ffnNormBias: vector(hidden, 0),
            ffnUp: try matrix(config.ffnUpRows, hidden, seed + 2), ffnUpBias: vector(config.ffnUpRows, 0.01),
            ffnDown: try matrix(hidden, inner, seed + 3), ffnDownBias: vector(hidden, 0))
    }
    return try GLMModel(config: config, tokenEmbedding: matrix(vocab, hidden, 99), layers: built,
                        outputNormWeight: vector(hidden, 1), outputNormBias: vector(hidden, 0),
                        output: chat ? try matrix(vocab, hidden, 98) : nil)
}

/// Prompt logits and four greedy decode steps' logits.
private func run(_ model: GLMModel, _ activations: ActivationPrecision, threads: Int) throws -> [[Float]] {
    try Threads.configure(count: threads)
    let t = model.config.tokens
    let session = try InferenceSession(model: model, capacity: 64, kernels: Kernels(activations: activations))
    let prompt = (0..<38).map { Int32(10 + ($0 * 37) % 480) } + [t.gmask, t.sop]
    var all = [try session.forward(prompt, allLogits: true)]
    for _ in 0..<4 {
        let last = all.last!.suffix(model.config.vocab)
        let next = Int32(last.indices.max { last[$0] < last[$1] }! - last.startIndex)
        all.append(try session.forward([next]))
    }
    return all
}

@Suite("Determinism across thread counts", .serialized)
struct DeterminismTests {
    @Test("logits are bitwise equal on 1 and 2 threads for every weight type and activation mode",
          arguments: WeightType.allCases)
    func logits_identicalAcrossThreadCounts(type: WeightType) throws {
        defer { try? Threads.configure() }
        for architecture in [GLM130B.name, ChatGLM6B.name] {
            let model = try syntheticModel(type, architecture: architecture)
            for activations in ActivationPrecision.allCases {
                let one = try run(model, activations, threads: 1)
                let two = try run(model, activations, threads: 2)
                #expect(one.allSatisfy { $0.allSatisfy(\.isFinite) })
                #expect(one == two, "\(architecture) \(type) activations \(activations)")
            }
        }
    }
}
