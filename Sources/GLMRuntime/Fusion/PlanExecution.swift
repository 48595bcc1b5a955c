// PlanExecution.swift — a layer plan compiled once into steps over the named
// buffers (ActivationBuffers), and how ForwardPass runs one step.

import KernelBridge

/// What a step needs beyond the plan: the layer, its weights, the rows.
struct LayerContext {
    let index: Int
    let weights: LayerWeights
    let nextNorm: (weight: [Float], bias: [Float])
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
            case let .scaleAdd(o, x, y), let .residualLayerNorm(o, x, y, _): return (o, x, y)
            case let .layerNorm(o, i, _), let .geluGate(o, i), let .mulGate(o, i), let .biasGeGLU(o, i, _),
                 let .gelu(o, i), let .biasGeLU(o, i, _): return (o, i, nil)
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

    func bias(_ b: PlanBias, _ l: LayerWeights) -> [Float] {
        switch b {
        case .qkv: return l.qkvBias
        case .attentionOutput: return l.attentionOutputBias
        case .ffnUp: return l.ffnUpBias
        case .ffnDown: return l.ffnDownBias
        }
    }

    func norm(_ n: PlanNorm, _ c: LayerContext) -> (weight: [Float], bias: [Float]) {
        n == .ffn ? (c.weights.ffnNormWeight, c.weights.ffnNormBias) : c.nextNorm
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
                try kernels.matvecs(weight(w, l), x, tokens: m, bias: b.map { bias($0, l) }, into: &buffers[output])
            } else {
                try kernels.matmul(weight(w, l), x, tokens: m, bias: b.map { bias($0, l) }, into: &buffers[output])
            }
        case let .addBias(buffer, b):
            try kernels.eltwise(.addRow, rows: m, n: step.outputWidth, out: &buffers[buffer], outView: step.output, a: nil,
                                aView: step.output, b: bias(b, l), bView: RowsView(stride: 0))
        case .rope:
            // each head's [q | k | v]: q and k rotate together in one pass over the row
            let shape = RoPEShape(tokens: m, heads: c.heads, headDim: c.headDim, form: c.rope, tokenStride: 3 * c.hidden,
                                  headStride: 3 * c.headDim, pairOffset: c.headDim)
            let (positions, blocks) = (buffers.positions, buffers.blocks)
            try kernels.rope(&buffers.qkv, offset: 0, shape: shape, positions: positions, blockPositions: blocks,
                             inverseFrequencies: inverseFrequencies)
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
            let (g, b) = norm(n, ctx)
            let x = buffers[input]
            try kernels.residualLayerNorm(x: x, alpha: 1, y: nil, gamma: g, beta: b, rows: m, eps: c.layerNormEps, into: &buffers[output])
        case let .residualLayerNorm(output, x, y, n):
            let (g, b) = norm(n, ctx)
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
            try kernels.biasGeGLU(u, bias: bias(b, l), rows: m, inner: c.ffnInner, into: &buffers[output])
        case let .gelu(output, input):
            let u = buffers[input]
            try kernels.eltwise(.gelu(.tanh), rows: m, n: step.outputWidth, out: &buffers[output], outView: step.output,
                                a: u, aView: step.input, b: nil, bView: RowsView(stride: 0))
        case let .biasGeLU(output, input, b):
            let u = buffers[input]
            try kernels.biasGeLU(u, bias: bias(b, l), rows: m, form: .tanh, into: &buffers[output])
        }
    }
}
