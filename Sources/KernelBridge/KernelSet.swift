// KernelSet.swift — the operations the runtime calls, as a protocol: the
// built-in kernels (Kernels) implement it, and so does the plugin registry's
// dispatcher, which routes each call to the provider chosen for it.

public protocol KernelSet: Sendable {
    func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws
    func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws
    /// One token of each of m sequences: each row of y exactly what matvec gives for that row alone.
    func matvecs(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws
    func embedding(_ table: WeightMatrix, ids: [Int32], into out: inout [Float]) throws
    func attention(q: [Float], k: [Float], v: [Float], shape: AttentionShape, into out: inout [Float]) throws
    /// Attention over fp16 keys and values (the half-size KV cache).
    func attention(q: [Float], halfK: [UInt16], halfV: [UInt16], shape: AttentionShape, into out: inout [Float]) throws
    func residualLayerNorm(x: [Float], alpha: Float, y: [Float]?, gamma: [Float], beta: [Float], rows: Int, eps: Float, into out: inout [Float]) throws
    /// Pre-norm: residual += y (when given), then out = RMSNorm(residual) * gamma.
    func residualRMSNorm(residual: inout [Float], adding y: [Float]?, gamma: [Float], rows: Int, eps: Float, into out: inout [Float]) throws
    func biasGeGLU(_ u: [Float], bias: [Float]?, rows: Int, inner: Int, into out: inout [Float]) throws
    func biasGeLU(_ x: [Float], bias: [Float]?, rows: Int, form: GeLUForm, into out: inout [Float]) throws
    func rope(_ x: inout [Float], offset: Int, shape: RoPEShape, positions: [Int32], blockPositions: [Int32]?, inverseFrequencies: [Float]) throws
    func eltwise(_ step: ElementwiseStep, rows: Int, n: Int, out: inout [Float], outView: RowsView,
                 a: [Float]?, aView: RowsView, b: [Float]?, bView: RowsView) throws
}

/// Operation names: how the registry, `--kernel` and `glm-run plugins` refer to each call.
public enum OperationName {
    public static func matvec(_ type: WeightType) -> String { "matvec.\(type.rawValue)" }
    public static func matmul(_ type: WeightType) -> String { "matmul.\(type.rawValue)" }
    public static func embedding(_ type: WeightType) -> String { "embedding.\(type.rawValue)" }
    public static let attention = "attention"
    public static let residualLayerNorm = "residual_layernorm"
    public static let residualRMSNorm = "residual_rmsnorm"
    public static let biasGeGLU = "bias_geglu"
    public static func biasGeLU(_ form: GeLUForm) -> String { form == .erf ? "bias_gelu.erf" : "bias_gelu.tanh" }
    public static func rope(_ form: RoPEShape.Form) -> String {
        switch form {
        case .oneD: return "rope.1d"
        case .twoD: return "rope.2d"
        case .interleaved: return "rope.interleaved"
        }
    }
    /// The single element-wise steps of the unfused plan.
    public static let eltwise = "eltwise"

    /// Every operation, products per weight type.
    public static var all: [String] {
        WeightType.allCases.flatMap { [matvec($0), matmul($0)] } + WeightType.allCases.map(embedding)
            + [attention, residualLayerNorm, residualRMSNorm, biasGeGLU, biasGeLU(.erf), biasGeLU(.tanh)]
            + RoPEShape.Form.allCases.map(rope) + [eltwise]
    }
}

extension Kernels: KernelSet {}

extension KernelSet {
    /// fp16 keys and values widened to FP32 arrays, then the FP32 attention: for a kernel set without the fp16 form.
    public func attention(q: [Float], halfK: [UInt16], halfV: [UInt16], shape: AttentionShape, into out: inout [Float]) throws {
        try attention(q: q, k: halfK.map { Float(Float16(bitPattern: $0)) }, v: halfV.map { Float(Float16(bitPattern: $0)) },
                      shape: shape, into: &out)
    }

    /// Batched mat-vecs as one matvec per row: what a kernel set without a batched kernel does.
    public func matvecs(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        let (k, n) = (w.cols, w.rows)
        guard m > 0, x.count >= m * k, y.count >= m * n else {
            throw KernelError.shapeMismatch(operation: "matvecs.\(w.type.rawValue)", argument: "x/y", expected: m * k, actual: x.count)
        }
        var row = [Float](repeating: 0, count: n)
        for t in 0..<m {
            try matvec(w, Array(x[(t * k)..<((t + 1) * k)]), bias: bias, into: &row)
            y.withUnsafeMutableBufferPointer { yp in row.withUnsafeBufferPointer { (yp.baseAddress! + t * n).update(from: $0.baseAddress!, count: n) } }
        }
    }

    // Convenience forms with the defaults most callers use.
    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, into y: inout [Float]) throws {
        try matmul(w, x, tokens: m, bias: nil, into: &y)
    }

    public func matvec(_ w: WeightMatrix, _ x: [Float], into y: inout [Float]) throws {
        try matvec(w, x, bias: nil, into: &y)
    }

    public func residualLayerNorm(x: [Float], alpha: Float, y: [Float]?, gamma: [Float], beta: [Float], rows: Int,
                                  into out: inout [Float]) throws {
        try residualLayerNorm(x: x, alpha: alpha, y: y, gamma: gamma, beta: beta, rows: rows, eps: 1e-5, into: &out)
    }

    public func rope(_ x: inout [Float], shape: RoPEShape, positions: [Int32], blockPositions: [Int32]? = nil,
                     inverseFrequencies: [Float]) throws {
        try rope(&x, offset: 0, shape: shape, positions: positions, blockPositions: blockPositions, inverseFrequencies: inverseFrequencies)
    }

    public func rope(_ x: inout [Float], offset: Int, shape: RoPEShape, positions: [Int32], inverseFrequencies: [Float]) throws {
        try rope(&x, offset: offset, shape: shape, positions: positions, blockPositions: nil, inverseFrequencies: inverseFrequencies)
    }
}
