// MPISequence.swift — one sequence of the MPI pipeline, seen from rank 0 as a
// session (SequenceForwarding): TokenStream, chat and blank filling run on it
// unchanged. Its keys and values live on the ranks, each rank's for its own
// layers; rank 0 keeps the layout and the ids, and a forward call is one chunk
// through every stage and back.

import GLMRuntime

public final class MPISequence: SequenceForwarding {
    public let pipeline: MPIPipeline
    public let sequence: Int
    public private(set) var length = 0
    public var capacity: Int { pipeline.stage.capacity }
    private var layout: PromptLayout?
    private var cached: CachedTokens

    public init(pipeline: MPIPipeline, sequence: Int = 0) throws {
        guard pipeline.isDriver else { throw MPIPipelineError("sequences are driven from rank 0") }
        guard (0..<pipeline.stage.sequences).contains(sequence) else {
            throw MPIPipelineError("sequence \(sequence) outside the pipeline's \(pipeline.stage.sequences)")
        }
        self.pipeline = pipeline
        self.sequence = sequence
        cached = CachedTokens(capacity: pipeline.stage.capacity)
    }

    public func reset() {
        length = 0
        layout = nil
        cached.keep(0)
    }

    /// As InferenceSession.reusePrefix: a causal prompt keeps the cached tokens it starts
    /// with (the ranks overwrite their caches from the new start); the bidirectional never do.
    public func reusePrefix(of ids: [Int32]) -> Int {
        guard !pipeline.model.config.bidirectionalPrefix else {
            reset()
            return 0
        }
        let k = cached.shared(with: ids)
        length = k
        cached.keep(k)
        if k == 0 { layout = nil }
        return k
    }

    public func forward(_ ids: [Int32], allLogits: Bool, layout promptLayout: PromptLayout?) throws -> [Float] {
        if layout == nil, let promptLayout { layout = promptLayout }
        try submit(ids, allLogits: allLogits)
        return try result()
    }

    /// Sends `ids` into the pipeline without waiting for their logits (pipelined decode
    /// of several sequences); result() takes them. The first chunk must be the prompt.
    public func submit(_ ids: [Int32], allLogits: Bool = false) throws {
        guard !ids.isEmpty else { throw GenerationError.invalidArgument("no tokens to run") }
        if layout == nil { layout = PromptLayout(ids: ids, tokens: pipeline.model.config.tokens) }
        guard length + ids.count <= capacity else { throw GenerationError.contextFull(needed: length + ids.count, capacity: capacity) }
        try pipeline.submit(sequence: sequence, ids: ids, start: length, layout: layout!, allLogits: allLogits)
        length += ids.count
        cached.append(contentsOf: ids)
    }

    /// The logits of this sequence's oldest chunk in flight; call in submission order.
    public func result() throws -> [Float] {
        let (from, logits) = try pipeline.nextResult()
        guard from == sequence else { throw MPIPipelineError("the pipeline answered sequence \(from) where \(sequence) was next") }
        return logits
    }
}
