// KernelBench.swift — every kernel at GLM-130B's shapes, each figure set
// against the limit its arithmetic intensity binds it to (bandwidth when its
// flops per byte are below the machine's FMA/bandwidth balance, FMA otherwise).

import GLMRuntime
import KernelBridge

/// GLM-130B's released dimensions (its architecture's preset).
let glm130b = Architectures.preset("glm-130b")!

/// The four products of a GLM-130B layer: (name, n outputs, k inputs).
let glm130bProducts: [(String, Int, Int)] = [
    ("qkv", 3 * glm130b.hidden, glm130b.hidden), ("attn_out", glm130b.hidden, glm130b.hidden),
    ("ffn_up", glm130b.ffnUpRows, glm130b.hidden), ("ffn_down", glm130b.hidden, glm130b.ffnInner),
]

/// Small shapes with the same structure for --quick.
let quickProducts: [(String, Int, Int)] = [("qkv", 768, 256), ("attn_out", 256, 256), ("ffn_up", 1024, 256), ("ffn_down", 256, 512)]

struct KernelBench {
    let kernels: Kernels
    let machine: MachineFigures
    let quick: Bool
    let repetitions: Int
    var prefill = true
    /// The weight types to measure (all when empty).
    var types: Set<String> = []
    let log: (String) -> Void

    /// `int8`: the figure's arithmetic runs on integer dot products, so when it is compute
    /// bound its limit is the int8 dot peak (its flops are then int8 ops).
    func figure(op: String, type: String?, m: Int, n: Int, k: Int, shape: String? = nil, threads: Int,
                timing: Timing, bytes: Double, flops: Double, int8: Bool = false, int16: Bool = false) -> KernelFigure {
        let limits = machine.limit(threads: threads)
        let gbps = bytes / timing.median / 1e9, gflops = flops / timing.median / 1e9
        let peak = int8 ? limits.int8_gops : int16 ? (limits.int16_gops ?? limits.fma_gflops) : limits.fma_gflops
        let balance = peak / limits.read_gbps // flops per byte at which both limits meet
        let computeBound = flops / max(bytes, 1) > balance
        let fraction = computeBound ? gflops / peak : gbps / limits.read_gbps
        let f = KernelFigure(op: op, weight_type: type, m: m, n: n, k: k, shape: shape, threads: threads, median_s: timing.median,
                             spread: timing.spread, bytes: bytes, flops: flops, gbps: gbps, gflops: gflops,
                             limit: computeBound ? (int8 ? "int8" : int16 ? "int16" : "fma") : "bandwidth", fraction_of_limit: fraction)
        log(Table.kernelRow(f))
        return f
    }

    /// Decode (m = 1) and prefill (m = 128, 512) for every weight type and product shape.
    func products(threadCounts: [Int]) throws -> [KernelFigure] {
        var out: [KernelFigure] = []
        let types = [(WeightType.q4Row, 0), (.q4Group, 128), (.q4_0, 0), (.q8_0, 0), (.f16, 0), (.f32, 0)].filter {
            self.types.isEmpty || self.types.contains($0.0 == .q4Group ? "q4_group" : $0.0.rawValue)
        }
        // on AVX-512 the FP32 mat-mat's 24 x 16 zmm tile; the AVX2 table's 6 x 16 ymm tile beside it, same run
        let narrow = kernels.isa == .avx512 ? try Kernels(isa: .avx2) : nil
        let shapes = quick ? quickProducts : glm130bProducts
        let tokens = (quick ? [1, 16] : [1, 128, 512]).filter { prefill || $0 == 1 }
        // the default kernels take 16-bit activations in quantized decode mat-vecs;
        // the other two precisions are measured beside them in the same run
        let q8 = try Kernels(isa: kernels.isa, activations: .q8), f32 = try Kernels(isa: kernels.isa, activations: .f32)
        let q16p = try Kernels(isa: kernels.isa, activations: .q16Prefill)
        for (type, group) in types {
            for (name, n, k) in shapes {
                let w = try WeightMatrix.random(type, rows: n, cols: k, group: group, seed: UInt64(n * 31 + k))
                let label = type == .q4Group ? "q4_group\(group)" : type.rawValue
                for m in tokens {
                    let x = [Float](repeating: 0.01, count: m * k)
                    var y = [Float](repeating: 0, count: m * n)
                    // decode at every thread count; prefill (compute bound, slow at full size) at all threads
                    for threads in (m == 1 ? threadCounts : [threadCounts.last!]) {
                        try Threads.configure(count: threads)
                        let reps = m == 1 ? repetitions : max(2, repetitions / 2)
                        let timing = try measure(warmup: m == 1 ? 2 : 1, repetitions: reps) {
                            try kernels.matmul(w, x, tokens: m, into: &y)
                        }
                        let bytes = Double(w.byteCount + 4 * m * (k + n))
                        out.append(figure(op: "\(m == 1 ? "matvec" : "matmul").\(name)", type: label, m: m, n: n, k: k,
                                          threads: threads, timing: timing, bytes: bytes, flops: 2.0 * Double(m * n * k)))
                        // INT4 prefill again with 16-bit activations (--activations q16-prefill), where the table has it
                        if m > 1, q16p.hasQ16MatMul, [.q4Row, .q4Group, .q4_0].contains(type) {
                            let t16 = try measure(warmup: 1, repetitions: reps) { try q16p.matmul(w, x, tokens: m, into: &y) }
                            out.append(figure(op: "matmul.\(name)", type: label + "+q16act", m: m, n: n, k: k, threads: threads,
                                              timing: t16, bytes: bytes, flops: 2.0 * Double(m * n * k), int16: true))
                        }
                        if m > 1, let narrow {
                            let t2 = try measure(warmup: 1, repetitions: reps) { try narrow.matmul(w, x, tokens: m, into: &y) }
                            out.append(figure(op: "matmul.\(name)", type: label + "+avx2tile", m: m, n: n, k: k, threads: threads,
                                              timing: t2, bytes: bytes, flops: 2.0 * Double(m * n * k)))
                        }
                        // INT4 prefill again with 8-bit activations: the int8 mat-mat, where the CPU has it
                        if m > 1, [.q4Row, .q4Group, .q4_0].contains(type), Kernels.hasFastInt8MatMul {
                            let t8 = try measure(warmup: 1, repetitions: reps) { _ = try q8.matmulQ8(w, x, tokens: m, bias: nil, into: &y) }
                            out.append(figure(op: "matmul.\(name)", type: label + "+q8act", m: m, n: n, k: k, threads: threads,
                                              timing: t8, bytes: bytes, flops: 2.0 * Double(m * n * k), int8: true))
                        }
                        // decode again with FP32 activations (the path before 16-bit activations)
                        if m == 1, [.q4Row, .q4Group, .q4_0, .q8_0].contains(type) {
                            let t32 = try measure(warmup: 2, repetitions: reps) { try f32.matvec(w, x, bias: nil, into: &y) }
                            out.append(figure(op: "matvec.\(name)", type: label + "+f32act", m: m, n: n, k: k,
                                              threads: threads, timing: t32, bytes: bytes, flops: 2.0 * Double(n * k)))
                        }
                        // INT4 decode again with 8-bit activations (integer dot products)
                        if m == 1, [.q4Row, .q4Group, .q4_0].contains(type) {
                            let t8 = try measure(warmup: 2, repetitions: reps) { try q8.matvec(w, x, bias: nil, into: &y) }
                            out.append(figure(op: "matvec.\(name)", type: label + "+q8act", m: m, n: n, k: k,
                                              threads: threads, timing: t8, bytes: bytes, flops: 2.0 * Double(n * k)))
                        }
                    }
                }
            }
        }
        return out
    }

    /// Attention with 96 heads of 128 (GLM-130B): prefill over contexts 128..2048
    /// (context bidirectional, the last token causal) and decode over a cache of 128..2048.
    func attention(threads: Int) throws -> [KernelFigure] {
        try Threads.configure(count: threads)
        var out: [KernelFigure] = []
        let (heads, d) = quick ? (8, 64) : (96, 128)
        let contexts = quick ? [64, 128] : [128, 256, 512, 1024, 2048]
        for n in contexts {
            let width = heads * d
            // three separate buffers: `k = q` would share storage (copy on write), and
            // V's rows would then come from cache right after K's, halving the traffic
            let q = [Float](repeating: 0.01, count: n * width)
            let k = [Float](repeating: 0.01, count: n * width), v = [Float](repeating: 0.01, count: n * width)
            var o = [Float](repeating: 0, count: n * width)
            // prefill: every query over its visible keys
            let prefill = AttentionShape(queries: n, keys: n, heads: heads, headDim: d, firstQueryPosition: 0, bidirectionalLength: n - 1)
            let visible = (0..<n).reduce(0) { $0 + max(n - 1, $1 + 1) }
            let t1 = try measure(repetitions: max(2, repetitions / 2)) { try kernels.attention(q: q, k: k, v: v, shape: prefill, into: &o) }
            out.append(figure(op: "attention.prefill", type: nil, m: n, n: n, k: d, shape: "\(heads)x\(d), \(n) queries over \(n) keys",
                              threads: threads, timing: t1, bytes: Double(4 * 4 * n * width),
                              flops: 4.0 * Double(heads * d) * Double(visible)))
            // decode: one query over the whole cache
            let decode = AttentionShape(queries: 1, keys: n, heads: heads, headDim: d, firstQueryPosition: n - 1, bidirectionalLength: 0)
            var o1 = [Float](repeating: 0, count: width)
            let q1 = Array(q[0..<width])
            let t2 = try measure(warmup: 2, repetitions: repetitions) { try kernels.attention(q: q1, k: k, v: v, shape: decode, into: &o1) }
            out.append(figure(op: "attention.decode", type: nil, m: 1, n: n, k: d, shape: "\(heads)x\(d), 1 query over \(n) keys",
                              threads: threads, timing: t2, bytes: Double(4 * (2 * n * width + 2 * width)), flops: 4.0 * Double(heads * d * n)))
            // the same over an fp16 cache (--kv-type f16): half the bytes per key
            let hk = [UInt16](repeating: 0x211F, count: n * width), hv = [UInt16](repeating: 0x211F, count: n * width)
            let t3 = try measure(warmup: 2, repetitions: repetitions) { try kernels.attention(q: q1, halfK: hk, halfV: hv, shape: decode, into: &o1) }
            out.append(figure(op: "attention.decode", type: "f16kv", m: 1, n: n, k: d, shape: "\(heads)x\(d), 1 query over \(n) fp16 keys",
                              threads: threads, timing: t3, bytes: Double(2 * 2 * n * width + 4 * 2 * width), flops: 4.0 * Double(heads * d * n)))
        }
        return out
    }

    /// The fused element-wise kernels on a 512-token prefill of GLM-130B, against bandwidth
    /// (bytes: what each must read and write once).
    func elementwise(threads: Int) throws -> [KernelFigure] {
        try Threads.configure(count: threads)
        var out: [KernelFigure] = []
        let (rows, h, inner, heads, d) = quick ? (64, 256, 512, 4, 64)
            : (512, glm130b.hidden, glm130b.ffnInner, glm130b.heads, glm130b.headDim)
        // separate buffers (see attention): LayerNorm must read both from memory
        let x = [Float](repeating: 0.5, count: rows * h), y = [Float](repeating: 0.5, count: rows * h)
        let gamma = [Float](repeating: 1, count: h), beta = [Float](repeating: 0, count: h)
        var o = [Float](repeating: 0, count: rows * h)
        let t1 = try measure(repetitions: repetitions) {
            try kernels.residualLayerNorm(x: x, alpha: 11.8, y: y, gamma: gamma, beta: beta, rows: rows, into: &o)
        }
        out.append(figure(op: "residual_layernorm", type: nil, m: rows, n: h, k: 0, threads: threads, timing: t1,
                          bytes: Double(3 * 4 * rows * h), flops: Double(8 * rows * h)))
        let u = [Float](repeating: 0.5, count: rows * 2 * inner), bias = [Float](repeating: 0.1, count: 2 * inner)
        var g = [Float](repeating: 0, count: rows * inner)
        let t2 = try measure(repetitions: repetitions) { try kernels.biasGeGLU(u, bias: bias, rows: rows, inner: inner, into: &g) }
        out.append(figure(op: "bias_geglu", type: nil, m: rows, n: inner, k: 0, threads: threads, timing: t2,
                          bytes: Double(3 * 4 * rows * inner), flops: Double(30 * rows * inner)))
        let z = Array(u[0..<(rows * inner)])
        var zo = z
        let t3 = try measure(repetitions: repetitions) { try kernels.biasGeLU(z, bias: Array(bias[0..<inner]), rows: rows, form: .tanh, into: &zo) }
        out.append(figure(op: "bias_gelu.tanh", type: nil, m: rows, n: inner, k: 0, threads: threads, timing: t3,
                          bytes: Double(2 * 4 * rows * inner), flops: Double(25 * rows * inner)))
        var qkv = [Float](repeating: 0.5, count: rows * 3 * h)
        let shape = RoPEShape(tokens: rows, heads: heads, headDim: d, form: .oneD, tokenStride: 3 * h, headStride: 3 * d, pairOffset: d)
        let positions = (0..<rows).map(Int32.init)
        let inv = try Kernels.ropeInverseFrequencies(rotaryDim: d)
        let t4 = try measure(repetitions: repetitions) {
            try kernels.rope(&qkv, offset: 0, shape: shape, positions: positions, inverseFrequencies: inv) // q and k in one pass
        }
        out.append(figure(op: "rope.qk", type: nil, m: rows, n: 2 * h, k: 0, threads: threads, timing: t4,
                          bytes: Double(2 * 2 * 4 * rows * h), flops: Double(6 * 2 * rows * h)))
        return out
    }
}
