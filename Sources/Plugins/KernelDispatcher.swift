// KernelDispatcher.swift — the runtime's view of the registry: a KernelSet
// that sends each call to the provider chosen for its operation. The choice
// is resolved once, when the dispatcher is made: a call looks its provider up
// by weight type (or takes the one stored for its operation), and builds no
// operation-name string unless no provider serves it.

import KernelBridge

public struct KernelDispatcher: KernelSet {
    let table: [String: any KernelProvider]
    private let matvecs: [WeightType: any KernelProvider], matmuls: [WeightType: any KernelProvider]
    private let embeddings: [WeightType: any KernelProvider]
    private let attentionProvider, residualLayerNormProvider, residualRMSNormProvider, biasGeGLUProvider, eltwiseProvider: (any KernelProvider)?
    private let biasGeLUProviders: [GeLUForm: any KernelProvider]
    private let ropeProviders: [RoPEShape.Form: any KernelProvider]

    init(table: [String: any KernelProvider]) {
        self.table = table
        func byType(_ name: (WeightType) -> String) -> [WeightType: any KernelProvider] {
            Dictionary(uniqueKeysWithValues: WeightType.allCases.compactMap { t in table[name(t)].map { (t, $0) } })
        }
        matvecs = byType(OperationName.matvec)
        matmuls = byType(OperationName.matmul)
        embeddings = byType(OperationName.embedding)
        attentionProvider = table[OperationName.attention]
        residualLayerNormProvider = table[OperationName.residualLayerNorm]
        residualRMSNormProvider = table[OperationName.residualRMSNorm]
        biasGeGLUProvider = table[OperationName.biasGeGLU]
        eltwiseProvider = table[OperationName.eltwise]
        biasGeLUProviders = Dictionary(uniqueKeysWithValues: [GeLUForm.erf, .tanh].compactMap { f in table[OperationName.biasGeLU(f)].map { (f, $0) } })
        ropeProviders = Dictionary(uniqueKeysWithValues: RoPEShape.Form.allCases.compactMap { f in table[OperationName.rope(f)].map { (f, $0) } })
    }

    /// The provider serving `operation`.
    public func provider(for operation: String) -> (any KernelProvider)? { table[operation] }

    private func route(_ p: (any KernelProvider)?, _ operation: @autoclosure () -> String) throws -> any KernelProvider {
        guard let p else { throw KernelError.unsupported(operation: operation(), detail: "no provider") }
        return p
    }

    public func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        try route(matvecs[w.type], OperationName.matvec(w.type)).matvec(w, x, bias: bias, into: &y)
    }
    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        // one token is a mat-vec: route it there, as the built-in kernels do
        if m == 1 { return try matvec(w, x, bias: bias, into: &y) }
        try route(matmuls[w.type], OperationName.matmul(w.type)).matmul(w, x, tokens: m, bias: bias, into: &y)
    }
    public func matvecs(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        try route(matvecs[w.type], OperationName.matvec(w.type)).matvecs(w, x, tokens: m, bias: bias, into: &y)
    }
    public func embedding(_ table: WeightMatrix, ids: [Int32], into out: inout [Float]) throws {
        try route(embeddings[table.type], OperationName.embedding(table.type)).embedding(table, ids: ids, into: &out)
    }
    public func attention(q: [Float], k: [Float], v: [Float], shape: AttentionShape, into out: inout [Float]) throws {
        try route(attentionProvider, OperationName.attention).attention(q: q, k: k, v: v, shape: shape, into: &out)
    }
    public func attention(q: [Float], halfK: [UInt16], halfV: [UInt16], shape: AttentionShape, into out: inout [Float]) throws {
        try route(attentionProvider, OperationName.attention).attention(q: q, halfK: halfK, halfV: halfV, shape: shape, into: &out)
    }
    public func residualLayerNorm(x: [Float], alpha: Float, y: [Float]?, gamma: [Float], beta: [Float], rows: Int, eps: Float, into out: inout [Float]) throws {
        try route(residualLayerNormProvider, OperationName.residualLayerNorm)
            .residualLayerNorm(x: x, alpha: alpha, y: y, gamma: gamma, beta: beta, rows: rows, eps: eps, into: &out)
    }
    public func residualRMSNorm(residual: inout [Float], adding y: [Float]?, gamma: [Float], rows: Int, eps: Float, into out: inout [Float]) throws {
        try route(residualRMSNormProvider, OperationName.residualRMSNorm)
            .residualRMSNorm(residual: &residual, adding: y, gamma: gamma, rows: rows, eps: eps, into: &out)
    }
    public func biasGeGLU(_ u: [Float], bias: [Float]?, rows: Int, inner: Int, into out: inout [Float]) throws {
        try route(biasGeGLUProvider, OperationName.biasGeGLU).biasGeGLU(u, bias: bias, rows: rows, inner: inner, into: &out)
    }
    public func biasGeLU(_ x: [Float], bias: [Float]?, rows: Int, form: GeLUForm, into out: inout [Float]) throws {
        try route(biasGeLUProviders[form], OperationName.biasGeLU(form)).biasGeLU(x, bias: bias, rows: rows, form: form, into: &out)
    }
    public func rope(_ x: inout [Float], offset: Int, shape: RoPEShape, positions: [Int32], blockPositions: [Int32]?, inverseFrequencies: [Float]) throws {
        try route(ropeProviders[shape.form], OperationName.rope(shape.form))
            .rope(&x, offset: offset, shape: shape, positions: positions, blockPositions: blockPositions, inverseFrequencies: inverseFrequencies)
    }
    public func eltwise(_ step: ElementwiseStep, rows: Int, n: Int, out: inout [Float], outView: RowsView,
                        a: [Float]?, aView: RowsView, b: [Float]?, bView: RowsView) throws {
        try route(eltwiseProvider, OperationName.eltwise).eltwise(step, rows: rows, n: n, out: &out, outView: outView, a: a, aView: aView, b: b, bView: bView)
    }
}
