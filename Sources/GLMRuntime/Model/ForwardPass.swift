// ForwardPass.swift — the GLM layers over named buffers, shared by a session
// (one sequence's chunk of tokens) and the batch decoder (one token of each
// of several sequences). Rows are tokens; each sequence's rows are a Segment
// with its own KV cache, positions and mask:
//
//   x  = LN1(embedding)                                  (first layer's input LN)
//   per layer:  qkv = W_qkv x + b ; RoPE(q, k) ; store k, v in each segment's cache
//               a   = attention(q, cache) per segment    (bidirectional before sop, causal after)
//               y   = LN2(x * alpha + W_o a + b_o)       (DeepNorm)
//               f   = W_down act(W_up y + b_up) + b_down (GeGLU or GeLU)
//               x   = LN1'(y * alpha + f)                (next layer's LN1, or the final LN)
//   logits = W_out x
//
// The pre-norm kin (ChatGLM2/3, GLM-4) keep x as the residual stream instead:
//   per layer:  x = x + W_o attention(RoPE(W_qkv RMS1(x) + b))   (sandwich: + RMS'(...))
//               x = x + W_down swiglu(W_up RMS2(x))
//   logits = W_out RMS_final(x)
//
// The weight products run over all rows at once: a mat-mat for one sequence's
// chunk, and for a batch the batched mat-vec, whose rows are bit for bit what
// each sequence would get alone while the weights stream from memory once.
// Each layer runs the compiled plan (Fusion/LayerPlan.swift): fused by default.

import KernelBridge

/// One sequence's rows [row, row + count) of a chunk, at cache indices [start, start + count).
struct Segment {
    let cache: any KVCache
    let row: Int
    let count: Int
    let start: Int
    /// Keys [0, this) are seen by every query (the prompt before sop).
    let bidirectionalLength: Int
}

final class ForwardPass {
    let model: GLMModel
    let kernels: any KernelSet
    /// The layer's steps, compiled once from the plan (fused, or not with --no-fusion).
    let steps: [CompiledStep]
    let plan: [PlanOp]
    var buffers: ActivationBuffers
    let inverseFrequencies: [Float]
    let qkvLayout: QKVLayout
    /// This chunk's sequences; kept between calls so that a step does not allocate.
    var segments: [Segment] = []

    init(model: GLMModel, kernels: any KernelSet, fusion: Bool) throws {
        self.model = model
        self.kernels = kernels
        plan = fusion ? LayerPlan.fused(model.config) : LayerPlan.unfused(model.config)
        let buffers = ActivationBuffers(config: model.config)
        self.buffers = buffers
        steps = plan.map { CompiledStep($0, buffers: buffers) }
        // GLM-130B's and ChatGLM-6B's code rounds them to fp16; the kin's keep FP32
        inverseFrequencies = try Kernels.ropeInverseFrequencies(rotaryDim: model.config.rotaryDim, base: model.config.ropeBase,
                                                                roundedToHalf: model.config.residual == .deepNorm)
        qkvLayout = QKVLayout(config: model.config)
        segments.reserveCapacity(16)
    }

    /// The layers' input for `ids` into buffers.x (rows 0 ..< ids.count): LN1 of layer 0 over
    /// the embeddings (DeepNorm), or the embeddings themselves (pre-norm's residual stream).
    func embed(_ ids: [Int32]) throws {
        let c = model.config, m = ids.count
        buffers.reserve(rows: m)
        guard c.residual == .deepNorm else { return try kernels.embedding(model.tokenEmbedding, ids: ids, into: &buffers.x) }
        try kernels.embedding(model.tokenEmbedding, ids: ids, into: &buffers.embedded)
        let first = model.layers[0], embedded = buffers.embedded
        try kernels.residualLayerNorm(x: embedded, alpha: 1, y: nil, gamma: first.attentionNormWeight,
                                      beta: first.attentionNormBias ?? [], rows: m, eps: c.layerNormEps, into: &buffers.x)
    }

    /// Writes the position ids of a segment's rows from its prompt layout.
    func setPositions(row: Int, start: Int, count: Int, layout: PromptLayout) {
        for t in 0..<count {
            let (position, block) = model.architecture.positions(at: start + t, layout: layout)
            buffers.positions[row + t] = position
            buffers.blocks[row + t] = block
        }
    }

    /// Runs layers `range` over rows 0 ..< m of buffers.x, in place. `batched`: every
    /// row is a different sequence (the products take the batched mat-vec).
    func layers(_ range: Range<Int>, rows m: Int, batched: Bool) throws {
        for index in range {
            let layer = model.layers[index]
            let next = index == model.layers.count - 1
                ? (model.outputNormWeight, model.outputNormBias)
                : (model.layers[index + 1].attentionNormWeight, model.layers[index + 1].attentionNormBias)
            let context = LayerContext(index: index, weights: layer, nextNorm: next, rows: m, batched: batched)
            for step in steps { try run(step, context) }
        }
    }

    /// Logits (rows, vocab) of buffers.x's rows `rows` into buffers.logits, checked finite
    /// (pre-norm: of the final RMSNorm of those rows). A batch's rows go through the
    /// batched mat-vec, one row through the mat-vec: the same bits.
    func logits(rows: Range<Int>, positions: (Int) -> Int) throws {
        let c = model.config
        buffers.reserve(logitRows: rows.count)
        let preNorm = c.residual != .deepNorm
        if rows.lowerBound == 0 {
            if preNorm { try finalNorm(of: .x, rows: rows.count) }
            let x = preNorm ? buffers.normed : buffers.x
            try kernels.matvecs(model.output, x, tokens: rows.count, bias: nil, into: &buffers.logits)
        } else {
            precondition(rows.count == 1, "logits of a later row: one row only")
            let x = buffers.x
            buffers.lastRow.withUnsafeMutableBufferPointer { last in
                x.withUnsafeBufferPointer { last.baseAddress!.update(from: $0.baseAddress! + rows.lowerBound * c.hidden, count: c.hidden) }
            }
            if preNorm {
                // the row's norm lands in normed's first row; back into lastRow, the mat-vec's exact-size input
                try withTaken(.normed) { normed in
                    try kernels.residualRMSNorm(residual: &buffers.lastRow, adding: nil, gamma: model.outputNormWeight, rows: 1,
                                                eps: c.layerNormEps, into: &normed)
                    normed.withUnsafeBufferPointer { n in buffers.lastRow.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: n.baseAddress!, count: c.hidden) } }
                }
            }
            let last = buffers.lastRow
            try kernels.matvec(model.output, last, bias: nil, into: &buffers.logits)
        }
        // NaN or infinite weights (or a kernel that returns them) would sample garbage silently
        for i in 0..<(rows.count * c.vocab) where !buffers.logits[i].isFinite {
            throw GenerationError.nonFinite(position: positions(i / c.vocab))
        }
    }

    /// buffers.normed rows 0 ..< m = the final RMSNorm of `input`'s (pre-norm).
    private func finalNorm(of input: PlanBuffer, rows m: Int) throws {
        try withTaken(.normed) { normed in
            try kernels.residualRMSNorm(residual: &buffers[input], adding: nil, gamma: model.outputNormWeight, rows: m,
                                        eps: model.config.layerNormEps, into: &normed)
        }
    }

    /// Keys every query of a prompt with this layout sees: the part before sop for the
    /// DeepNorm architectures, none for the causal kin.
    func bidirectionalLength(_ layout: PromptLayout) -> Int {
        model.config.bidirectionalPrefix ? layout.bidirectionalLength : 0
    }
}
