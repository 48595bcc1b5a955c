// InferenceSession.swift — the GLM forward pass over the kernels, with a KV
// cache. One call runs a chunk of tokens (the prompt, or one generated token)
// through every layer:
//
//   x  = LN1(embedding)                                  (first layer's input LN)
//   per layer:  qkv = W_qkv x + b ; RoPE(q, k) ; append k, v to the cache
//               a   = attention(q, cache)  (bidirectional before sop, causal after)
//               y   = LN2(x * alpha + W_o a + b_o)       (DeepNorm, fused)
//               f   = W_down act(W_up y + b_up) + b_down (GeGLU or GeLU)
//               x   = LN1'(y * alpha + f)                (next layer's LN1, or the final LN)
//   logits = W_out x
//
// Position ids and the mask come from the prompt's [gMASK]/[MASK] and sop
// tokens, as the architecture's reference code derives them.

import KernelBridge

public final class InferenceSession {
    public let model: GLMModel
    /// The kernels every operation runs on: the built-ins, or the plugin registry's dispatcher.
    public let kernels: any KernelSet
    /// Tokens the KV cache holds.
    public private(set) var length = 0
    /// Most tokens the cache can hold.
    public let capacity: Int
    private var layout: PromptLayout?
    private var keys: [[Float]]     // per layer (capacity, heads, head_dim), post-RoPE
    private var values: [[Float]]   // per layer (capacity, heads, head_dim)
    private let inverseFrequencies: [Float]

    public init(model: GLMModel, capacity: Int? = nil, kernels: (any KernelSet)? = nil) throws {
        self.model = model
        self.kernels = try kernels ?? Kernels()
        let capacity = min(capacity ?? model.config.contextLength, model.config.contextLength)
        guard capacity > 0 else { throw GenerationError.invalidArgument("the KV cache capacity must be positive") }
        self.capacity = capacity
        let cacheSize = capacity * model.config.hidden
        keys = Array(repeating: [Float](repeating: 0, count: cacheSize), count: model.config.layers)
        values = keys
        inverseFrequencies = try Kernels.ropeInverseFrequencies(rotaryDim: model.config.rotaryDim, base: model.config.ropeBase)
    }

    /// Empties the cache; the next forward call is a new prompt.
    public func reset() {
        length = 0
        layout = nil
    }

    /// The position ids (and block positions) of cache indices [start, start + count).
    public func positions(start: Int, count: Int, layout: PromptLayout) -> (positions: [Int32], blocks: [Int32]) {
        var p = [Int32](), b = [Int32]()
        for t in start..<(start + count) {
            let (position, block) = model.architecture.positions(at: t, layout: layout)
            p.append(position)
            b.append(block)
        }
        return (p, b)
    }

    /// Runs `ids` through the model, appending them to the cache. The first call
    /// after reset() is the prompt and fixes the layout (mask, sop). Returns the
    /// logits (rows, vocab) of every position, or of the last one only.
    public func forward(_ ids: [Int32], allLogits: Bool = false) throws -> [Float] {
        let c = model.config
        let m = ids.count
        guard m > 0 else { throw GenerationError.invalidArgument("no tokens to run") }
        guard length + m <= capacity else {
            throw GenerationError.contextFull(needed: length + m, capacity: capacity)
        }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= c.vocab }) {
            throw GenerationError.invalidArgument("token id \(bad) is outside the vocabulary [0, \(c.vocab))")
        }
        if layout == nil { layout = PromptLayout(ids: ids, tokens: c.tokens) }
        let layout = self.layout!
        let start = length
        let (positions, blocks) = self.positions(start: start, count: m, layout: layout)
        let (h, d) = (c.hidden, c.headDim)

        var embedded = [Float](repeating: 0, count: m * h)
        try kernels.embedding(model.tokenEmbedding, ids: ids, into: &embedded)
        let first = model.layers[0]
        var x = [Float](repeating: 0, count: m * h)
        try kernels.residualLayerNorm(x: embedded, alpha: 1, y: nil, gamma: first.attentionNormWeight, beta: first.attentionNormBias,
                                      rows: m, eps: c.layerNormEps, into: &x)

        var qkv = [Float](repeating: 0, count: m * 3 * h)
        var attended = [Float](repeating: 0, count: m * h)
        var projected = [Float](repeating: 0, count: m * h)
        var y = [Float](repeating: 0, count: m * h)
        var up = [Float](repeating: 0, count: m * c.ffnUpRows)
        var activated = [Float](repeating: 0, count: m * c.ffnInner)
        var down = [Float](repeating: 0, count: m * h)
        let rope = RoPEShape(tokens: m, heads: c.heads, headDim: d, form: c.rope, tokenStride: 3 * h, headStride: 3 * d)
        var attention = AttentionShape(queries: m, keys: start + m, heads: c.heads, headDim: d,
                                       firstQueryPosition: start, bidirectionalLength: layout.bidirectionalLength)
        attention.qTokenStride = 3 * h
        attention.qHeadStride = 3 * d

        for (index, layer) in model.layers.enumerated() {
            // attention
            try kernels.matmul(layer.qkv, x, tokens: m, bias: layer.qkvBias, into: &qkv)
            try kernels.rope(&qkv, offset: 0, shape: rope, positions: positions, blockPositions: blocks, inverseFrequencies: inverseFrequencies)
            try kernels.rope(&qkv, offset: d, shape: rope, positions: positions, blockPositions: blocks, inverseFrequencies: inverseFrequencies)
            appendToCache(layer: index, qkv: qkv, tokens: m, start: start)
            try kernels.attention(q: qkv, k: keys[index], v: values[index], shape: attention, into: &attended)
            try kernels.matmul(layer.attentionOutput, attended, tokens: m, bias: layer.attentionOutputBias, into: &projected)
            try kernels.residualLayerNorm(x: x, alpha: c.alpha, y: projected, gamma: layer.ffnNormWeight, beta: layer.ffnNormBias,
                                          rows: m, eps: c.layerNormEps, into: &y)
            // feed-forward; the up projection's bias is applied inside the activation kernel
            try kernels.matmul(layer.ffnUp, y, tokens: m, into: &up)
            switch c.feedForward {
            case .gegluErf: try kernels.biasGeGLU(up, bias: layer.ffnUpBias, rows: m, inner: c.ffnInner, into: &activated)
            case .geluTanh: try kernels.biasGeLU(up, bias: layer.ffnUpBias, rows: m, form: .tanh, into: &activated)
            }
            try kernels.matmul(layer.ffnDown, activated, tokens: m, bias: layer.ffnDownBias, into: &down)
            // DeepNorm residual fused with the next LayerNorm (the next layer's input LN or the final LN)
            let last = index == model.layers.count - 1
            let gamma = last ? model.outputNormWeight : model.layers[index + 1].attentionNormWeight
            let beta = last ? model.outputNormBias : model.layers[index + 1].attentionNormBias
            try kernels.residualLayerNorm(x: y, alpha: c.alpha, y: down, gamma: gamma, beta: beta, rows: m, eps: c.layerNormEps, into: &x)
        }
        length += m

        let rows = allLogits ? m : 1
        let hidden = allLogits ? x : Array(x[((m - 1) * h)...])
        var logits = [Float](repeating: 0, count: rows * c.vocab)
        try kernels.matmul(model.output, hidden, tokens: rows, into: &logits)
        return logits
    }

    /// Copies this chunk's post-RoPE k and v (per head [q|k|v] in qkv) into the cache.
    private func appendToCache(layer: Int, qkv: [Float], tokens m: Int, start: Int) {
        let (h, d, heads) = (model.config.hidden, model.config.headDim, model.config.heads)
        for t in 0..<m {
            for head in 0..<heads {
                let source = t * 3 * h + head * 3 * d
                let target = (start + t) * h + head * d
                for i in 0..<d {
                    keys[layer][target + i] = qkv[source + d + i]
                    values[layer][target + i] = qkv[source + 2 * d + i]
                }
            }
        }
    }
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalidArgument(String)
    case contextFull(needed: Int, capacity: Int)

    public var description: String {
        switch self {
        case let .invalidArgument(reason): return reason
        case let .contextFull(needed, capacity): return "the sequence needs \(needed) positions but the context holds \(capacity)"
        }
    }
}
