// InferenceSession.swift — one sequence through the model: its KV cache, its
// prompt layout, and the forward pass (ForwardPass.swift) that runs a chunk
// of its tokens (the prompt, or one generated token) through every layer.
//
// Position ids and the mask come from the prompt's [gMASK]/[MASK] and sop
// tokens, as the architecture's reference code derives them.

import KernelBridge

public final class InferenceSession {
    public let model: GLMModel
    /// The kernels every operation runs on: the built-ins, or the plugin registry's dispatcher.
    public var kernels: any KernelSet { pass.kernels }
    /// The sequence's keys and values.
    public let cache: any KVCache
    /// Tokens the KV cache holds.
    public var length: Int { cache.length }
    /// Most tokens the cache can hold.
    public var capacity: Int { cache.capacity }
    private var layout: PromptLayout?
    private var cached: CachedTokens
    /// The ids whose keys and values the cache holds, in order (what reusePrefix compares).
    public var cachedIDs: [Int32] { cached.ids }
    /// The layer's operations: the fused plan, or the unfused one (--no-fusion).
    public var plan: [PlanOp] { pass.plan }
    let pass: ForwardPass

    /// `cachedLayers`: the layers whose keys and values the cache holds (a pipeline
    /// stage's; all by default). Such a session runs only those layers.
    public init(model: GLMModel, capacity: Int? = nil, kernels: (any KernelSet)? = nil, fusion: Bool = true,
                kvType: KVCacheType = .f32, cachedLayers: Range<Int>? = nil) throws {
        self.model = model
        let capacity = min(capacity ?? model.config.contextLength, model.config.contextLength)
        guard capacity > 0 else { throw GenerationError.invalidArgument("the KV cache capacity must be positive") }
        cache = try kvType.make(config: model.config, capacity: capacity, layers: cachedLayers)
        cached = CachedTokens(capacity: capacity)
        pass = try ForwardPass(model: model, kernels: try kernels ?? Kernels(), fusion: fusion)
    }

    /// Empties the cache; the next forward call is a new prompt.
    public func reset() {
        cache.length = 0
        layout = nil
        cached.keep(0)
    }

    /// Prepares the cache for a prompt `ids` and returns how many of its first tokens it
    /// already holds: the rest is what the next forward call must run. A causal model's
    /// key at position t depends on ids[0 ... t] alone, so the cached tokens that the
    /// prompt starts with stay valid (a chat's earlier turns); at least one token is left
    /// to run, for its logits. GLM-130B and ChatGLM-6B attend bidirectionally before sop,
    /// where text added anywhere changes every key: their cache is always emptied.
    public func reusePrefix(of ids: [Int32]) -> Int {
        guard !model.config.bidirectionalPrefix else {
            reset()
            return 0
        }
        let k = cached.shared(with: ids)
        cache.length = k
        cached.keep(k)
        if k == 0 { layout = nil }
        return k
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
    ///
    /// The last-position logits are the session's own buffer: a caller that keeps
    /// them across the next call makes that call copy it (drop them first, as
    /// TokenStream does, and a decode step allocates nothing).
    public func forward(_ ids: [Int32], allLogits: Bool = false, layout promptLayout: PromptLayout? = nil) throws -> [Float] {
        let c = model.config
        let m = ids.count
        guard m > 0 else { throw GenerationError.invalidArgument("no tokens to run") }
        guard length + m <= capacity else {
            throw GenerationError.contextFull(needed: length + m, capacity: capacity)
        }
        for id in ids where id < 0 || Int(id) >= c.vocab { // a plain loop: the generic first(where:) allocates in debug builds
            throw GenerationError.invalidArgument("token id \(id) is outside the vocabulary [0, \(c.vocab))")
        }
        if layout == nil { layout = promptLayout ?? PromptLayout(ids: ids, tokens: c.tokens) }
        let start = length
        try pass.embed(ids)
        pass.setPositions(row: 0, start: start, count: m, layout: layout!)
        try runLayers(0..<model.layers.count, rows: m, start: start)
        cache.length += m
        cached.append(contentsOf: ids)
        if allLogits {
            try pass.logits(rows: 0..<m) { start + $0 }
            return Array(pass.buffers.logits[0..<(m * c.vocab)])
        }
        try pass.logits(rows: (m - 1)..<m) { _ in start + m - 1 }
        return pass.buffers.logits.count == c.vocab ? pass.buffers.logits : Array(pass.buffers.logits[0..<c.vocab])
    }

    private func runLayers(_ range: Range<Int>, rows m: Int, start: Int) throws {
        pass.segments.removeAll(keepingCapacity: true)
        pass.segments.append(Segment(cache: cache, row: 0, count: m, start: start, bidirectionalLength: pass.bidirectionalLength(layout!)))
        try pass.layers(range, rows: m, batched: false)
    }

    // MARK: - The three parts of a forward pass (a pipeline stage runs a range of layers)

    /// The first layer's input (m, hidden): LN1 of layer 0 over the token embeddings, or them (pre-norm).
    func embed(_ ids: [Int32]) throws -> [Float] {
        try pass.embed(ids)
        return Array(pass.buffers.x[0..<(ids.count * model.config.hidden)])
    }

    /// Runs layers `range` over x (m, hidden), storing into their KV caches; returns their output.
    func layers(_ range: Range<Int>, _ x: [Float], tokens m: Int, start: Int, positions: [Int32], blocks: [Int32],
                bidirectional: Int) throws -> [Float] {
        pass.buffers.reserve(rows: m)
        pass.buffers.x.replaceSubrange(0..<x.count, with: x)
        pass.buffers.positions.replaceSubrange(0..<m, with: positions)
        pass.buffers.blocks.replaceSubrange(0..<m, with: blocks)
        pass.segments.removeAll(keepingCapacity: true)
        pass.segments.append(Segment(cache: cache, row: 0, count: m, start: start,
                                     bidirectionalLength: model.config.bidirectionalPrefix ? bidirectional : 0))
        try pass.layers(range, rows: m, batched: false)
        return Array(pass.buffers.x[0..<(m * model.config.hidden)])
    }

    /// Logits (rows, vocab) of every position or the last, from the last layer's output x (m, hidden).
    func logits(_ x: [Float], tokens m: Int, all: Bool) throws -> [Float] {
        let c = model.config
        pass.buffers.reserve(rows: m)
        pass.buffers.x.replaceSubrange(0..<(m * c.hidden), with: x[0..<(m * c.hidden)])
        let rows = all ? 0..<m : (m - 1)..<m
        try pass.logits(rows: rows) { length - m + $0 }
        return Array(pass.buffers.logits[0..<(rows.count * c.vocab)])
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
