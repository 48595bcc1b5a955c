// BatchDecoder.swift — several sequences generating at once (continuous
// batching). Each sequence owns its KV cache, positions and mask; a decode
// step runs the next token of every sequence in the batch through the layers
// together, so each weight matrix streams from memory once per step for all
// of them (the batched mat-vec), while attention runs per sequence over its
// own cache. A row's arithmetic does not depend on the other rows, so each
// sequence's logits are bit for bit those it would get alone.
//
// Prompts prefill one at a time in slices of layers, interleaved with decode
// steps by the caller, so that a long prompt delays the running sequences by
// one slice rather than by its whole prefill. The slices are of layers, not
// of tokens, because GLM's prompt is bidirectional: every prompt token's keys
// depend on the whole prompt, so the prompt must pass each layer in one piece.
// A causal model's (ChatGLM2/3, GLM-4) sequence keeps the keys and values of
// the tokens a new prompt shares with what it held (a chat's earlier turns
// sent again): only the rest is prefilled.

import KernelBridge

public final class BatchDecoder {
    public let model: GLMModel
    /// Most sequences one decode step takes.
    public let maxSequences: Int
    private let decodePass: ForwardPass
    private let prefillPass: ForwardPass
    private var ids: [Int32] = []
    /// The prompt being prefilled: its sequence, its length, the first token it runs (the ones
    /// before were in the cache already) and the next layer.
    private var pending: (sequence: Sequence, tokens: Int, start: Int, nextLayer: Int)?
    /// The pending prompt's ids that run (they join the sequence's cached ids when it finishes).
    private var pendingIDs: [Int32] = []

    /// One sequence: its cache and its prompt's layout.
    public final class Sequence {
        public let cache: any KVCache
        fileprivate(set) var layout: PromptLayout?
        fileprivate var cached: CachedTokens
        /// The ids whose keys and values the cache holds, in order.
        public var cachedIDs: [Int32] { cached.ids }
        public var length: Int { cache.length }
        public var capacity: Int { cache.capacity }

        fileprivate init(cache: any KVCache) {
            self.cache = cache
            cached = CachedTokens(capacity: cache.capacity)
        }

        /// How many of `prompt`'s first tokens this sequence's cache can keep for it: the
        /// cached start of a causal model's prompt, 0 otherwise.
        public func reusable(for prompt: [Int32], causal: Bool) -> Int { causal ? cached.shared(with: prompt) : 0 }
    }

    public init(model: GLMModel, maxSequences: Int, kernels: (any KernelSet)? = nil, fusion: Bool = true) throws {
        guard maxSequences > 0 else { throw GenerationError.invalidArgument("a batch needs at least one sequence") }
        self.model = model
        self.maxSequences = maxSequences
        let kernels = try kernels ?? Kernels()
        decodePass = try ForwardPass(model: model, kernels: kernels, fusion: fusion)
        prefillPass = try ForwardPass(model: model, kernels: kernels, fusion: fusion)
        // the decode step's buffers at their widest, once, so that no step allocates
        decodePass.buffers.reserve(rows: maxSequences)
        decodePass.buffers.reserve(logitRows: maxSequences)
        decodePass.segments.reserveCapacity(maxSequences)
        ids.reserveCapacity(maxSequences)
    }

    /// A new, empty sequence whose cache holds `capacity` tokens (default: the model's context).
    public func makeSequence(capacity: Int? = nil, kvType: KVCacheType = .f32) throws -> Sequence {
        let c = model.config
        return Sequence(cache: try kvType.make(config: c, capacity: min(capacity ?? c.contextLength, c.contextLength)))
    }

    /// Throws when `bytes` (the caches a caller is about to make) exceed the machine's memory.
    public static func requireMemory(_ bytes: Int, for what: @autoclosure () -> String) throws {
        try KVLayout.requireMemory(bytes, for: what())
    }

    /// Whether a prompt is part-way through its layers.
    public var isPrefilling: Bool { pending != nil }

    /// Starts the prefill of `prompt` into `sequence`: a causal model keeps the cached tokens
    /// the prompt starts with (Sequence.reusable) and runs the rest; otherwise the sequence is
    /// emptied first. `layout` overrides the one read from the prompt (blank filling names the
    /// mask it fills). Returns the prompt tokens whose cache was kept.
    @discardableResult
    public func beginPrefill(_ sequence: Sequence, prompt: [Int32], layout: PromptLayout? = nil) throws -> Int {
        let c = model.config
        guard pending == nil else { throw GenerationError.invalidArgument("a prefill is already running") }
        guard !prompt.isEmpty else { throw GenerationError.invalidArgument("the prompt is empty") }
        guard prompt.count <= sequence.capacity else {
            throw GenerationError.contextFull(needed: prompt.count, capacity: sequence.capacity)
        }
        if let bad = prompt.first(where: { $0 < 0 || Int($0) >= c.vocab }) {
            throw GenerationError.invalidArgument("token id \(bad) is outside the vocabulary [0, \(c.vocab))")
        }
        let kept = layout == nil ? sequence.reusable(for: prompt, causal: !c.bidirectionalPrefix) : 0
        sequence.cache.length = kept
        sequence.cached.keep(kept)
        sequence.layout = layout ?? PromptLayout(ids: prompt, tokens: c.tokens)
        let rest = Array(prompt[kept...])
        pendingIDs = rest
        try prefillPass.embed(rest)
        prefillPass.setPositions(row: 0, start: kept, count: rest.count, layout: sequence.layout!)
        pending = (sequence, prompt.count, kept, 0)
        return kept
    }

    /// Runs the pending prompt through up to `layers` more layers. Returns the logits of
    /// its last position once every layer has run (the sequence then holds the prompt).
    public func continuePrefill(layers: Int) throws -> [Float]? {
        guard let (sequence, total, start, next) = pending else { throw GenerationError.invalidArgument("no prefill is running") }
        let m = total - start
        let end = min(model.layers.count, next + max(1, layers))
        prefillPass.segments.removeAll(keepingCapacity: true)
        prefillPass.segments.append(Segment(cache: sequence.cache, row: 0, count: m, start: start,
                                            bidirectionalLength: prefillPass.bidirectionalLength(sequence.layout!)))
        do {
            try prefillPass.layers(next..<end, rows: m, batched: false)
        } catch {
            pending = nil
            throw error
        }
        guard end == model.layers.count else {
            pending = (sequence, total, start, end)
            return nil
        }
        pending = nil
        sequence.cache.length = total
        sequence.cached.append(contentsOf: pendingIDs)
        try prefillPass.logits(rows: (m - 1)..<m) { _ in total - 1 }
        return Array(prefillPass.buffers.logits[0..<model.config.vocab])
    }

    /// Abandons the pending prefill (its client left).
    public func cancelPrefill() { pending = nil }

    /// One decode step: `tokens[i]` is the next token of `sequences[i]`. Returns the
    /// logits, row i (vocab floats) for sequence i; the array is the decoder's own
    /// buffer (it may hold more rows than the batch), valid until the next step.
    public func decode(_ sequences: [Sequence], tokens: [Int32]) throws -> [Float] {
        let c = model.config, b = sequences.count
        guard b > 0, b == tokens.count, b <= maxSequences else {
            throw GenerationError.invalidArgument("a decode step takes 1...\(maxSequences) sequences, one token each")
        }
        for (s, token) in zip(sequences, tokens) {
            guard s.layout != nil, s.length > 0 else { throw GenerationError.invalidArgument("a sequence decodes after its prompt") }
            guard s.length < s.capacity else { throw GenerationError.contextFull(needed: s.length + 1, capacity: s.capacity) }
            guard token >= 0, Int(token) < c.vocab else {
                throw GenerationError.invalidArgument("token id \(token) is outside the vocabulary [0, \(c.vocab))")
            }
        }
        ids.removeAll(keepingCapacity: true)
        ids.append(contentsOf: tokens)
        try decodePass.embed(ids)
        decodePass.segments.removeAll(keepingCapacity: true)
        for (row, s) in sequences.enumerated() {
            decodePass.setPositions(row: row, start: s.length, count: 1, layout: s.layout!)
            decodePass.segments.append(Segment(cache: s.cache, row: row, count: 1, start: s.length,
                                               bidirectionalLength: decodePass.bidirectionalLength(s.layout!)))
        }
        try decodePass.layers(0..<model.layers.count, rows: b, batched: true)
        for (s, token) in zip(sequences, tokens) {
            s.cache.length += 1
            s.cached.append(token)
        }
        try decodePass.logits(rows: 0..<b) { sequences[$0].length - 1 }
        return decodePass.buffers.logits
    }
}
