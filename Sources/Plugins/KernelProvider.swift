// KernelProvider.swift — what a kernel provider is: a named, versioned set of
// operations with a priority and the instruction sets it needs. Built-in
// providers, Swift types registered in code and C plugins loaded at run time
// all conform, and the registry treats them the same way.

import KernelBridge

public protocol KernelProvider: KernelSet {
    /// Unique name, used by `--kernel op=name` and GLM_KERNEL.
    var name: String { get }
    var version: String { get }
    /// Higher wins among providers that pass verification for an operation.
    var priority: Int { get }
    /// Operations this provider implements (names from OperationName).
    var operations: Set<String> { get }
    /// Whether this CPU can run `operation` with this provider.
    func canRun(_ operation: String) -> Bool
}

extension KernelProvider {
    public func canRun(_ operation: String) -> Bool { operations.contains(operation) }

    // Operations a provider does not list fail loudly if ever routed to it.
    func unsupported(_ operation: String) -> KernelError {
        .unsupported(operation: operation, detail: "provider '\(name)' does not implement it")
    }
    public func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws { throw unsupported(OperationName.matvec(w.type)) }
    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws { throw unsupported(OperationName.matmul(w.type)) }
    public func embedding(_ table: WeightMatrix, ids: [Int32], into out: inout [Float]) throws { throw unsupported(OperationName.embedding(table.type)) }
    public func attention(q: [Float], k: [Float], v: [Float], shape: AttentionShape, into out: inout [Float]) throws { throw unsupported(OperationName.attention) }
    public func residualLayerNorm(x: [Float], alpha: Float, y: [Float]?, gamma: [Float], beta: [Float], rows: Int, eps: Float, into out: inout [Float]) throws {
        throw unsupported(OperationName.residualLayerNorm)
    }
    public func residualRMSNorm(residual: inout [Float], adding y: [Float]?, gamma: [Float], rows: Int, eps: Float, into out: inout [Float]) throws {
        throw unsupported(OperationName.residualRMSNorm)
    }
    public func biasGeGLU(_ u: [Float], bias: [Float]?, rows: Int, inner: Int, into out: inout [Float]) throws { throw unsupported(OperationName.biasGeGLU) }
    public func biasGeLU(_ x: [Float], bias: [Float]?, rows: Int, form: GeLUForm, into out: inout [Float]) throws { throw unsupported(OperationName.biasGeLU(form)) }
    public func rope(_ x: inout [Float], offset: Int, shape: RoPEShape, positions: [Int32], blockPositions: [Int32]?, inverseFrequencies: [Float]) throws {
        throw unsupported(OperationName.rope(shape.form))
    }
    public func eltwise(_ step: ElementwiseStep, rows: Int, n: Int, out: inout [Float], outView: RowsView,
                        a: [Float]?, aView: RowsView, b: [Float]?, bView: RowsView) throws {
        throw unsupported(OperationName.eltwise)
    }
}

/// The kernels of CKernels for one instruction set: "builtin.scalar" (the
/// reference, priority 0), "builtin.avx2" (priority 10) and "builtin.avx512" (20).
public struct BuiltinProvider: KernelProvider {
    public let kernels: Kernels
    public var name: String { "builtin.\(kernels.isa.rawValue)" }
    public var version: String { "1" }
    public var priority: Int {
        switch kernels.isa {
        case .scalar: return 0
        case .avx2: return 10
        case .avx512: return 20
        }
    }
    public var operations: Set<String> { Set(OperationName.all) }

    public init(isa: InstructionSet, activations: ActivationPrecision = .default) throws {
        kernels = try Kernels(isa: isa, activations: activations)
    }

    public func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws { try kernels.matvec(w, x, bias: bias, into: &y) }
    public func matvecs(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        try kernels.matvecs(w, x, tokens: m, bias: bias, into: &y)
    }
    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        try kernels.matmul(w, x, tokens: m, bias: bias, into: &y)
    }
    public func embedding(_ table: WeightMatrix, ids: [Int32], into out: inout [Float]) throws { try kernels.embedding(table, ids: ids, into: &out) }
    public func attention(q: [Float], halfK: [UInt16], halfV: [UInt16], shape: AttentionShape, into out: inout [Float]) throws {
        try kernels.attention(q: q, halfK: halfK, halfV: halfV, shape: shape, into: &out)
    }
    public func attention(q: [Float], k: [Float], v: [Float], shape: AttentionShape, into out: inout [Float]) throws {
        try kernels.attention(q: q, k: k, v: v, shape: shape, into: &out)
    }
    public func residualLayerNorm(x: [Float], alpha: Float, y: [Float]?, gamma: [Float], beta: [Float], rows: Int, eps: Float, into out: inout [Float]) throws {
        try kernels.residualLayerNorm(x: x, alpha: alpha, y: y, gamma: gamma, beta: beta, rows: rows, eps: eps, into: &out)
    }
    public func residualRMSNorm(residual: inout [Float], adding y: [Float]?, gamma: [Float], rows: Int, eps: Float, into out: inout [Float]) throws {
        try kernels.residualRMSNorm(residual: &residual, adding: y, gamma: gamma, rows: rows, eps: eps, into: &out)
    }
    public func biasGeGLU(_ u: [Float], bias: [Float]?, rows: Int, inner: Int, into out: inout [Float]) throws {
        try kernels.biasGeGLU(u, bias: bias, rows: rows, inner: inner, into: &out)
    }
    public func biasGeLU(_ x: [Float], bias: [Float]?, rows: Int, form: GeLUForm, into out: inout [Float]) throws {
        try kernels.biasGeLU(x, bias: bias, rows: rows, form: form, into: &out)
    }
    public func rope(_ x: inout [Float], offset: Int, shape: RoPEShape, positions: [Int32], blockPositions: [Int32]?, inverseFrequencies: [Float]) throws {
        try kernels.rope(&x, offset: offset, shape: shape, positions: positions, blockPositions: blockPositions, inverseFrequencies: inverseFrequencies)
    }
    public func eltwise(_ step: ElementwiseStep, rows: Int, n: Int, out: inout [Float], outView: RowsView,
                        a: [Float]?, aView: RowsView, b: [Float]?, bView: RowsView) throws {
        try kernels.eltwise(step, rows: rows, n: n, out: &out, outView: outView, a: a, aView: aView, b: b, bView: bView)
    }
}
