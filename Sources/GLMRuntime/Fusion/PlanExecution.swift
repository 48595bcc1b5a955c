// PlanExecution.swift — a layer plan compiled once into steps over the named
// buffers (ActivationBuffers), and how ForwardPass runs one step.

import KernelBridge

/// What a step needs beyond the plan: the layer, its weights, the rows.
struct LayerContext {
    let index: Int
    let weights: LayerWeights
    let nextNorm: (weight: [Float], bias: [Float]?)
    let rows: Int
    let batched: Bool
}

/// A plan operation with its buffers' row views resolved once.
struct CompiledStep {
    let op: PlanOp
    /// Row views of the buffers the operation names (stride = the buffer's width).
    let output: RowsView, input: RowsView, other: RowsView
    let outputWidth: Int

    init(_ op: PlanOp, buffers: ActivationBuffers) {
        self.op = op
        func view(_ b: PlanBuffer?) -> RowsView { RowsView(stride: b.map(buffers.width) ?? 0) }
        let (out, input, other): (PlanBuffer?, PlanBuffer?, PlanBuffer?) = {
            switch op {
            case let .matmul(_, input, output, _): return (output, input, nil)
            case let .addBias(b, _): return (b, b, nil)
            case .rope, .attention: return (nil, nil, nil)
            case let .scaleAdd(o, x, y), let .residualLayerNorm(o, x, y, _), let .residualRMSNorm(o, x, y, _): return (o, x, y)
            case let .layerNorm(o, i, _), let .geluGate(o, i), let .mulGate(o, i), let .biasGeGLU(o, i, _),
                 let .gelu(o, i), let .biasGeLU(o, i, _), let .rmsNorm(o, i, _), let .siluGate(o, i), let .mulUp(o, i),
                 let .swiGLU(o, i): return (o, i, nil)
            case let .residualAdd(x, y): return (x, x, y)
            }
        }()
        (output, self.input, self.other) = (view(out), view(input), view(other))
        outputWidth = out.map(buffers.width) ?? 0
    }
}

extension ForwardPass {
    func weight(_ w: PlanWeight, _ l: LayerWeights) -> WeightMatrix {
        switch w {
        case .qkv: return l.qkv
        case .attentionOutput: return l.attentionOutput
        case .ffnUp: return l.ffnUp
        case .ffnDown: return l.ffnDown
        }
    }

    /// The bias a plan step names; the plan has the steps the config says and the model
    /// file was checked to match, so a missing one is an inconsistent in-memory model.
    func bias(_ b: PlanBias, _ l: LayerWeights) throws -> [Float] {
        let bias: [Float]?
        switch b {
        case .qkv: bias = l.qkvBias
        case .attentionOutput: bias = l.attentionOutputBias
        case .ffnUp: bias = l.ffnUpBias
        case .ffnDown: bias = l.ffnDownBias
        }
        guard let bias else { throw GenerationError.invalidArgument("the layer plan adds a \(b) bias the model does not have") }
        return bias
    }

    /// A norm's weight and (LayerNorm's) bias.
    func norm(_ n: PlanNorm, _ c: LayerContext) throws -> (weight: [Float], bias: [Float]) {
        let w = c.weights
        let norm: ([Float]?, [Float]?)
        switch n {
        case .ffn: norm = (w.ffnNormWeight, w.ffnNormBias)
        case .next: norm = (c.nextNorm.weight, c.nextNorm.bias)
        case .attention: norm = (w.attentionNormWeight, w.attentionNormBias)
        case .postAttention: norm = (w.postAttentionNormWeight, nil)
        case .postFFN: norm = (w.postFFNNormWeight, nil)
        }
        guard let weight = norm.0 else { throw GenerationError.invalidArgument("the layer plan has a \(n) norm the model does not have") }
        if model.config.norm == .layerNorm, norm.1 == nil {
            throw GenerationError.invalidArgument("the model's \(n) LayerNorm has no bias")
        }
        return (weight, norm.1 ?? [])
    }

    /// Runs `body` on buffer `b` moved out of `buffers` (a swap, no copy), so that it can be
    /// written while another buffer is too: two inout accesses to `buffers` would overlap.
    func withTaken(_ b: PlanBuffer, _ body: (inout [Float]) throws -> Void) throws {
        var taken: [Float] = []
        swap(&taken, &buffers[b])
        defer { swap(&taken, &buffers[b]) }
        try body(&taken)
    }

    /// Runs one step over rows 0 ..< ctx.rows. Inputs are read into locals before the
    /// output's inout access begins (Swift's exclusivity rule covers the whole
    /// buffers struct); no step's output is one of its inputs (in-place steps pass nil).
    func run(_ step: CompiledStep, _ ctx: LayerContext) throws {
        let c = model.config, m = ctx.rows, l = ctx.weights
        switch step.op {
        case let .matmul(w, input, output, b):
            let x = buffers[input]
            if ctx.batched {
                try kernels.matvecs(weight(w, l), x, tokens: m, bias: try b.map { try bias($0, l) }, into: &buffers[output])
            } else {
                try kernels.matmul(weight(w, l), x, tokens: m, bias: try b.map { try bias($0, l) }, into: &buffers[output])
            }
        case let .addBias(buffer, b):
            try kernels.eltwise(.addRow, rows: m, n: step.outputWidth, out: &buffers[buffer], outView: step.output, a: nil,
                                aView: step.output, b: try bias(b, l), bView: RowsView(stride: 0))
        case .rope:
            // with as many key heads as query heads, each head's q and its k rotate together in
            // one pass over the row; grouped-query attention rotates the queries, then the keys
            let l = qkvLayout, (positions, blocks) = (buffers.positions, buffers.blocks)
            func rotate(heads: Int, offset: Int, pairOffset: Int) throws {
                let shape = RoPEShape(tokens: m, heads: heads, headDim: c.headDim, form: c.rope, tokenStride: l.tokenStride,
                                      headStride: l.headStride, pairOffset: pairOffset, rotaryDim: c.rotaryDim)
                try kernels.rope(&buffers.qkv, offset: offset, shape: shape, positions: positions, blockPositions: blocks,
                                 inverseFrequencies: inverseFrequencies)
            }
            if c.kvHeads == c.heads {
                try rotate(heads: c.heads, offset: 0, pairOffset: l.keyOffset)
            } else {
                try rotate(heads: c.heads, offset: 0, pairOffset: 0)
                try rotate(heads: c.kvHeads, offset: l.keyOffset, pairOffset: 0)
            }
        case .attention:
            let qkv = buffers.qkv
            for s in segments {
                s.cache.store(layer: ctx.index, qkv: qkv, row: s.row, count: s.count, at: s.start)
                try s.cache.attend(layer: ctx.index, kernels: kernels, qkv: qkv, row: s.row, count: s.count, start: s.start,
                                   bidirectionalLength: s.bidirectionalLength, into: &buffers.attended)
            }
        case let .scaleAdd(output, x, y):
            let (a, b) = (buffers[x], buffers[y])
            try kernels.eltwise(.scaleAdd(c.alpha), rows: m, n: step.outputWidth, out: &buffers[output], outView: step.output,
                                a: a, aView: step.input, b: b, bView: step.other)
        case let .layerNorm(output, input, n):
            let (g, b) = try norm(n, ctx)
            let x = buffers[input]
            try kernels.residualLayerNorm(x: x, alpha: 1, y: nil, gamma: g, beta: b, rows: m, eps: c.layerNormEps, into: &buffers[output])
        case let .residualLayerNorm(output, x, y, n):
            let (g, b) = try norm(n, ctx)
            let (xs, ys) = (buffers[x], buffers[y])
            try kernels.residualLayerNorm(x: xs, alpha: c.alpha, y: ys, gamma: g, beta: b, rows: m, eps: c.layerNormEps, into: &buffers[output])
        case let .geluGate(output, input):
            let u = buffers[input]
            try kernels.eltwise(.gelu(.erf), rows: m, n: c.ffnInner, out: &buffers[output], outView: step.output, a: u,
                                aView: RowsView(offset: c.ffnInner, stride: step.input.stride), b: nil, bView: RowsView(stride: 0))
        case let .mulGate(output, input):
            let u = buffers[input]
            try kernels.eltwise(.mul, rows: m, n: c.ffnInner, out: &buffers[output], outView: step.output, a: nil, aView: step.output,
                                b: u, bView: step.input)
        case let .biasGeGLU(output, input, b):
            let u = buffers[input]
            try kernels.biasGeGLU(u, bias: try bias(b, l), rows: m, inner: c.ffnInner, into: &buffers[output])
        case let .gelu(output, input):
            let u = buffers[input]
            try kernels.eltwise(.gelu(.tanh), rows: m, n: step.outputWidth, out: &buffers[output], outView: step.output,
                                a: u, aView: step.input, b: nil, bView: RowsView(stride: 0))
        case let .biasGeLU(output, input, b):
            let u = buffers[input]
            try kernels.biasGeLU(u, bias: try bias(b, l), rows: m, form: .tanh, into: &buffers[output])
        case let .rmsNorm(output, input, n):
            let gamma = try norm(n, ctx).weight
            try withTaken(output) { out in
                try kernels.residualRMSNorm(residual: &buffers[input], adding: nil, gamma: gamma, rows: m, eps: c.layerNormEps, into: &out)
            }
        case let .residualAdd(x, y):
            let b = buffers[y]
            try kernels.eltwise(.scaleAdd(1), rows: m, n: step.outputWidth, out: &buffers[x], outView: step.output, a: nil,
                                aView: step.output, b: b, bView: step.other)
        case let .residualRMSNorm(output, residual, y, n):
            let (gamma, branch) = (try norm(n, ctx).weight, buffers[y])
            try withTaken(output) { out in
                try kernels.residualRMSNorm(residual: &buffers[residual], adding: branch, gamma: gamma, rows: m, eps: c.layerNormEps, into: &out)
            }
        case let .siluGate(output, input):
            let u = buffers[input]
            try kernels.eltwise(.silu, rows: m, n: c.ffnInner, out: &buffers[output], outView: step.output, a: u,
                                aView: RowsView(offset: 0, stride: step.input.stride), b: nil, bView: RowsView(stride: 0))
        case let .mulUp(output, input):
            let u = buffers[input]
            try kernels.eltwise(.mul, rows: m, n: c.ffnInner, out: &buffers[output], outView: step.output, a: nil, aView: step.output,
                                b: u, bView: RowsView(offset: c.ffnInner, stride: step.input.stride))
        case let .swiGLU(output, input):
            let u = buffers[input]
            try kernels.eltwise(.siluMul, rows: m, n: c.ffnInner, out: &buffers[output], outView: step.output, a: u,
                                aView: RowsView(offset: 0, stride: step.input.stride), b: u,
                                bView: RowsView(offset: c.ffnInner, stride: step.input.stride))
        }
    }
}
