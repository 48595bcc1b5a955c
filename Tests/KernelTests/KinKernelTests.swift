// KinKernelTests.swift — the kernels ChatGLM2/3 and GLM-4 add, each kernel of
// every instruction set against the reference code's formula in Double, on odd
// sizes as well as round ones: RMSNorm with the residual add fused, RoPE on
// adjacent pairs of part of each head, SiLU and the fused SwiGLU, and
// grouped-query attention (causal and GLM-masked, FP32 and fp16 caches).

import Foundation
import KernelBridge
import Testing

private let widths = [1, 7, 8, 37, 100, 128, 257]

@Suite("Kernels of the pre-norm kin")
struct KinKernelTests {
    /// modeling_chatglm.py RMSNorm: h * rsqrt(mean(h^2) + eps) * weight, h = x + residual.
    @Test("residual RMSNorm: x += y exactly, then x / sqrt(mean(x^2) + eps) * gamma", arguments: InstructionSet.supported)
    func residualRMSNorm_matchesFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for n in widths {
            for rows in [1, 3] {
                var rng = SeededGenerator(seed: UInt64(n * 7 + rows))
                let x = rng.normals(rows * n).map { $0 + 3 }, y = rng.normals(rows * n)
                let gamma = rng.normals(n).map { 1 + 0.1 * $0 }
                for adding in [y, nil] as [[Float]?] {
                    var residual = x, out = [Float](repeating: .nan, count: rows * n)
                    try kernels.residualRMSNorm(residual: &residual, adding: adding, gamma: gamma, rows: rows, eps: 1e-5, into: &out)
                    // the sum is the reference's float add, so it must match bit for bit
                    let sum = adding.map { a in zip(x, a).map { $0 + $1 } } ?? x
                    #expect(residual == sum, "\(isa) n \(n): the residual stream must hold x + y")
                    var expected = [Float]()
                    for r in 0..<rows {
                        let h = (0..<n).map { Double(sum[r * n + $0]) }
                        let inv = 1 / (h.map { $0 * $0 }.reduce(0, +) / Double(n) + 1e-5).squareRoot()
                        expected += (0..<n).map { Float(h[$0] * inv * Double(gamma[$0])) }
                    }
                    let error = nmse(out, expected)
                    #expect(error <= Tolerance.formula, "\(isa) rows \(rows) n \(n) add \(adding != nil): nmse \(error); \(firstMismatch(out, expected))")
                }
            }
        }
    }

    /// ChatGLM2's apply_rotary_pos_emb and transformers' Glm: pairs (2i, 2i+1) of the first
    /// rotaryDim values turn by fp32(pos * inv_freq[i]); the rest of the head, and every other
    /// float of the row, stay as they were.
    @Test("interleaved RoPE on part of each head against the formula, strided, grouped q and k",
          arguments: InstructionSet.supported)
    func interleavedRoPE_matchesFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for (headDim, rotary, pair) in [(4, 2, false), (16, 8, true), (32, 16, false), (24, 10, true), (128, 64, true), (64, 64, false)] {
            let (tokens, heads) = (5, 3)
            let shape = RoPEShape(tokens: tokens, heads: heads, headDim: headDim, form: .interleaved, tokenStride: heads * 3 * headDim,
                                  headStride: 3 * headDim, pairOffset: pair ? headDim : 0, rotaryDim: rotary)
            var rng = SeededGenerator(seed: UInt64(headDim * 31 + rotary))
            let original = rng.normals(tokens * heads * 3 * headDim)
            let positions: [Int32] = [0, 1, 2, 9, 8191]
            let inv = try Kernels.ropeInverseFrequencies(rotaryDim: rotary, roundedToHalf: false)
            #expect(inv.enumerated().allSatisfy { i, f in f == 1 / powf(10000, Float(2 * i) / Float(rotary)) }, "FP32 inverse frequencies")
            var x = original
            try kernels.rope(&x, shape: shape, positions: positions, inverseFrequencies: inv)
            var expected = original
            for t in 0..<tokens {
                for h in 0..<heads {
                    for vector in 0..<(pair ? 2 : 1) {
                        let base = t * shape.tokenStride + h * shape.headStride + vector * headDim
                        for i in 0..<rotary / 2 {
                            let angle = Double(Float(positions[t]) * inv[i])
                            let x1 = Double(original[base + 2 * i]), x2 = Double(original[base + 2 * i + 1])
                            expected[base + 2 * i] = Float(x1 * cos(angle) - x2 * sin(angle))
                            expected[base + 2 * i + 1] = Float(x2 * cos(angle) + x1 * sin(angle))
                        }
                    }
                }
            }
            let error = nmse(x, expected)
            #expect(error <= Tolerance.formula, "\(isa) d \(headDim) rot \(rotary) pair \(pair): nmse \(error); \(firstMismatch(x, expected))")
            // outside the rotated part nothing moves, bit for bit
            let untouched = (0..<x.count).filter { index in
                let inHead = index % shape.headStride, vector = inHead / headDim
                return !(vector < (pair ? 2 : 1) && inHead % headDim < rotary)
            }
            #expect(untouched.allSatisfy { x[$0].bitPattern == original[$0].bitPattern }, "\(isa) d \(headDim): values outside the rotary part changed")
        }
        var x = [Float](repeating: 0, count: 16)
        #expect(throws: KernelError.self) { // an odd or over-long rotary part
            try kernels.rope(&x, shape: RoPEShape(tokens: 1, heads: 1, headDim: 8, form: .interleaved, rotaryDim: 5), positions: [0],
                             inverseFrequencies: [1, 0.1])
        }
        #expect(throws: KernelError.self) {
            try kernels.rope(&x, shape: RoPEShape(tokens: 1, heads: 1, headDim: 8, form: .interleaved, rotaryDim: 10), positions: [0],
                             inverseFrequencies: [1, 1, 1, 1, 1])
        }
    }

    /// F.silu(gate) * up over strided halves of the up projection's rows.
    @Test("SiLU and the fused SwiGLU over strided rows against the formula", arguments: InstructionSet.supported)
    func swiGLU_matchesFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for inner in widths {
            let rows = 3
            var rng = SeededGenerator(seed: UInt64(inner + 5))
            // gate values out to +-40 reach both saturated ends of the sigmoid
            let u = rng.normals(rows * 2 * inner, scale: 8)
            func silu(_ v: Float) -> Double { Double(v) / (1 + Foundation.exp(-Double(v))) }
            let gate = RowsView(offset: 0, stride: 2 * inner), up = RowsView(offset: inner, stride: 2 * inner)
            var fused = [Float](repeating: .nan, count: rows * inner), silus = fused
            try kernels.eltwise(.siluMul, rows: rows, n: inner, out: &fused, outView: RowsView(stride: inner), a: u, aView: gate, b: u, bView: up)
            try kernels.eltwise(.silu, rows: rows, n: inner, out: &silus, outView: RowsView(stride: inner), a: u, aView: gate, b: nil, bView: RowsView(stride: 0))
            let expectedSilu = (0..<rows * inner).map { Float(silu(u[($0 / inner) * 2 * inner + $0 % inner])) }
            let expectedSwiGLU = (0..<rows * inner).map { i -> Float in
                let (r, c) = (i / inner, i % inner)
                return Float(silu(u[r * 2 * inner + c]) * Double(u[r * 2 * inner + inner + c]))
            }
            #expect(nmse(silus, expectedSilu) <= Tolerance.transcendental, "\(isa) silu inner \(inner): \(firstMismatch(silus, expectedSilu))")
            #expect(nmse(fused, expectedSwiGLU) <= Tolerance.transcendental, "\(isa) swiglu inner \(inner): \(firstMismatch(fused, expectedSwiGLU))")
            #expect(silus.allSatisfy(\.isFinite) && fused.allSatisfy(\.isFinite))
        }
        var out = [Float](repeating: 0, count: 4)
        #expect(throws: KernelError.self) { // SwiGLU needs its up half
            try kernels.eltwise(.siluMul, rows: 1, n: 4, out: &out, outView: RowsView(stride: 4), a: [1, 2, 3, 4], aView: RowsView(stride: 4),
                                b: nil, bView: RowsView(stride: 4))
        }
    }

    /// Grouped-query attention is multi-head attention over each key/value head repeated
    /// for its group: the same arithmetic in the same order, so bit for bit the MHA result
    /// on the repeated cache, on every kernel walk (decode, key ranges, the blocked
    /// prefill), causal (the kin) and with a bidirectional prefix, FP32 and fp16 caches.
    @Test("grouped-query attention equals attention over repeated key/value heads, bit for bit", arguments: InstructionSet.supported)
    func groupedQueryAttention_isRepeatedHeads(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        let cases: [(queries: Int, keys: Int, heads: Int, group: Int, d: Int, first: Int, bidir: Int)] = [
            (1, 1, 2, 2, 8, 0, 0), (13, 13, 4, 2, 32, 0, 0), (61, 61, 8, 4, 16, 0, 0), (1, 130, 6, 3, 64, 129, 0),
            (9, 140, 4, 4, 20, 131, 0), (150, 150, 4, 2, 48, 0, 70), (3, 300, 32, 16, 128, 297, 0), (1, 70, 2, 1, 32, 69, 0),
        ]
        for (index, c) in cases.enumerated() {
            var rng = SeededGenerator(seed: UInt64(index + 900))
            let kvHeads = c.heads / c.group
            let q = rng.normals(c.queries * c.heads * c.d)
            let k = rng.normals(c.keys * kvHeads * c.d), v = rng.normals(c.keys * kvHeads * c.d)
            // each kv head repeated for its group of query heads: head h reads kv head h / group
            func repeated(_ a: [Float]) -> [Float] {
                var out: [Float] = []
                for j in 0..<c.keys {
                    for h in 0..<c.heads {
                        let start = (j * kvHeads + h / c.group) * c.d
                        out += a[start..<(start + c.d)]
                    }
                }
                return out
            }
            var grouped = AttentionShape(queries: c.queries, keys: c.keys, heads: c.heads, headDim: c.d, firstQueryPosition: c.first,
                                         bidirectionalLength: c.bidir)
            grouped.kvGroup = c.group
            grouped.kvTokenStride = kvHeads * c.d
            let full = AttentionShape(queries: c.queries, keys: c.keys, heads: c.heads, headDim: c.d, firstQueryPosition: c.first,
                                      bidirectionalLength: c.bidir)
            var a = [Float](repeating: .nan, count: c.queries * c.heads * c.d), b = a
            try kernels.attention(q: q, k: k, v: v, shape: grouped, into: &a)
            try kernels.attention(q: q, k: repeated(k), v: repeated(v), shape: full, into: &b)
            #expect(a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }, "\(isa) case \(index): \(firstMismatch(a, b))")
            let (hk, hv) = (k.map { Float16($0).bitPattern }, v.map { Float16($0).bitPattern })
            let (wk, wv) = (hk.map { Float(Float16(bitPattern: $0)) }, hv.map { Float(Float16(bitPattern: $0)) })
            var half = a, widened = a
            try kernels.attention(q: q, halfK: hk, halfV: hv, shape: grouped, into: &half)
            try kernels.attention(q: q, k: repeated(wk), v: repeated(wv), shape: full, into: &widened)
            #expect(half.elementsEqual(widened) { $0.bitPattern == $1.bitPattern }, "\(isa) case \(index) fp16: \(firstMismatch(half, widened))")
        }
        // groups that do not divide the heads, and a cache too short for its kv heads
        var bad = AttentionShape(queries: 1, keys: 2, heads: 3, headDim: 8, firstQueryPosition: 1, bidirectionalLength: 0)
        bad.kvGroup = 2
        var out = [Float](repeating: 0, count: 24)
        #expect(throws: KernelError.self) {
            try kernels.attention(q: [Float](repeating: 1, count: 24), k: [Float](repeating: 0, count: 48), v: [Float](repeating: 0, count: 48),
                                  shape: bad, into: &out)
        }
        bad.heads = 4
        bad.kvGroup = 2
        bad.kvTokenStride = 16
        out = [Float](repeating: 0, count: 32)
        #expect(throws: KernelError.self) {
            try kernels.attention(q: [Float](repeating: 1, count: 32), k: [Float](repeating: 0, count: 20), v: [Float](repeating: 0, count: 32),
                                  shape: bad, into: &out)
        }
    }
}
