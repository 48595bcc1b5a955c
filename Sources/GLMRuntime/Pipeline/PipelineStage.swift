// PipelineStage.swift — one pipeline stage's share of the forward pass, for a
// stage that lives in its own process (an MPI rank): a contiguous range of
// layers, run for any of several sequences, each with its own KV cache. The
// first stage also embeds; the last also makes the logits (either may hold no
// layer: the embedding or the output layer alone). The hidden states
// (rows, hidden) handed between stages are buffers.x of the forward pass, so a
// chain of stages computes bit for bit what InferenceSession.forward does.

import KernelBridge

/// What a stage needs to run a chunk of one sequence: its rows' cache indices,
/// position ids and mask, as the first stage derived them from the prompt's layout.
public struct StageChunk: Sendable, Equatable {
    public var sequence: Int
    public var start: Int
    public var positions: [Int32]
    public var blocks: [Int32]
    /// Keys [0, this) every query sees (before sop, for the bidirectional architectures).
    public var bidirectionalLength: Int
    public var rows: Int { positions.count }

    public init(sequence: Int, start: Int, positions: [Int32], blocks: [Int32], bidirectionalLength: Int) {
        self.sequence = sequence
        self.start = start
        self.positions = positions
        self.blocks = blocks
        self.bidirectionalLength = bidirectionalLength
    }

    /// The chunk of `count` tokens at cache indices [start, start + count) of a prompt with
    /// `layout`, as the first stage derives it (what InferenceSession.forward uses).
    public init(model: GLMModel, sequence: Int, start: Int, count: Int, layout: PromptLayout) {
        var positions: [Int32] = [], blocks: [Int32] = []
        for t in start..<(start + count) {
            let (p, b) = model.architecture.positions(at: t, layout: layout)
            positions.append(p)
            blocks.append(b)
        }
        self.init(sequence: sequence, start: start, positions: positions, blocks: blocks,
                  bidirectionalLength: model.config.bidirectionalPrefix ? layout.bidirectionalLength : 0)
    }
}

public final class PipelineStage {
    public let model: GLMModel
    /// The model's layers this stage runs.
    public let layers: Range<Int>
    /// The first stage embeds the tokens; the last makes the logits.
    public let embeds: Bool, makesLogits: Bool
    /// Most tokens each sequence's cache holds.
    public let capacity: Int
    private let sessions: [InferenceSession]

    /// `first`, `last`: the stage's place in the pipeline (a stage with no layer is told, not inferred).
    public init(model: GLMModel, layers: Range<Int>, first: Bool, last: Bool, sequences: Int, capacity: Int, kernels: any KernelSet,
                fusion: Bool = true, kvType: KVCacheType = .f32) throws {
        let n = model.layers.count
        guard layers.lowerBound >= 0, layers.upperBound <= n, !layers.isEmpty || first || last,
              !first || layers.lowerBound == 0, !last || layers.upperBound == n else {
            throw GenerationError.invalidArgument("a stage runs a range of the model's \(n) layers (the first from 0, the last to \(n), only they may be empty), not \(layers)")
        }
        (embeds, makesLogits) = (first, last)
        guard sequences >= 1, sequences <= 4096 else { throw GenerationError.invalidArgument("a stage holds 1...4096 sequences, not \(sequences)") }
        self.model = model
        self.layers = layers
        sessions = try (0..<sequences).map { _ in
            try InferenceSession(model: model, capacity: capacity, kernels: kernels, fusion: fusion, kvType: kvType, cachedLayers: layers)
        }
        self.capacity = sessions[0].capacity
    }

    public var sequences: Int { sessions.count }

    /// The first layer's input for `ids` (rows, hidden). First stage only.
    public func embed(_ ids: [Int32], sequence: Int = 0) throws -> [Float] {
        precondition(embeds, "only the first stage embeds")
        let vocab = model.config.vocab
        for id in ids where id < 0 || Int(id) >= vocab {
            throw GenerationError.invalidArgument("token id \(id) is outside the vocabulary [0, \(vocab))")
        }
        return try session(sequence).embed(ids)
    }

    /// Runs this stage's layers over x (rows, hidden) of `chunk`, storing their keys and
    /// values at cache indices [start, start + rows); returns the layers' output.
    public func run(_ x: [Float], _ chunk: StageChunk) throws -> [Float] {
        let session = try session(chunk.sequence), h = model.config.hidden
        guard chunk.rows > 0, chunk.blocks.count == chunk.rows, x.count == chunk.rows * h else {
            throw GenerationError.invalidArgument("a chunk of \(chunk.rows) rows needs as many block positions and \(chunk.rows) x \(h) hidden values")
        }
        // start comes from a message: compared without an addition that could overflow
        guard chunk.start >= 0, chunk.start <= capacity - chunk.rows else {
            throw GenerationError.contextFull(needed: chunk.start.addingReportingOverflow(chunk.rows).partialValue, capacity: capacity)
        }
        guard (0...(chunk.start + chunk.rows)).contains(chunk.bidirectionalLength) else {
            throw GenerationError.invalidArgument("bidirectional length \(chunk.bidirectionalLength) outside the sequence's \(chunk.start + chunk.rows) tokens")
        }
        let out = try session.layers(layers, x, tokens: chunk.rows, start: chunk.start, positions: chunk.positions,
                                     blocks: chunk.blocks, bidirectional: chunk.bidirectionalLength)
        session.cache.length = chunk.start + chunk.rows
        return out
    }

    /// Logits (rows, vocab) of every row of the last layers' output x, or of the last row. Last stage only.
    public func logits(_ x: [Float], _ chunk: StageChunk, all: Bool) throws -> [Float] {
        precondition(makesLogits, "only the last stage makes logits")
        return try session(chunk.sequence).logits(x, tokens: chunk.rows, all: all)
    }

    private func session(_ sequence: Int) throws -> InferenceSession {
        guard sessions.indices.contains(sequence) else {
            throw GenerationError.invalidArgument("sequence \(sequence) outside the stage's \(sessions.count)")
        }
        return sessions[sequence]
    }
}
