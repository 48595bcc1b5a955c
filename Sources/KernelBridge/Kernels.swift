// Kernels.swift — the one Swift file that calls the C kernel table. Every entry
// checks array sizes against the shapes it is given and throws KernelError
// before C sees a pointer, so nothing above this module handles raw memory.

internal import CKernels

/// The precision activations enter the weight products with.
/// Decode mat-vecs of quantized weights take q16 or q8; prefill mat-mats take q8
/// (INT4, AVX-512 VNNI) or FP32; f32/f16 weights always take FP32 activations.
public enum ActivationPrecision: String, Sendable, CaseIterable {
    /// FP32 activations everywhere (GLM-130B's own choice: its activations carry outliers).
    case f32
    /// The default: INT4 and Q8_0 mat-vecs take activations rounded to 16 bits per
    /// 32-block (relative step 1/65534 of the block's absmax, ~30x finer than fp16)
    /// and use integer dot products that are exact in int32. On the golden models
    /// the greedy tokens stay unchanged and the logits move a tenth as much as
    /// the model authors' own fp16 run moves them (RuntimeTests).
    case q16
    /// INT4 mat-vecs and mat-mats take activations quantized to 8 bits per 32-block:
    /// the fastest path (the mat-mat where the CPU has AVX-512 VNNI), but it changes
    /// some greedy tokens of the golden models (opt-in).
    case q8

    /// What the runtime uses unless told otherwise.
    public static let `default`: ActivationPrecision = .q16

    /// Whether mat-vecs of `w` take this precision (else they run with FP32 activations).
    func applies(to w: WeightMatrix) -> Bool {
        let int4 = [.q4_0, .q4Row].contains(w.type) || (w.type == .q4Group && w.group % 32 == 0)
        switch self {
        case .f32: return false
        case .q16: return int4 || w.type == .q8_0
        case .q8: return int4
        }
    }
}

public struct Kernels: Sendable {
    public let isa: InstructionSet
    public let activations: ActivationPrecision

    /// The kernels of `isa` (default: the best this CPU runs).
    public init(isa: InstructionSet = .best, activations: ActivationPrecision = .default) throws {
        guard isa.isSupported else { throw KernelError.instructionSetUnavailable(isa) }
        self.isa = isa
        self.activations = activations
    }

    private var table: glmk_kernels { glmk_kernels_for(isa.cValue)!.pointee }

    /// Whether q8 prefill mat-mats have their fast kernel on this CPU (AVX-512 VNNI).
    public static var hasFastInt8MatMul: Bool { glmk_matmul_q8_fast_available() != 0 }

    // MARK: - Products

    /// y (n) = W (n, k) @ x (k) + bias (n).
    public func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        let op = "matvec.\(w.type.rawValue)"
        try KernelError.require(x.count, exactly: w.cols, op, "x")
        try KernelError.require(y.count, exactly: w.rows, op, "y")
        if let bias { try KernelError.require(bias.count, exactly: w.rows, op, "bias") }
        if activations.applies(to: w) {
            return activations == .q8 ? try matvecQ8(w, x, bias: bias, into: &y) : try matvecQ16(w, x, bias: bias, into: &y)
        }
        let fn = table.matvec!
        let status = w.withDescriptor { desc in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    withOptionalPointer(bias) { fn(yp.baseAddress, desc, xp.baseAddress, $0) }
                }
            }
        }
        try KernelError.check(status, op, "\(w.rows)x\(w.cols)")
    }

    /// y = W x + b for an INT4 W with x quantized to 8 bits per 32-block (integer dot products).
    public func matvecQ8(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        try quantizedMatvec(w, x, bias: bias, into: &y, as: Int8.self, op: "matvec_q8",
                            unsupported: "q8 activations need an INT4 matrix (q4_group with groups of 32·j)",
                            quantize: { glmk_quantize_activations($0, $1, $2, $3, Int64(w.cols)) }, kernel: table.matvec_q8!)
    }

    /// y = W x + b for an INT4 or Q8_0 W with x rounded to 16 bits per 32-block (integer dot products).
    public func matvecQ16(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        try quantizedMatvec(w, x, bias: bias, into: &y, as: Int16.self, op: "matvec_q16",
                            unsupported: "q16 activations need a q4_0, q4_row, q4_group (groups of 32·j) or q8_0 matrix",
                            quantize: { glmk_quantize_activations_q16($0, $1, $2, $3, Int64(w.cols), w.type.cValue) },
                            kernel: table.matvec_q16!)
    }

    /// The shared path of the integer-activation mat-vecs: x quantized per 32-block into
    /// Q values, block scales and block sums, then the kernel on them.
    private func quantizedMatvec<Q: FixedWidthInteger>(
        _ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float], as _: Q.Type, op name: String, unsupported: String,
        quantize: (UnsafeMutablePointer<Q>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int32>?, UnsafePointer<Float>?) -> glmk_status,
        kernel: (UnsafeMutablePointer<Float>?, UnsafePointer<glmk_matrix>?, UnsafePointer<Q>?, UnsafePointer<Float>?,
                 UnsafePointer<Int32>?, UnsafePointer<Float>?) -> glmk_status
    ) throws {
        let op = "\(name).\(w.type.rawValue)"
        try KernelError.require(x.count, exactly: w.cols, op, "x")
        try KernelError.require(y.count, exactly: w.rows, op, "y")
        if let bias { try KernelError.require(bias.count, exactly: w.rows, op, "bias") }
        let xq = try QuantizedActivations<Q>(x, rows: 1, cols: w.cols, op: op, quantize: quantize)
        let status = w.withDescriptor { desc in
            xq.withPointers { q, s, u in
                y.withUnsafeMutableBufferPointer { yp in
                    withOptionalPointer(bias) { kernel(yp.baseAddress, desc, q, s, u, $0) }
                }
            }
        }
        try KernelError.check(status, op, unsupported)
    }

    /// Y (m, n) = X (m, k) @ W (n, k)^T + bias (n). One token goes to the mat-vec kernel.
    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        let op = "matmul.\(w.type.rawValue)"
        guard m > 0 else { throw KernelError.invalidArgument(operation: op, detail: "tokens must be positive") }
        try KernelError.require(x.count, exactly: m * w.cols, op, "x")
        try KernelError.require(y.count, exactly: m * w.rows, op, "y")
        if let bias { try KernelError.require(bias.count, exactly: w.rows, op, "bias") }
        if m == 1 { return try matvec(w, x, bias: bias, into: &y) }
        if activations == .q8, activations.applies(to: w), try matmulQ8(w, x, tokens: m, bias: bias, into: &y) { return }
        let fn = table.matmul!
        let status = w.withDescriptor { desc in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    withOptionalPointer(bias) {
                        fn(yp.baseAddress, Int64(w.rows), desc, xp.baseAddress, Int64(w.cols), Int64(m), $0)
                    }
                }
            }
        }
        try KernelError.check(status, op, "\(m) tokens, \(w.rows)x\(w.cols)")
    }

    /// Y = X W^T + b for an INT4 W with each token's x quantized to 8 bits per 32-block
    /// (integer dot products). Returns false, computing nothing, where this CPU has no
    /// fast int8 mat-mat (it needs AVX-512 VNNI): the caller then runs the FP32 one.
    public func matmulQ8(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws -> Bool {
        let op = "matmul_q8.\(w.type.rawValue)"
        try KernelError.require(x.count, exactly: m * w.cols, op, "x")
        try KernelError.require(y.count, exactly: m * w.rows, op, "y")
        if let bias { try KernelError.require(bias.count, exactly: w.rows, op, "bias") }
        if isa != .scalar, !Kernels.hasFastInt8MatMul { return false } // nothing to quantize for
        let xq = try QuantizedActivations<Int8>(x, rows: m, cols: w.cols, op: op) {
            glmk_quantize_activation_rows($0, $1, $2, $3, Int64(m), Int64(w.cols))
        }
        let fn = table.matmul_q8!
        let status = w.withDescriptor { desc in
            xq.withPointers { q, s, u in
                y.withUnsafeMutableBufferPointer { yp in
                    withOptionalPointer(bias) { fn(yp.baseAddress, Int64(w.rows), desc, q, s, u, Int64(m), $0) }
                }
            }
        }
        try KernelError.check(status, op, "q8 activations need an INT4 matrix (q4_group with groups of 32·j)")
        return true
    }

    /// All of W as FP32 (rows, cols).
    public func dequantize(_ w: WeightMatrix) throws -> [Float] {
        var out = [Float](repeating: 0, count: w.rows * w.cols)
        let fn = table.dequantize_row!
        for row in 0..<w.rows {
            let status = w.withDescriptor { desc in
                out.withUnsafeMutableBufferPointer { fn($0.baseAddress! + row * w.cols, desc, Int64(row), 0, Int64(w.cols)) }
            }
            try KernelError.check(status, "dequantize.\(w.type.rawValue)", "row \(row)")
        }
        return out
    }

    /// out (ids, cols) = the table's rows `ids`.
    public func embedding(_ table: WeightMatrix, ids: [Int32], into out: inout [Float]) throws {
        let op = "embedding.\(table.type.rawValue)"
        try KernelError.require(out.count, exactly: ids.count * table.cols, op, "out")
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= table.rows }) {
            throw KernelError.outOfRange(operation: op, detail: "token id \(bad) outside [0, \(table.rows))")
        }
        guard !ids.isEmpty else { return }
        let fn = self.table.embedding!
        let status = table.withDescriptor { desc in
            ids.withUnsafeBufferPointer { idp in
                out.withUnsafeMutableBufferPointer { fn($0.baseAddress, desc, idp.baseAddress, Int64(ids.count)) }
            }
        }
        try KernelError.check(status, op, "\(ids.count) ids")
    }

    // MARK: - Attention

    /// FP32-softmax attention with GLM's mask; see AttentionShape.
    public func attention(q: [Float], k: [Float], v: [Float], shape s: AttentionShape, into out: inout [Float]) throws {
        let op = "attention"
        guard s.queries > 0, s.keys > 0, s.heads > 0, s.headDim > 0 else {
            throw KernelError.invalidArgument(operation: op, detail: "queries, keys, heads and headDim must be positive")
        }
        try KernelError.require(q.count, atLeast: AttentionShape.extent(count: s.queries, heads: s.heads, headDim: s.headDim,
                                                                         tokenStride: s.qTokenStride, headStride: s.qHeadStride), op, "q")
        let kvExtent = AttentionShape.extent(count: s.keys, heads: s.heads, headDim: s.headDim,
                                             tokenStride: s.kvTokenStride, headStride: s.kvHeadStride)
        try KernelError.require(k.count, atLeast: kvExtent, op, "k")
        try KernelError.require(v.count, atLeast: kvExtent, op, "v")
        try KernelError.require(out.count, atLeast: AttentionShape.extent(count: s.queries, heads: s.heads, headDim: s.headDim,
                                                                           tokenStride: s.outTokenStride, headStride: s.outHeadStride), op, "out")
        var shape = glmk_attention_shape(
            queries: Int64(s.queries), keys: Int64(s.keys), heads: Int64(s.heads), head_dim: Int64(s.headDim),
            q_token_stride: Int64(s.qTokenStride), q_head_stride: Int64(s.qHeadStride),
            kv_token_stride: Int64(s.kvTokenStride), kv_head_stride: Int64(s.kvHeadStride),
            out_token_stride: Int64(s.outTokenStride), out_head_stride: Int64(s.outHeadStride),
            first_query_pos: Int64(s.firstQueryPosition), bidirectional_len: Int64(s.bidirectionalLength), scale: s.scale)
        let fn = table.attention!
        let status = q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { fn($0.baseAddress, qp.baseAddress, kp.baseAddress, vp.baseAddress, &shape) }
                }
            }
        }
        try KernelError.check(status, op, "\(s)")
    }

    // MARK: - Element-wise

    /// out (rows, n) = LN(x * alpha + y) * gamma + beta; y nil means plain LN of x * alpha.
    public func residualLayerNorm(x: [Float], alpha: Float, y: [Float]?, gamma: [Float], beta: [Float],
                                  rows: Int, eps: Float, into out: inout [Float]) throws {
        let op = "residual_layernorm"
        let n = gamma.count
        guard rows > 0, n > 0 else { throw KernelError.invalidArgument(operation: op, detail: "rows and width must be positive") }
        try KernelError.require(beta.count, exactly: n, op, "beta")
        try KernelError.require(x.count, exactly: rows * n, op, "x")
        if let y { try KernelError.require(y.count, exactly: rows * n, op, "y") }
        try KernelError.require(out.count, exactly: rows * n, op, "out")
        let fn = table.residual_layernorm!
        let status = x.withUnsafeBufferPointer { xp in
            gamma.withUnsafeBufferPointer { gp in
                beta.withUnsafeBufferPointer { bp in
                    withOptionalPointer(y) { yp in
                        out.withUnsafeMutableBufferPointer {
                            fn($0.baseAddress, xp.baseAddress, alpha, yp, gp.baseAddress, bp.baseAddress, Int64(rows), Int64(n), eps)
                        }
                    }
                }
            }
        }
        try KernelError.check(status, op, "\(rows)x\(n)")
    }

    /// out (rows, inner) = (u1 + b1) * gelu_erf(u2 + b2) with u (rows, 2 * inner) = [u1 | u2].
    public func biasGeGLU(_ u: [Float], bias: [Float]?, rows: Int, inner: Int, into out: inout [Float]) throws {
        let op = "bias_geglu"
        guard rows > 0, inner > 0 else { throw KernelError.invalidArgument(operation: op, detail: "rows and inner must be positive") }
        try KernelError.require(u.count, exactly: rows * 2 * inner, op, "u")
        if let bias { try KernelError.require(bias.count, exactly: 2 * inner, op, "bias") }
        try KernelError.require(out.count, exactly: rows * inner, op, "out")
        let fn = table.bias_geglu!
        let status = u.withUnsafeBufferPointer { up in
            withOptionalPointer(bias) { bp in
                out.withUnsafeMutableBufferPointer { fn($0.baseAddress, up.baseAddress, bp, Int64(rows), Int64(inner)) }
            }
        }
        try KernelError.check(status, op, "\(rows)x\(inner)")
    }

    /// out (rows, n) = gelu(x + bias).
    public func biasGeLU(_ x: [Float], bias: [Float]?, rows: Int, form: GeLUForm, into out: inout [Float]) throws {
        let op = "bias_gelu"
        guard rows > 0, x.count % rows == 0, x.count > 0 else {
            throw KernelError.invalidArgument(operation: op, detail: "x must hold rows (\(rows)) equal rows")
        }
        let n = x.count / rows
        if let bias { try KernelError.require(bias.count, exactly: n, op, "bias") }
        try KernelError.require(out.count, exactly: x.count, op, "out")
        let fn = table.bias_gelu!
        let cForm = form == .erf ? GLMK_GELU_ERF : GLMK_GELU_TANH
        let status = x.withUnsafeBufferPointer { xp in
            withOptionalPointer(bias) { bp in
                out.withUnsafeMutableBufferPointer { fn($0.baseAddress, xp.baseAddress, bp, Int64(rows), Int64(n), cForm) }
            }
        }
        try KernelError.check(status, op, "\(rows)x\(n)")
    }

    /// Rotary embedding in place (rotate-half form) on the view of `x` that starts
    /// at `offset` (e.g. the k part of a fused QKV row); see RoPEShape.
    public func rope(_ x: inout [Float], offset: Int, shape s: RoPEShape, positions: [Int32], blockPositions: [Int32]?,
                     inverseFrequencies: [Float]) throws {
        let op = "rope"
        guard s.tokens > 0, s.heads > 0, s.headDim > 0 else {
            throw KernelError.invalidArgument(operation: op, detail: "tokens, heads and headDim must be positive")
        }
        guard offset >= 0 else { throw KernelError.invalidArgument(operation: op, detail: "negative offset \(offset)") }
        guard s.pairOffset == 0 || s.pairOffset >= s.headDim else {
            throw KernelError.invalidArgument(operation: op, detail: "pair offset \(s.pairOffset) overlaps the \(s.headDim)-float head")
        }
        try KernelError.require(x.count, atLeast: offset + s.pairOffset + AttentionShape.extent(count: s.tokens, heads: s.heads, headDim: s.headDim,
                                                                                                 tokenStride: s.tokenStride, headStride: s.headStride), op, "x")
        try KernelError.require(positions.count, exactly: s.tokens, op, "positions")
        try KernelError.require(inverseFrequencies.count, exactly: s.rotaryDim / 2, op, "inverse frequencies")
        if s.form == .twoD {
            guard let blockPositions else {
                throw KernelError.invalidArgument(operation: op, detail: "2D RoPE needs block positions")
            }
            try KernelError.require(blockPositions.count, exactly: s.tokens, op, "block positions")
        }
        var shape = glmk_rope_shape(tokens: Int64(s.tokens), heads: Int64(s.heads), head_dim: Int64(s.headDim),
                                    token_stride: Int64(s.tokenStride), head_stride: Int64(s.headStride),
                                    two_d: s.form == .twoD ? 1 : 0, pair_offset: Int64(s.pairOffset))
        let fn = table.rope!
        let status = positions.withUnsafeBufferPointer { pp in
            inverseFrequencies.withUnsafeBufferPointer { fp in
                withOptionalPointer(s.form == .twoD ? blockPositions : nil) { bp in
                    x.withUnsafeMutableBufferPointer { fn($0.baseAddress! + offset, &shape, pp.baseAddress, bp, fp.baseAddress) }
                }
            }
        }
        try KernelError.check(status, op, "head_dim \(s.headDim) must be even (a multiple of 4 for 2D)")
    }

    /// One element-wise step over strided rows. `a` nil means in place (a is `out`);
    /// `b` is one row for .addRow, rows for .scaleAdd and .mul, unused by .gelu.
    public func eltwise(_ step: ElementwiseStep, rows: Int, n: Int, out: inout [Float], outView: RowsView,
                        a: [Float]?, aView: RowsView, b: [Float]?, bView: RowsView) throws {
        let op = "eltwise"
        guard rows > 0, n > 0 else { throw KernelError.invalidArgument(operation: op, detail: "rows and n must be positive") }
        func extent(_ v: RowsView) -> Int { v.offset + (rows - 1) * v.stride + n }
        guard outView.offset >= 0, aView.offset >= 0, bView.offset >= 0, outView.stride >= n, aView.stride >= n else {
            throw KernelError.invalidArgument(operation: op, detail: "offsets must be >= 0 and strides >= n")
        }
        try KernelError.require(out.count, atLeast: extent(outView), op, "out")
        try KernelError.require(a?.count ?? out.count, atLeast: extent(aView), op, "a")
        let (cOp, scalar): (glmk_eltwise_op, Float) = {
            switch step {
            case .addRow: return (GLMK_ELT_ADD_ROW, 0)
            case let .scaleAdd(s): return (GLMK_ELT_SCALE_ADD, s)
            case .mul: return (GLMK_ELT_MUL, 0)
            case let .gelu(form): return (form == .erf ? GLMK_ELT_GELU_ERF : GLMK_ELT_GELU_TANH, 0)
            }
        }()
        var bStride = bView.stride
        switch step {
        case .addRow:
            guard let b else { throw KernelError.invalidArgument(operation: op, detail: "addRow needs b") }
            try KernelError.require(b.count, atLeast: bView.offset + n, op, "b")
            bStride = 0
        case .scaleAdd, .mul:
            guard let b else { throw KernelError.invalidArgument(operation: op, detail: "\(step) needs b") }
            guard bView.stride >= n else { throw KernelError.invalidArgument(operation: op, detail: "b stride must be >= n") }
            try KernelError.require(b.count, atLeast: extent(bView), op, "b")
        case .gelu: break
        }
        var shape = glmk_eltwise_shape(rows: Int64(rows), n: Int64(n), out_stride: Int64(outView.stride),
                                       a_stride: Int64(aView.stride), b_stride: Int64(bStride))
        let fn = table.eltwise!
        let status = out.withUnsafeMutableBufferPointer { op in
            withOptionalPointer(b) { bp in
                if let a {
                    return a.withUnsafeBufferPointer { ap in
                        fn(op.baseAddress! + outView.offset, ap.baseAddress! + aView.offset, bp.map { $0 + bView.offset }, scalar, cOp, &shape)
                    }
                }
                return fn(op.baseAddress! + outView.offset, UnsafePointer(op.baseAddress! + aView.offset), bp.map { $0 + bView.offset }, scalar, cOp, &shape)
            }
        }
        try KernelError.check(status, op, "\(step) over \(rows)x\(n)")
    }

    /// fp16-rounded RoPE inverse frequencies, as the reference computes them.
    public static func ropeInverseFrequencies(rotaryDim: Int, base: Float = 10000) throws -> [Float] {
        guard rotaryDim > 0, rotaryDim % 2 == 0 else {
            throw KernelError.invalidArgument(operation: "rope_inv_freq", detail: "rotary dim \(rotaryDim) must be positive and even")
        }
        var out = [Float](repeating: 0, count: rotaryDim / 2)
        let status = out.withUnsafeMutableBufferPointer { glmk_rope_inv_freq($0.baseAddress, Int64(rotaryDim), base) }
        try KernelError.check(status, "rope_inv_freq", "rotary dim \(rotaryDim), base \(base)")
        return out
    }
}

/// Calls `body` with the array's base address, or NULL for nil.
private func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

private func withOptionalPointer<R>(_ array: [Int32]?, _ body: (UnsafePointer<Int32>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Activations (rows x cols) quantized per 32-block for the integer-dot kernels:
/// values, each block's scale and each block's sum of values.
private struct QuantizedActivations<Q: FixedWidthInteger> {
    var values: [Q]
    var scales: [Float], sums: [Int32]

    /// `quantize` fills (values, scales, sums) from x's pointer.
    init(_ x: [Float], rows: Int, cols: Int, op: String,
         quantize: (UnsafeMutablePointer<Q>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int32>?, UnsafePointer<Float>?) -> glmk_status) throws {
        let blocks = rows * ((cols + 31) / 32)
        values = [Q](repeating: 0, count: rows * cols)
        scales = [Float](repeating: 0, count: blocks)
        sums = [Int32](repeating: 0, count: blocks)
        let status = values.withUnsafeMutableBufferPointer { q in
            scales.withUnsafeMutableBufferPointer { s in
                sums.withUnsafeMutableBufferPointer { u in
                    x.withUnsafeBufferPointer { quantize(q.baseAddress, s.baseAddress, u.baseAddress, $0.baseAddress) }
                }
            }
        }
        try KernelError.check(status, op, "quantizing \(rows) x \(cols) activations")
    }

    func withPointers<R>(_ body: (UnsafePointer<Q>?, UnsafePointer<Float>?, UnsafePointer<Int32>?) -> R) -> R {
        values.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { s in
                sums.withUnsafeBufferPointer { u in body(q.baseAddress, s.baseAddress, u.baseAddress) }
            }
        }
    }
}
