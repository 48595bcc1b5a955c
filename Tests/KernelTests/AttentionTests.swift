// AttentionTests.swift — GLM's attention mask, the tiled online softmax against
// the reference code's direct formula (masked_fill(-10000), softmax in FP32),
// and the SIMD kernel against the scalar one.

import KernelBridge
import Testing

/// The reference code's computation in Double: scores q.k * scale, masked
/// entries set to -10000, a full softmax, the weighted sum of V.
private func referenceAttention(q: [Float], k: [Float], v: [Float], shape s: AttentionShape) -> [Float] {
    var out = [Float](repeating: 0, count: s.queries * s.heads * s.headDim)
    for i in 0..<s.queries {
        let pos = s.firstQueryPosition + i
        for h in 0..<s.heads {
            var scores = [Double](repeating: 0, count: s.keys)
            for j in 0..<s.keys {
                let visible = j < s.bidirectionalLength || j <= pos
                var dot = 0.0
                for c in 0..<s.headDim {
                    dot += Double(q[i * s.qTokenStride + h * s.qHeadStride + c]) * Double(k[j * s.kvTokenStride + h * s.kvHeadStride + c])
                }
                scores[j] = visible ? dot * Double(s.scale) : -10000
            }
            let maxScore = scores.max()!
            let weights = scores.map { Foundation.exp($0 - maxScore) }
            let total = weights.reduce(0, +)
            for c in 0..<s.headDim {
                var acc = 0.0
                for j in 0..<s.keys { acc += weights[j] * Double(v[j * s.kvTokenStride + h * s.kvHeadStride + c]) }
                out[i * s.outTokenStride + h * s.outHeadStride + c] = Float(acc / total)
            }
        }
    }
    return out
}

import Foundation

private struct AttentionCase: CustomStringConvertible {
    let queries, keys, heads, headDim, first, bidirectional: Int
    var description: String { "sq\(queries) skv\(keys) h\(heads) d\(headDim) first\(first) bidir\(bidirectional)" }
}

/// Prefill (queries = keys), decode (one query at the end), chunked prefill
/// (queries in the middle), one head, odd head dims, sequences over the 64-key tile;
/// 8+ queries with head dims of 16·j take the 16-query blocked kernel (partial
/// blocks, several key tiles, bidirectional prefixes inside and across tiles).
private let cases: [AttentionCase] = [
    .init(queries: 1, keys: 1, heads: 1, headDim: 8, first: 0, bidirectional: 0),
    .init(queries: 7, keys: 7, heads: 3, headDim: 16, first: 0, bidirectional: 5),
    .init(queries: 11, keys: 11, heads: 4, headDim: 16, first: 0, bidirectional: 10),
    .init(queries: 1, keys: 130, heads: 2, headDim: 64, first: 129, bidirectional: 50),
    .init(queries: 9, keys: 140, heads: 2, headDim: 20, first: 131, bidirectional: 100),
    .init(queries: 70, keys: 70, heads: 1, headDim: 13, first: 0, bidirectional: 64),
    .init(queries: 3, keys: 200, heads: 5, headDim: 128, first: 197, bidirectional: 0),
    // decode-like over several 128-key ranges, the last of which no query sees
    .init(queries: 2, keys: 300, heads: 2, headDim: 32, first: 200, bidirectional: 0),
    .init(queries: 150, keys: 150, heads: 2, headDim: 48, first: 0, bidirectional: 70),
    .init(queries: 21, keys: 101, heads: 3, headDim: 64, first: 80, bidirectional: 30),
    .init(queries: 16, keys: 16, heads: 1, headDim: 128, first: 0, bidirectional: 0),
]

@Suite("Attention")
struct AttentionTests {
    private func inputs(_ c: AttentionCase, seed: UInt64, scale: Float = 1) -> ([Float], [Float], [Float], AttentionShape) {
        var rng = SeededGenerator(seed: seed)
        let shape = AttentionShape(queries: c.queries, keys: c.keys, heads: c.heads, headDim: c.headDim,
                                   firstQueryPosition: c.first, bidirectionalLength: c.bidirectional)
        let q = rng.normals(c.queries * c.heads * c.headDim, scale: scale)
        let k = rng.normals(c.keys * c.heads * c.headDim, scale: scale)
        let v = rng.normals(c.keys * c.heads * c.headDim)
        return (q, k, v, shape)
    }

    @Test("both kernels equal the reference formula with -10000 masking", arguments: InstructionSet.supported)
    func attention_matchesReferenceFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for (index, c) in cases.enumerated() {
            let (q, k, v, shape) = inputs(c, seed: UInt64(index + 1))
            var out = [Float](repeating: .nan, count: c.queries * c.heads * c.headDim)
            try kernels.attention(q: q, k: k, v: v, shape: shape, into: &out)
            let expected = referenceAttention(q: q, k: k, v: v, shape: shape)
            let error = nmse(out, expected)
            let bound = isa == .scalar ? Tolerance.formula : Tolerance.transcendental
            #expect(error <= bound, "\(isa) \(c): nmse \(error); \(firstMismatch(out, expected))")
        }
    }

    /// The half-size KV cache: fp16 keys and values widened exactly as they are read,
    /// so the result is bit for bit the FP32 kernel's on the widened values (every
    /// walk: pairs, key ranges, the blocked prefill), and within the formula bound.
    @Test("fp16 keys and values: bitwise the FP32 kernel on the widened values", arguments: InstructionSet.supported)
    func attention_halfKV(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for (index, c) in cases.enumerated() {
            let (q, k, v, shape) = inputs(c, seed: UInt64(index + 100))
            let (hk, hv) = (k.map { Float16($0).bitPattern }, v.map { Float16($0).bitPattern })
            let (wk, wv) = (hk.map { Float(Float16(bitPattern: $0)) }, hv.map { Float(Float16(bitPattern: $0)) })
            var half = [Float](repeating: .nan, count: c.queries * c.heads * c.headDim), full = half
            try kernels.attention(q: q, halfK: hk, halfV: hv, shape: shape, into: &half)
            try kernels.attention(q: q, k: wk, v: wv, shape: shape, into: &full)
            #expect(half.elementsEqual(full) { $0.bitPattern == $1.bitPattern }, "\(isa) \(c): \(firstMismatch(half, full))")
            let error = nmse(half, referenceAttention(q: q, k: wk, v: wv, shape: shape))
            #expect(error <= (isa == .scalar ? Tolerance.formula : Tolerance.transcendental), "\(isa) \(c): nmse \(error)")
        }
        var out = [Float](repeating: 0, count: 8)
        let short = AttentionShape(queries: 1, keys: 2, heads: 1, headDim: 8, firstQueryPosition: 1, bidirectionalLength: 0)
        #expect(throws: KernelError.self) {
            try kernels.attention(q: [Float](repeating: 1, count: 8), halfK: [UInt16](repeating: 0, count: 15),
                                  halfV: [UInt16](repeating: 0, count: 16), shape: short, into: &out)
        }
    }

    @Test("mask: a context token sees later context tokens; a generated token never sees a later one")
    func mask_bidirectionalContextCausalGeneration() throws {
        // V is the identity (head_dim = keys), so each output row is the softmax weights themselves.
        let keys = 8, bidirectional = 5
        let v = (0..<keys * keys).map { Float($0 / keys == $0 % keys ? 1 : 0) }
        let k = [Float](repeating: 0, count: keys * keys) // equal scores: weights are uniform over the visible keys
        let q = [Float](repeating: 0, count: keys * keys)
        for isa in InstructionSet.supported {
            let kernels = try Kernels(isa: isa)
            let shape = AttentionShape(queries: keys, keys: keys, heads: 1, headDim: keys, firstQueryPosition: 0, bidirectionalLength: bidirectional)
            var out = [Float](repeating: .nan, count: keys * keys)
            try kernels.attention(q: q, k: k, v: v, shape: shape, into: &out)
            for i in 0..<keys {
                for j in 0..<keys {
                    let weight = out[i * keys + j]
                    if j < bidirectional || j <= i {
                        #expect(weight > 0, "\(isa): query \(i) must see key \(j)")
                    } else {
                        #expect(weight == 0, "\(isa): query \(i) must not see key \(j), weight \(weight)")
                    }
                }
            }
            // context token 0 attends to context token 4 (later in the text)
            #expect(out[0 * keys + 4] > 0)
            // generated token 5 never sees token 6 or 7
            #expect(out[5 * keys + 6] == 0 && out[5 * keys + 7] == 0)
        }
    }

    /// The scalar kernel runs the same arithmetic for both, so its bits agree; the
    /// AVX2 prefill runs 16 queries at a time (scale folded into Q, another
    /// summation order), so there the row agrees to FP32 rounding.
    @Test("decode over a cache equals the last row of the full prefill", arguments: InstructionSet.supported)
    func decodeStep_equalsPrefillRow(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        let c = AttentionCase(queries: 90, keys: 90, heads: 2, headDim: 32, first: 0, bidirectional: 40)
        let (q, k, v, shape) = inputs(c, seed: 5)
        var full = [Float](repeating: 0, count: 90 * 64)
        try kernels.attention(q: q, k: k, v: v, shape: shape, into: &full)
        var step = [Float](repeating: 0, count: 64)
        let decode = AttentionShape(queries: 1, keys: 90, heads: 2, headDim: 32, firstQueryPosition: 89, bidirectionalLength: 40)
        try kernels.attention(q: Array(q[(89 * 64)...]), k: k, v: v, shape: decode, into: &step)
        if isa == .scalar {
            #expect(step == Array(full[(89 * 64)...]), "the same arithmetic in the same order must give the same bits")
        } else {
            #expect(nmse(step, Array(full[(89 * 64)...])) <= Tolerance.fp32Kernel)
        }
    }

    @Test("large scores give finite outputs equal to the reference", arguments: InstructionSet.supported)
    func largeScores_stayFinite(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        let c = AttentionCase(queries: 5, keys: 100, heads: 2, headDim: 16, first: 95, bidirectional: 10)
        let (q, k, v, shape) = inputs(c, seed: 9, scale: 30) // scores ~ 30 * 30 * 4 = thousands
        var out = [Float](repeating: 0, count: 5 * 32)
        try kernels.attention(q: q, k: k, v: v, shape: shape, into: &out)
        #expect(out.allSatisfy { $0.isFinite })
        #expect(nmse(out, referenceAttention(q: q, k: k, v: v, shape: shape)) <= Tolerance.transcendental)
    }

    @Test("strided q/k/v inside one fused QKV buffer, per head [q_h | k_h | v_h]")
    func fusedQKVStrides_matchDenseLayout() throws {
        let (tokens, heads, d) = (6, 3, 8)
        var rng = SeededGenerator(seed: 21)
        let qkv = rng.normals(tokens * heads * 3 * d)
        // split into dense arrays the slow way
        func part(_ p: Int) -> [Float] {
            (0..<tokens).flatMap { t in (0..<heads).flatMap { h in (0..<d).map { qkv[t * heads * 3 * d + h * 3 * d + p * d + $0] } } }
        }
        var fused = AttentionShape(queries: tokens, keys: tokens, heads: heads, headDim: d, firstQueryPosition: 0, bidirectionalLength: 4)
        let dense = fused
        fused.qTokenStride = heads * 3 * d; fused.qHeadStride = 3 * d
        fused.kvTokenStride = heads * 3 * d; fused.kvHeadStride = 3 * d
        for isa in InstructionSet.supported {
            let kernels = try Kernels(isa: isa)
            var a = [Float](repeating: 0, count: tokens * heads * d), b = a
            try kernels.attention(q: qkv, k: Array(qkv[d...]), v: Array(qkv[(2 * d)...]), shape: fused, into: &a)
            try kernels.attention(q: part(0), k: part(1), v: part(2), shape: dense, into: &b)
            #expect(a == b, "\(isa)")
        }
    }

    @Test("attention rejects short buffers and oversized heads")
    func attention_rejectsBadShapes() throws {
        let kernels = try Kernels()
        let shape = AttentionShape(queries: 2, keys: 4, heads: 2, headDim: 8, firstQueryPosition: 2, bidirectionalLength: 0)
        var out = [Float](repeating: 0, count: 32)
        #expect(throws: KernelError.self) {
            try kernels.attention(q: [Float](repeating: 0, count: 31), k: [Float](repeating: 0, count: 64), v: [Float](repeating: 0, count: 64), shape: shape, into: &out)
        }
        let huge = AttentionShape(queries: 1, keys: 1, heads: 1, headDim: 1024, firstQueryPosition: 0, bidirectionalLength: 0)
        var big = [Float](repeating: 0, count: 1024)
        #expect(throws: KernelError.self) { try kernels.attention(q: big, k: big, v: big, shape: huge, into: &big) }
    }
}
