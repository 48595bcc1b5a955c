// InferenceSession.swift — the GLM forward pass over the kernels, with a KV
// cache. One call runs a chunk of tokens (the prompt, or one generated token)
// through every layer:
//
//   x  = LN1(embedding)                                  (first layer's input LN)
//   per layer:  qkv = W_qkv x + b ; RoPE(q, k) ; append k, v to the cache
//               a   = attention(q, cache)  (bidirectional before sop, causal after)
//               y   = LN2(x * alpha + W_o a + b_o)       (DeepNorm)
//               f   = W_down act(W_up y + b_up) + b_down (GeGLU or GeLU)
//               x   = LN1'(y * alpha + f)                (next layer's LN1, or the final LN)
//   logits = W_out x
//
// Each layer runs as a plan of operations (Fusion/LayerPlan.swift): fused by
// default, or one pass per step with fusion off.
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
    /// The layer's operations: the fused plan, or the unfused one (--no-fusion).
    public let plan: [PlanOp]
    private var buffers: [PlanBuffer: [Float]] = [:]
    private var keys: [[Float]]     // per layer (capacity, heads, head_dim), post-RoPE
    private var values: [[Float]]   // per layer (capacity, heads, head_dim)
    private let inverseFrequencies: [Float]

    public init(model: GLMModel, capacity: Int? = nil, kernels: (any KernelSet)? = nil, fusion: Bool = true) throws {
        self.model = model
        plan = fusion ? LayerPlan.fused(model.config) : LayerPlan.unfused(model.config)
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
    /// `layout` overrides the one read from the prompt (blank filling names the mask it fills).
    public func forward(_ ids: [Int32], allLogits: Bool = false, layout promptLayout: PromptLayout? = nil) throws -> [Float] {
        let c = model.config
        let m = ids.count
        guard m > 0 else { throw GenerationError.invalidArgument("no tokens to run") }
        guard length + m <= capacity else {
            throw GenerationError.contextFull(needed: length + m, capacity: capacity)
        }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= c.vocab }) {
            throw GenerationError.invalidArgument("token id \(bad) is outside the vocabulary [0, \(c.vocab))")
        }
        if layout == nil { layout = promptLayout ?? PromptLayout(ids: ids, tokens: c.tokens) }
        let layout = self.layout!
        let start = length
        let (positions, blocks) = self.positions(start: start, count: m, layout: layout)

        let x = try embed(ids)
        let hidden = try layers(0..<model.layers.count, x, tokens: m, start: start, positions: positions, blocks: blocks,
                                bidirectional: layout.bidirectionalLength)
        length += m
        return try logits(hidden, tokens: m, all: allLogits)
    }

    // MARK: - The three parts of a forward pass (a pipeline stage runs a range of layers)

    /// LN1 of layer 0 over the token embeddings: (m, hidden).
    func embed(_ ids: [Int32]) throws -> [Float] {
        let c = model.config, m = ids.count
        var embedded = [Float](repeating: 0, count: m * c.hidden)
        try kernels.embedding(model.tokenEmbedding, ids: ids, into: &embedded)
        let first = model.layers[0]
        var x = [Float](repeating: 0, count: m * c.hidden)
        try kernels.residualLayerNorm(x: embedded, alpha: 1, y: nil, gamma: first.attentionNormWeight, beta: first.attentionNormBias,
                                      rows: m, eps: c.layerNormEps, into: &x)
        return x
    }

    /// Runs layers `range` over x (m, hidden), appending to their KV caches; returns their output.
    func layers(_ range: Range<Int>, _ x: [Float], tokens m: Int, start: Int, positions: [Int32], blocks: [Int32],
                bidirectional: Int) throws -> [Float] {
        buffers[.x] = x // the other buffers stay from the last call and are reused when the size matches
        for index in range {
            let layer = model.layers[index]
            let next = index == model.layers.count - 1
                ? (model.outputNormWeight, model.outputNormBias)
                : (model.layers[index + 1].attentionNormWeight, model.layers[index + 1].attentionNormBias)
            let context = LayerContext(index: index, weights: layer, nextNorm: next, tokens: m, start: start,
                                       positions: positions, blocks: blocks, bidirectional: bidirectional)
            for op in plan { try run(op, context) }
        }
        return buffers.removeValue(forKey: .x)!
    }

    /// Logits (rows, vocab) of every position or the last.
    func logits(_ x: [Float], tokens m: Int, all: Bool) throws -> [Float] {
        let c = model.config
        let rows = all ? m : 1
        let hidden = all ? x : Array(x[((m - 1) * c.hidden)...])
        var logits = [Float](repeating: 0, count: rows * c.vocab)
        try kernels.matmul(model.output, hidden, tokens: rows, into: &logits)
        // NaN or infinite weights (or a kernel that returns them) would sample garbage silently
        if let bad = logits.firstIndex(where: { !$0.isFinite }) {
            throw GenerationError.nonFinite(position: length - rows + bad / c.vocab)
        }
        return logits
    }

    // MARK: - Running the plan

    /// Moves a buffer out so it can be written while others are read; sized for `m` tokens
    /// (a buffer already of that size keeps its contents, for in-place steps).
    private func take(_ b: PlanBuffer, _ m: Int) -> [Float] {
        let a = buffers.removeValue(forKey: b) ?? []
        return a.count == m * width(b) ? a : [Float](repeating: 0, count: m * width(b))
    }

    private func read(_ b: PlanBuffer) -> [Float] { buffers[b] ?? [] }

    func run(_ op: PlanOp, _ ctx: LayerContext) throws {
        let c = model.config, m = ctx.tokens, l = ctx.weights
        func rows(_ b: PlanBuffer) -> RowsView { RowsView(stride: width(b)) }
        switch op {
        case let .matmul(w, input, output, b):
            let x = read(input)
            var y = take(output, m)
            try kernels.matmul(weight(w, l), x, tokens: m, bias: b.map { bias($0, l) }, into: &y)
            buffers[output] = y
        case let .addBias(buffer, b):
            var y = take(buffer, m)
            try kernels.eltwise(.addRow, rows: m, n: width(buffer), out: &y, outView: rows(buffer), a: nil, aView: rows(buffer),
                                b: bias(b, l), bView: RowsView(stride: 0))
            buffers[buffer] = y
        case .rope:
            var qkv = take(.qkv, m)
            // each head's [q | k | v]: q and k rotate together in one pass over the row
            let shape = RoPEShape(tokens: m, heads: c.heads, headDim: c.headDim, form: c.rope, tokenStride: 3 * c.hidden,
                                  headStride: 3 * c.headDim, pairOffset: c.headDim)
            try kernels.rope(&qkv, offset: 0, shape: shape, positions: ctx.positions, blockPositions: ctx.blocks, inverseFrequencies: inverseFrequencies)
            buffers[.qkv] = qkv
        case .attention:
            let qkv = read(.qkv)
            appendToCache(layer: ctx.index, qkv: qkv, tokens: m, start: ctx.start)
            var shape = AttentionShape(queries: m, keys: ctx.start + m, heads: c.heads, headDim: c.headDim,
                                       firstQueryPosition: ctx.start, bidirectionalLength: ctx.bidirectional)
            shape.qTokenStride = 3 * c.hidden
            shape.qHeadStride = 3 * c.headDim
            var out = take(.attended, m)
            try kernels.attention(q: qkv, k: keys[ctx.index], v: values[ctx.index], shape: shape, into: &out)
            buffers[.attended] = out
        case let .scaleAdd(output, x, y):
            let (xs, ys) = (read(x), read(y))
            var out = take(output, m)
            try kernels.eltwise(.scaleAdd(c.alpha), rows: m, n: width(output), out: &out, outView: rows(output), a: xs, aView: rows(x),
                                b: ys, bView: rows(y))
            buffers[output] = out
        case let .layerNorm(output, input, n):
            let xs = read(input)
            var out = take(output, m)
            let (g, b) = norm(n, ctx)
            try kernels.residualLayerNorm(x: xs, alpha: 1, y: nil, gamma: g, beta: b, rows: m, eps: c.layerNormEps, into: &out)
            buffers[output] = out
        case let .residualLayerNorm(output, x, y, n):
            let (xs, ys) = (read(x), read(y))
            var out = take(output, m)
            let (g, b) = norm(n, ctx)
            try kernels.residualLayerNorm(x: xs, alpha: c.alpha, y: ys, gamma: g, beta: b, rows: m, eps: c.layerNormEps, into: &out)
            buffers[output] = out
        case let .geluGate(output, input):
            let u = read(input)
            var out = take(output, m)
            try kernels.eltwise(.gelu(.erf), rows: m, n: c.ffnInner, out: &out, outView: rows(output), a: u,
                                aView: RowsView(offset: c.ffnInner, stride: width(input)), b: nil, bView: RowsView(stride: 0))
            buffers[output] = out
        case let .mulGate(output, input):
            let u = read(input)
            var out = take(output, m)
            try kernels.eltwise(.mul, rows: m, n: c.ffnInner, out: &out, outView: rows(output), a: nil, aView: rows(output),
                                b: u, bView: RowsView(stride: width(input)))
            buffers[output] = out
        case let .biasGeGLU(output, input, b):
            let u = read(input)
            var out = take(output, m)
            try kernels.biasGeGLU(u, bias: bias(b, l), rows: m, inner: c.ffnInner, into: &out)
            buffers[output] = out
        case let .gelu(output, input):
            let u = read(input)
            var out = take(output, m)
            try kernels.eltwise(.gelu(.tanh), rows: m, n: width(output), out: &out, outView: rows(output), a: u, aView: rows(input),
                                b: nil, bView: RowsView(stride: 0))
            buffers[output] = out
        case let .biasGeLU(output, input, b):
            let u = read(input)
            var out = take(output, m)
            try kernels.biasGeLU(u, bias: bias(b, l), rows: m, form: .tanh, into: &out)
            buffers[output] = out
        }
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
    case nonFinite(position: Int)

    public var description: String {
        switch self {
        case let .invalidArgument(reason): return reason
        case let .contextFull(needed, capacity): return "the sequence needs \(needed) positions but the context holds \(capacity)"
        case let .nonFinite(position): return "the model's logits at position \(position) are not finite (NaN or infinite weights?): generation stopped"
        }
    }
}
