// Kernels.swift — the one Swift file that calls the C kernel table. Every entry
// checks array sizes against the shapes it is given and throws KernelError
// before C sees a pointer, so nothing above this module handles raw memory.

internal import CKernels

/// The precision activations enter the weight products with.
/// Decode mat-vecs of quantized weights take q16 or q8; prefill mat-mats take q16 or
/// q8 (INT4, AVX-512 VNNI) or FP32; f32/f16 weights always take FP32 activations.
public enum ActivationPrecision: String, Sendable, CaseIterable {
    /// FP32 activations everywhere (GLM-130B's own choice: its activations carry outliers).
    case f32
    /// The default: INT4 and Q8_0 mat-vecs take activations rounded to 16 bits per
    /// 32-block (relative step 1/65534 of the block's absmax, ~30x finer than fp16)
    /// and use integer dot products that are exact in int32. On the golden models
    /// the greedy tokens stay unchanged and the logits move a tenth as much as
    /// the model authors' own fp16 run moves them (RuntimeTests).
    case q16
    /// q16 in decode and in INT4 prefill too (the 16-bit-activation mat-mat, AVX-512 VNNI;
    /// elsewhere prefill stays FP32): 1.2-1.6x the FP32 mat-mat at 512 tokens, but the
    /// prompt's rounded activations move glm-130b-tiny's logits by nmse 8.4e-7, past a
    /// tenth of the authors' fp16 run, and flip one of glm-tiny's greedy tokens on
    /// q4_row (RuntimeTests), so it is opt-in.
    case q16Prefill = "q16-prefill"
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
        case .q16, .q16Prefill: return int4 || w.type == .q8_0
        case .q8: return int4
        }
    }
}

/// The C type of the mat-mat entries that take FP32 activations (matmul, matmul_q16).
private typealias MatmulEntry = @convention(c) (UnsafeMutablePointer<Float>?, Int64, UnsafePointer<glmk_matrix>?, UnsafePointer<Float>?,
                                                Int64, Int64, UnsafePointer<Float>?, glmk_workspace) -> glmk_status

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
    /// Whether this table's prefill runs the 16-bit-activation mat-mat (AVX-512 VNNI) for INT4 weights.
    public var hasQ16MatMul: Bool { table.matmul_q16 != nil }

    // MARK: - Products
    //
    // Arrays may be longer than the shapes need (a session's buffers are sized for
    // its largest chunk): each check is that an array holds what the call reads or
    // writes. Operation names are built only when a call fails.

    /// y (n) = W (n, k) @ x (k) + bias (n).
    public func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        try matvecs(w, x, tokens: 1, bias: bias, into: &y)
    }

    /// Y (m, n) = X (m, k) @ W (n, k)^T + bias, each row exactly what `matvec` gives for
    /// that token alone: the batched decode step, one token of each of m sequences.
    /// With 16-bit activations (the default for quantized weights) one kernel call
    /// streams the weights once for all m tokens.
    public func matvecs(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        try checkProduct("matvec", w, x, tokens: m, bias: bias, y: y)
        if activations.applies(to: w), activations == .q16 || activations == .q16Prefill {
            return try matvecQ16(w, x, tokens: m, bias: bias, into: &y)
        }
        for t in 0..<m { // FP32 or 8-bit activations: one mat-vec per token
            if activations.applies(to: w) {
                try matvecQ8(w, x, token: t, bias: bias, into: &y)
                continue
            }
            let fn = table.matvec!
            let status = w.withDescriptor { desc in
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { yp in
                        withOptionalPointer(bias) { fn(yp.baseAddress! + t * w.rows, desc, xp.baseAddress! + t * w.cols, $0) }
                    }
                }
            }
            try KernelError.check(status, "matvec.\(w.type.rawValue)", "\(w.rows)x\(w.cols)")
        }
    }

    /// y = W x + b for an INT4 W with x quantized to 8 bits per 32-block (integer dot products).
    public func matvecQ8(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        try checkProduct("matvec_q8", w, x, tokens: 1, bias: bias, y: y)
        try matvecQ8(w, x, token: 0, bias: bias, into: &y)
    }

    /// Row `token` of X through the 8-bit mat-vec (shapes already checked).
    private func matvecQ8(_ w: WeightMatrix, _ x: [Float], token t: Int, bias: [Float]?, into y: inout [Float]) throws {
        let (xq, xs, xu, _) = QuantizedScratch.take(Int8.self, rows: 1, cols: w.cols, workspace: 0)
        let quantized = x.withUnsafeBufferPointer { glmk_quantize_activations(xq, xs, xu, $0.baseAddress! + t * w.cols, Int64(w.cols)) }
        try KernelError.check(quantized, "matvec_q8.\(w.type.rawValue)", "quantizing \(w.cols) activations")
        let fn = table.matvec_q8!
        let status = w.withDescriptor { desc in
            y.withUnsafeMutableBufferPointer { yp in withOptionalPointer(bias) { fn(yp.baseAddress! + t * w.rows, desc, xq, xs, xu, $0) } }
        }
        try KernelError.check(status, "matvec_q8.\(w.type.rawValue)", "q8 activations need an INT4 matrix (q4_group with groups of 32·j)")
    }

    /// y = W x + b for an INT4 or Q8_0 W with x rounded to 16 bits per 32-block (integer dot products).
    public func matvecQ16(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        try matvecQ16(w, x, tokens: 1, bias: bias, into: &y)
    }

    /// Y = X W^T + b with each of m tokens rounded to 16 bits per 32-block: one call, the weights read once.
    public func matvecQ16(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        try checkProduct("matvec_q16", w, x, tokens: m, bias: bias, y: y)
        let blocks = (w.cols + 31) / 32
        let workspace = w.withDescriptor { glmk_workspace_bytes(isa.cValue, GLMK_WS_MATVEC_Q16, $0, Int64(m), nil) }
        let (xq, xs, xu, wsData) = QuantizedScratch.take(Int16.self, rows: m, cols: w.cols, workspace: workspace)
        let quantized = x.withUnsafeBufferPointer { xp -> glmk_status in
            for t in 0..<m {
                let status = glmk_quantize_activations_q16(xq + t * w.cols, xs + t * blocks, xu + t * blocks, xp.baseAddress! + t * w.cols,
                                                           Int64(w.cols), w.type.cValue)
                if status != GLMK_OK { return status }
            }
            return GLMK_OK
        }
        try KernelError.check(quantized, "matvec_q16.\(w.type.rawValue)", "quantizing \(m) x \(w.cols) activations")
        let fn = table.matvec_q16!
        let status = w.withDescriptor { desc in
            y.withUnsafeMutableBufferPointer { yp in
                withOptionalPointer(bias) {
                    fn(yp.baseAddress, Int64(w.rows), desc, xq, xs, xu, Int64(m), $0, glmk_workspace(data: wsData, bytes: workspace))
                }
            }
        }
        try KernelError.check(status, "matvec_q16.\(w.type.rawValue)", "q16 activations need a q4_0, q4_row, q4_group (groups of 32·j) or q8_0 matrix")
    }

    /// Y (m, n) = X (m, k) @ W (n, k)^T + bias (n). One token goes to the mat-vec kernel.
    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        try checkProduct("matmul", w, x, tokens: m, bias: bias, y: y)
        if m == 1 { return try matvec(w, x, bias: bias, into: &y) }
        if activations == .q8, activations.applies(to: w), try matmulQ8(w, x, tokens: m, bias: bias, into: &y) { return }
        if activations == .q16Prefill, activations.applies(to: w), try matmulQ16(w, x, tokens: m, bias: bias, into: &y) { return }
        let workspace = w.withDescriptor { glmk_workspace_bytes(isa.cValue, GLMK_WS_MATMUL, $0, Int64(m), nil) }
        let status = callMatmul(table.matmul!, w, x, tokens: m, bias: bias, workspace: workspace, into: &y)
        try KernelError.check(status, "matmul.\(w.type.rawValue)", "\(m) tokens, \(w.rows)x\(w.cols)")
    }

    /// Calls a table mat-mat of the FP32-input form (matmul, matmul_q16) with `workspace` bytes of scratch.
    private func callMatmul(_ fn: MatmulEntry, _ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, workspace: Int,
                            into y: inout [Float]) -> glmk_status {
        let base = KernelScratch.current.reserve(workspace)
        return w.withDescriptor { desc in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    withOptionalPointer(bias) {
                        fn(yp.baseAddress, Int64(w.rows), desc, xp.baseAddress, Int64(w.cols), Int64(m), $0,
                           glmk_workspace(data: base, bytes: workspace))
                    }
                }
            }
        }
    }

    /// Y = X W^T + b with each token's x rounded to 16 bits per 32-block and integer dot
    /// products (the kernel quantizes): for each token matvec_q16's arithmetic. Returns
    /// false, computing nothing, where the table has no such mat-mat (it needs AVX-512
    /// VNNI) or W is not an INT4 type it takes: the caller then runs the FP32 one.
    public func matmulQ16(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws -> Bool {
        try checkProduct("matmul_q16", w, x, tokens: m, bias: bias, y: y)
        guard let fn = table.matmul_q16 else { return false }
        let workspace = w.withDescriptor { glmk_workspace_bytes(isa.cValue, GLMK_WS_MATMUL_Q16, $0, Int64(m), nil) }
        guard workspace > 0 else { return false } // a type or shape the kernel does not take
        let status = callMatmul(fn, w, x, tokens: m, bias: bias, workspace: workspace, into: &y)
        if status == GLMK_ERR_UNSUPPORTED { return false }
        try KernelError.check(status, "matmul_q16.\(w.type.rawValue)", "\(m) tokens, \(w.rows)x\(w.cols)")
        return true
    }

    /// Y = X W^T + b for an INT4 W with each token's x quantized to 8 bits per 32-block
    /// (integer dot products). Returns false, computing nothing, where this CPU has no
    /// fast int8 mat-mat (it needs AVX-512 VNNI): the caller then runs the FP32 one.
    public func matmulQ8(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws -> Bool {
        try checkProduct("matmul_q8", w, x, tokens: m, bias: bias, y: y)
        if isa != .scalar, !Kernels.hasFastInt8MatMul { return false } // nothing to quantize for
        let workspace = w.withDescriptor { glmk_workspace_bytes(isa.cValue, GLMK_WS_MATMUL_Q8, $0, Int64(m), nil) }
        let (xq, xs, xu, wsData) = QuantizedScratch.take(Int8.self, rows: m, cols: w.cols, workspace: workspace)
        let quantized = x.withUnsafeBufferPointer { glmk_quantize_activation_rows(xq, xs, xu, $0.baseAddress, Int64(m), Int64(w.cols)) }
        try KernelError.check(quantized, "matmul_q8.\(w.type.rawValue)", "quantizing \(m) x \(w.cols) activations")
        let fn = table.matmul_q8!
        let status = w.withDescriptor { desc in
            y.withUnsafeMutableBufferPointer { yp in
                withOptionalPointer(bias) {
                    fn(yp.baseAddress, Int64(w.rows), desc, xq, xs, xu, Int64(m), $0, glmk_workspace(data: wsData, bytes: workspace))
                }
            }
        }
        try KernelError.check(status, "matmul_q8.\(w.type.rawValue)", "q8 activations need an INT4 matrix (q4_group with groups of 32·j)")
        return true
    }

    /// The size checks every product makes: m tokens of x in, m rows of y out, bias (n).
    private func checkProduct(_ name: @autoclosure () -> String, _ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?,
                              y: [Float]) throws {
        guard m > 0 else { throw KernelError.invalidArgument(operation: "\(name()).\(w.type.rawValue)", detail: "tokens must be positive") }
        try KernelError.require(x.count, atLeast: m * w.cols, "\(name()).\(w.type.rawValue)", "x")
        try KernelError.require(y.count, atLeast: m * w.rows, "\(name()).\(w.type.rawValue)", "y")
        if let bias { try KernelError.require(bias.count, exactly: w.rows, "\(name()).\(w.type.rawValue)", "bias") }
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
        func op() -> String { "embedding.\(table.type.rawValue)" }
        try KernelError.require(out.count, atLeast: ids.count * table.cols, op(), "out")
        for id in ids where id < 0 || Int(id) >= table.rows {
            throw KernelError.outOfRange(operation: op(), detail: "token id \(id) outside [0, \(table.rows))")
        }
        guard !ids.isEmpty else { return }
        let fn = self.table.embedding!
        let status = table.withDescriptor { desc in
            ids.withUnsafeBufferPointer { idp in
                out.withUnsafeMutableBufferPointer { fn($0.baseAddress, desc, idp.baseAddress, Int64(ids.count)) }
            }
        }
        try KernelError.check(status, op(), "\(ids.count) ids")
    }

    // MARK: - Attention

    /// FP32-softmax attention with GLM's mask; see AttentionShape.
    public func attention(q: [Float], k: [Float], v: [Float], shape s: AttentionShape, into out: inout [Float]) throws {
        try k.withUnsafeBufferPointer { kp in
            try v.withUnsafeBufferPointer { vp in
                try attention(q: q, k: UnsafeRawBufferPointer(kp), v: UnsafeRawBufferPointer(vp), f16: false, shape: s, into: &out)
            }
        }
    }

    /// The same over fp16 keys and values (the half-size KV cache), widened to FP32 as they are read.
    public func attention(q: [Float], halfK k: [UInt16], halfV v: [UInt16], shape s: AttentionShape, into out: inout [Float]) throws {
        try k.withUnsafeBufferPointer { kp in
            try v.withUnsafeBufferPointer { vp in
                try attention(q: q, k: UnsafeRawBufferPointer(kp), v: UnsafeRawBufferPointer(vp), f16: true, shape: s, into: &out)
            }
        }
    }

    private func attention(q: [Float], k: UnsafeRawBufferPointer, v: UnsafeRawBufferPointer, f16: Bool, shape s: AttentionShape,
                           into out: inout [Float]) throws {
        func op() -> String { f16 ? "attention.f16kv" : "attention" }
        guard s.queries > 0, s.keys > 0, s.heads > 0, s.headDim > 0 else {
            throw KernelError.invalidArgument(operation: op(), detail: "queries, keys, heads and headDim must be positive")
        }
        guard s.qOffset >= 0, s.outOffset >= 0 else { throw KernelError.invalidArgument(operation: op(), detail: "negative offset") }
        try KernelError.require(q.count, atLeast: s.qOffset + AttentionShape.extent(count: s.queries, heads: s.heads, headDim: s.headDim,
                                                                                    tokenStride: s.qTokenStride, headStride: s.qHeadStride), op(), "q")
        guard s.kvGroup >= 1, s.heads % s.kvGroup == 0 else {
            throw KernelError.invalidArgument(operation: op(), detail: "\(s.heads) heads do not split into groups of \(s.kvGroup)")
        }
        let kvExtent = AttentionShape.extent(count: s.keys, heads: s.kvHeads, headDim: s.headDim,
                                             tokenStride: s.kvTokenStride, headStride: s.kvHeadStride)
        let element = f16 ? 2 : 4
        try KernelError.require(k.count / element, atLeast: kvExtent, op(), "k")
        try KernelError.require(v.count / element, atLeast: kvExtent, op(), "v")
        try KernelError.require(out.count, atLeast: s.outOffset + AttentionShape.extent(count: s.queries, heads: s.heads, headDim: s.headDim,
                                                                                        tokenStride: s.outTokenStride, headStride: s.outHeadStride), op(), "out")
        var shape = glmk_attention_shape(
            queries: Int64(s.queries), keys: Int64(s.keys), heads: Int64(s.heads), head_dim: Int64(s.headDim),
            q_token_stride: Int64(s.qTokenStride), q_head_stride: Int64(s.qHeadStride),
            kv_token_stride: Int64(s.kvTokenStride), kv_head_stride: Int64(s.kvHeadStride),
            out_token_stride: Int64(s.outTokenStride), out_head_stride: Int64(s.outHeadStride),
            first_query_pos: Int64(s.firstQueryPosition), bidirectional_len: Int64(s.bidirectionalLength), scale: s.scale,
            kv_f16: f16 ? 1 : 0, kv_group: Int64(s.kvGroup))
        let fn = table.attention!
        let bytes = glmk_workspace_bytes(isa.cValue, GLMK_WS_ATTENTION, nil, 0, &shape)
        let workspace = glmk_workspace(data: KernelScratch.current.reserve(bytes), bytes: bytes)
        let status = q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer {
                fn($0.baseAddress! + s.outOffset, qp.baseAddress! + s.qOffset, k.baseAddress, v.baseAddress, &shape, workspace)
            }
        }
        try KernelError.check(status, op(), "\(s)")
    }

    /// dst = src rounded to fp16 (nearest even): what the half-size KV cache stores.
    public static func roundToHalf(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<UInt16>, count: Int) {
        glmk_fp32_to_fp16_array(dst, src, Int64(count))
    }

    // MARK: - Element-wise

    /// out (rows, n) = LN(x * alpha + y) * gamma + beta; y nil means plain LN of x * alpha.
    public func residualLayerNorm(x: [Float], alpha: Float, y: [Float]?, gamma: [Float], beta: [Float],
                                  rows: Int, eps: Float, into out: inout [Float]) throws {
        func op() -> String { "residual_layernorm" }
        let n = gamma.count
        guard rows > 0, n > 0 else { throw KernelError.invalidArgument(operation: op(), detail: "rows and width must be positive") }
        try KernelError.require(beta.count, exactly: n, op(), "beta")
        try KernelError.require(x.count, atLeast: rows * n, op(), "x")
        if let y { try KernelError.require(y.count, atLeast: rows * n, op(), "y") }
        try KernelError.require(out.count, atLeast: rows * n, op(), "out")
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
        try KernelError.check(status, op(), "\(rows)x\(n)")
    }

    /// Pre-norm residual + RMSNorm: with y, residual += y (in place); then out (rows, n) =
    /// residual / sqrt(mean(residual^2) + eps) * gamma. n is gamma's length.
    public func residualRMSNorm(residual x: inout [Float], adding y: [Float]?, gamma: [Float], rows: Int, eps: Float,
                                into out: inout [Float]) throws {
        func op() -> String { "residual_rmsnorm" }
        let n = gamma.count
        guard rows > 0, n > 0 else { throw KernelError.invalidArgument(operation: op(), detail: "rows and width must be positive") }
        try KernelError.require(x.count, atLeast: rows * n, op(), "residual")
        if let y { try KernelError.require(y.count, atLeast: rows * n, op(), "y") }
        try KernelError.require(out.count, atLeast: rows * n, op(), "out")
        let fn = table.residual_rmsnorm!
        let status = gamma.withUnsafeBufferPointer { gp in
            withOptionalPointer(y) { yp in
                x.withUnsafeMutableBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { fn($0.baseAddress, xp.baseAddress, yp, gp.baseAddress, Int64(rows), Int64(n), eps) }
                }
            }
        }
        try KernelError.check(status, op(), "\(rows)x\(n)")
    }

    /// out (rows, inner) = (u1 + b1) * gelu_erf(u2 + b2) with u (rows, 2 * inner) = [u1 | u2].
    public func biasGeGLU(_ u: [Float], bias: [Float]?, rows: Int, inner: Int, into out: inout [Float]) throws {
        func op() -> String { "bias_geglu" }
        guard rows > 0, inner > 0 else { throw KernelError.invalidArgument(operation: op(), detail: "rows and inner must be positive") }
        try KernelError.require(u.count, atLeast: rows * 2 * inner, op(), "u")
        if let bias { try KernelError.require(bias.count, exactly: 2 * inner, op(), "bias") }
        try KernelError.require(out.count, atLeast: rows * inner, op(), "out")
        let fn = table.bias_geglu!
        let status = u.withUnsafeBufferPointer { up in
            withOptionalPointer(bias) { bp in
                out.withUnsafeMutableBufferPointer { fn($0.baseAddress, up.baseAddress, bp, Int64(rows), Int64(inner)) }
            }
        }
        try KernelError.check(status, op(), "\(rows)x\(inner)")
    }

    /// out (rows, n) = gelu(x + bias), n the bias's length (without a bias, x holds exactly rows rows).
    public func biasGeLU(_ x: [Float], bias: [Float]?, rows: Int, form: GeLUForm, into out: inout [Float]) throws {
        func op() -> String { "bias_gelu" }
        guard rows > 0, !x.isEmpty, bias != nil || x.count % rows == 0 else {
            throw KernelError.invalidArgument(operation: op(), detail: "x must hold rows (\(rows)) equal rows")
        }
        let n = bias?.count ?? x.count / rows
        guard n > 0 else { throw KernelError.invalidArgument(operation: op(), detail: "the bias is empty") }
        try KernelError.require(x.count, atLeast: rows * n, op(), "x")
        try KernelError.require(out.count, atLeast: rows * n, op(), "out")
        let fn = table.bias_gelu!
        let cForm = form == .erf ? GLMK_GELU_ERF : GLMK_GELU_TANH
        let status = x.withUnsafeBufferPointer { xp in
            withOptionalPointer(bias) { bp in
                out.withUnsafeMutableBufferPointer { fn($0.baseAddress, xp.baseAddress, bp, Int64(rows), Int64(n), cForm) }
            }
        }
        try KernelError.check(status, op(), "\(rows)x\(n)")
    }

    /// Rotary embedding in place (rotate-half form) on the view of `x` that starts
    /// at `offset` (e.g. the k part of a fused QKV row); see RoPEShape.
    public func rope(_ x: inout [Float], offset: Int, shape s: RoPEShape, positions: [Int32], blockPositions: [Int32]?,
                     inverseFrequencies: [Float]) throws {
        func op() -> String { "rope" }
        guard s.tokens > 0, s.heads > 0, s.headDim > 0 else {
            throw KernelError.invalidArgument(operation: op(), detail: "tokens, heads and headDim must be positive")
        }
        guard offset >= 0 else { throw KernelError.invalidArgument(operation: op(), detail: "negative offset \(offset)") }
        guard s.pairOffset == 0 || s.pairOffset >= s.headDim else {
            throw KernelError.invalidArgument(operation: op(), detail: "pair offset \(s.pairOffset) overlaps the \(s.headDim)-float head")
        }
        try KernelError.require(x.count, atLeast: offset + s.pairOffset + AttentionShape.extent(count: s.tokens, heads: s.heads, headDim: s.headDim,
                                                                                                 tokenStride: s.tokenStride, headStride: s.headStride), op(), "x")
        try KernelError.require(positions.count, atLeast: s.tokens, op(), "positions")
        if s.form == .interleaved {
            guard s.rotaryDim > 0, s.rotaryDim % 2 == 0, s.rotaryDim <= s.headDim else {
                throw KernelError.invalidArgument(operation: op(), detail: "rotary dim \(s.rotaryDim) must be even and within the \(s.headDim)-float head")
            }
        }
        try KernelError.require(inverseFrequencies.count, exactly: s.rotaryDim / 2, op(), "inverse frequencies")
        if s.form == .twoD {
            guard let blockPositions else {
                throw KernelError.invalidArgument(operation: op(), detail: "2D RoPE needs block positions")
            }
            try KernelError.require(blockPositions.count, atLeast: s.tokens, op(), "block positions")
        }
        var shape = glmk_rope_shape(tokens: Int64(s.tokens), heads: Int64(s.heads), head_dim: Int64(s.headDim),
                                    token_stride: Int64(s.tokenStride), head_stride: Int64(s.headStride),
                                    two_d: s.form == .twoD ? 1 : 0, pair_offset: Int64(s.pairOffset),
                                    interleaved_dim: s.form == .interleaved ? Int64(s.rotaryDim) : 0)
        let fn = table.rope!
        let status = positions.withUnsafeBufferPointer { pp in
            inverseFrequencies.withUnsafeBufferPointer { fp in
                withOptionalPointer(s.form == .twoD ? blockPositions : nil) { bp in
                    x.withUnsafeMutableBufferPointer { fn($0.baseAddress! + offset, &shape, pp.baseAddress, bp, fp.baseAddress) }
                }
            }
        }
        try KernelError.check(status, op(), "head_dim \(s.headDim) must be even (a multiple of 4 for 2D)")
    }

    /// One element-wise step over strided rows. `a` nil means in place (a is `out`);
    /// `b` is one row for .addRow, rows for .scaleAdd and .mul, unused by .gelu.
    public func eltwise(_ step: ElementwiseStep, rows: Int, n: Int, out: inout [Float], outView: RowsView,
                        a: [Float]?, aView: RowsView, b: [Float]?, bView: RowsView) throws {
        func op() -> String { "eltwise" }
        guard rows > 0, n > 0 else { throw KernelError.invalidArgument(operation: op(), detail: "rows and n must be positive") }
        func extent(_ v: RowsView) -> Int { v.offset + (rows - 1) * v.stride + n }
        guard outView.offset >= 0, aView.offset >= 0, bView.offset >= 0, outView.stride >= n, aView.stride >= n else {
            throw KernelError.invalidArgument(operation: op(), detail: "offsets must be >= 0 and strides >= n")
        }
        try KernelError.require(out.count, atLeast: extent(outView), op(), "out")
        try KernelError.require(a?.count ?? out.count, atLeast: extent(aView), op(), "a")
        let (cOp, scalar): (glmk_eltwise_op, Float) = {
            switch step {
            case .addRow: return (GLMK_ELT_ADD_ROW, 0)
            case let .scaleAdd(s): return (GLMK_ELT_SCALE_ADD, s)
            case .mul: return (GLMK_ELT_MUL, 0)
            case let .gelu(form): return (form == .erf ? GLMK_ELT_GELU_ERF : GLMK_ELT_GELU_TANH, 0)
            case .silu: return (GLMK_ELT_SILU, 0)
            case .siluMul: return (GLMK_ELT_SILU_MUL, 0)
            }
        }()
        var bStride = bView.stride
        switch step {
        case .addRow:
            guard let b else { throw KernelError.invalidArgument(operation: op(), detail: "addRow needs b") }
            try KernelError.require(b.count, atLeast: bView.offset + n, op(), "b")
            bStride = 0
        case .scaleAdd, .mul, .siluMul:
            guard let b else { throw KernelError.invalidArgument(operation: op(), detail: "\(step) needs b") }
            guard bView.stride >= n else { throw KernelError.invalidArgument(operation: op(), detail: "b stride must be >= n") }
            try KernelError.require(b.count, atLeast: extent(bView), op(), "b")
        case .gelu, .silu: break
        }
        var shape = glmk_eltwise_shape(rows: Int64(rows), n: Int64(n), out_stride: Int64(outView.stride),
                                       a_stride: Int64(aView.stride), b_stride: Int64(bStride))
        let fn = table.eltwise!
        let status = out.withUnsafeMutableBufferPointer { outp in
            withOptionalPointer(b) { bp in
                if let a {
                    return a.withUnsafeBufferPointer { ap in
                        fn(outp.baseAddress! + outView.offset, ap.baseAddress! + aView.offset, bp.map { $0 + bView.offset }, scalar, cOp, &shape)
                    }
                }
                return fn(outp.baseAddress! + outView.offset, UnsafePointer(outp.baseAddress! + aView.offset), bp.map { $0 + bView.offset }, scalar, cOp, &shape)
            }
        }
        try KernelError.check(status, op(), "\(step) over \(rows)x\(n)")
    }

    /// RoPE inverse frequencies 1 / base^(2i / rotaryDim): rounded to fp16 as ChatGLM-6B's and
    /// GLM-130B's reference code does, or in FP32 (ChatGLM2/3, GLM-4) with `roundedToHalf: false`.
    public static func ropeInverseFrequencies(rotaryDim: Int, base: Float = 10000, roundedToHalf: Bool = true) throws -> [Float] {
        guard rotaryDim > 0, rotaryDim % 2 == 0 else {
            throw KernelError.invalidArgument(operation: "rope_inv_freq", detail: "rotary dim \(rotaryDim) must be positive and even")
        }
        var out = [Float](repeating: 0, count: rotaryDim / 2)
        let status = out.withUnsafeMutableBufferPointer {
            roundedToHalf ? glmk_rope_inv_freq($0.baseAddress, Int64(rotaryDim), base) : glmk_rope_inv_freq_f32($0.baseAddress, Int64(rotaryDim), base)
        }
        try KernelError.check(status, "rope_inv_freq", "rotary dim \(rotaryDim), base \(base)")
        return out
    }
}

/// Quantized activations for the integer-dot kernels, carved from the calling thread's
/// scratch: values (rows, cols), each 32-block's scale and sum (rows, ceil(cols / 32)),
/// then the C kernel's workspace.
private enum QuantizedScratch {
    static func take<Q>(_: Q.Type, rows: Int, cols: Int, workspace: Int)
        -> (UnsafeMutablePointer<Q>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer) {
        let blocks = (cols + 31) / 32
        var layout = ScratchLayout()
        let (q, s, u) = (layout.add(Q.self, rows * cols), layout.add(Float.self, rows * blocks), layout.add(Int32.self, rows * blocks))
        let ws = layout.add(UInt8.self, workspace)
        let base = KernelScratch.current.reserve(layout.bytes)
        return (base.advanced(by: q).assumingMemoryBound(to: Q.self), base.advanced(by: s).assumingMemoryBound(to: Float.self),
                base.advanced(by: u).assumingMemoryBound(to: Int32.self), base.advanced(by: ws))
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
