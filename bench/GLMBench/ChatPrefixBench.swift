// ChatPrefixBench.swift — a causal chat's second turn with and without the
// first turn's KV cache: L ChatGLM3-6B-shaped layers (hidden 4096, 32 query
// heads over 2 key/value groups, SwiGLU inner 13696; q4_0 weights, the
// runtime's defaults otherwise), a first turn of `history` tokens already run,
// then the time to the second turn's first token when only its new tokens run
// (the cache reused) against the whole prompt from an empty cache.

import GLMRuntime
import KernelBridge

public struct ChatPrefixFigure: Codable, Sendable {
    public let layers: Int
    public let threads: Int
    /// Tokens of the first turn (prompt and answer) the second turn's prompt starts with.
    public let history_tokens: Int
    /// Tokens the second turn adds.
    public let new_tokens: Int
    /// Median seconds to the second turn's first token's logits: new tokens only, and the whole prompt.
    public let reuse_ttft_s: Double
    public let recompute_ttft_s: Double
    public var speedup: Double { recompute_ttft_s / reuse_ttft_s }
}

struct ChatPrefixBench {
    let quick: Bool
    let repetitions: Int
    let log: (String) -> Void

    func config(layers: Int) -> ModelConfig {
        let (h, heads, groups, inner) = quick ? (256, 4, 2, 704) : (4096, 32, 2, 13696)
        return ModelConfig(architecture: ChatGLM2.name, layers: layers, hidden: h, heads: heads, headDim: h / heads, ffnInner: inner,
                           vocab: 1024, contextLength: 8192, layerNormEps: 1e-5, ropeBase: 10000, rope: .interleaved,
                           feedForward: .swiglu, tiedOutput: false, tokens: .unknown(eos: 2, pad: nil), alpha: 1, kvHeads: groups,
                           norm: .rmsNorm, residual: .preNorm, qkvBias: true, linearBias: false)
    }

    func model(layers: Int) throws -> GLMModel { try SyntheticModel.build(config(layers: layers), type: .q4_0) }

    func run(layers: Int, threads: Int) throws -> ChatPrefixFigure {
        try Threads.configure(count: threads)
        log("building \(layers) ChatGLM3-6B-shaped layer(s) (q4_0) for a two-turn chat ...")
        let glm = try model(layers: layers)
        let (historyLength, newLength) = quick ? (64, 8) : (384, 24)
        let history = (0..<historyLength).map { Int32(10 + $0 % 900) }
        let prompt = history + (0..<newLength).map { Int32(500 + $0) }
        let session = try InferenceSession(model: glm, capacity: prompt.count + 1)
        // the first turn's tokens in the cache (untimed), then the second turn's new tokens only
        let reuse = try measure(repetitions: repetitions, setup: {
            session.reset()
            _ = try session.forward(history)
        }) {
            let kept = session.reusePrefix(of: prompt)
            precondition(kept == historyLength)
            _ = try session.forward(Array(prompt[kept...]))
        }
        let recompute = try measure(warmup: 1, repetitions: repetitions) {
            session.reset()
            _ = try session.forward(prompt)
        }
        let figure = ChatPrefixFigure(layers: layers, threads: threads, history_tokens: historyLength, new_tokens: newLength,
                                      reuse_ttft_s: reuse.median, recompute_ttft_s: recompute.median)
        log(String(format: "chat turn 2 (%d layers, %d threads): %d history + %d new tokens: reusing the cache %.3f s, recomputing %.3f s (%.1fx)",
                   layers, threads, historyLength, newLength, figure.reuse_ttft_s, figure.recompute_ttft_s, figure.speedup))
        return figure
    }
}
