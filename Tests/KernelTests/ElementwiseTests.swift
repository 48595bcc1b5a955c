// ElementwiseTests.swift — DeepNorm residual + LayerNorm, bias + GeGLU, bias +
// GeLU (erf and tanh), RoPE (1D and 2D) and embedding lookup: both kernels
// against the formulas of the reference code evaluated in Double.

import Foundation
import KernelBridge
import Testing

private let widths = [1, 7, 8, 64, 100, 257]

private func gelu(_ x: Double, _ form: GeLUForm) -> Double {
    switch form {
    case .erf: return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
    case .tanh: return 0.5 * x * (1 + Foundation.tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x)))
    }
}

@Suite("Element-wise kernels")
struct ElementwiseTests {
    @Test("residual LayerNorm: LN(x * alpha + y) * gamma + beta", arguments: InstructionSet.supported)
    func residualLayerNorm_matchesFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for n in widths where n > 1 {
            for rows in [1, 3] {
                var rng = SeededGenerator(seed: UInt64(n))
                // an offset mean of 5 checks the variance is not computed by cancellation
                let x = rng.normals(rows * n).map { $0 + 5 }, y = rng.normals(rows * n)
                let gamma = rng.normals(n).map { 1 + 0.1 * $0 }, beta = rng.normals(n, scale: 0.05)
                let alpha = Float(2.0.squareRoot() * 3)
                for residual in [y, nil] as [[Float]?] {
                    var out = [Float](repeating: 0, count: rows * n)
                    try kernels.residualLayerNorm(x: x, alpha: alpha, y: residual, gamma: gamma, beta: beta, rows: rows, into: &out)
                    var expected = [Float]()
                    for r in 0..<rows {
                        let h = (0..<n).map { Double(x[r * n + $0]) * Double(alpha) + Double(residual?[r * n + $0] ?? 0) }
                        let mean = h.reduce(0, +) / Double(n)
                        let variance = h.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
                        expected += (0..<n).map { Float((h[$0] - mean) / (variance + 1e-5).squareRoot() * Double(gamma[$0]) + Double(beta[$0])) }
                    }
                    let error = nmse(out, expected)
                    #expect(error <= Tolerance.formula, "\(isa) rows \(rows) n \(n) residual \(residual != nil): nmse \(error)")
                }
            }
        }
    }

    @Test("bias + GeGLU: (u1 + b1) * gelu_erf(u2 + b2), the second half through GeLU", arguments: InstructionSet.supported)
    func biasGeGLU_matchesFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for inner in widths {
            var rng = SeededGenerator(seed: UInt64(inner))
            let rows = 3
            let u = rng.normals(rows * 2 * inner, scale: 2), bias = rng.normals(2 * inner, scale: 0.05)
            var out = [Float](repeating: 0, count: rows * inner)
            try kernels.biasGeGLU(u, bias: bias, rows: rows, inner: inner, into: &out)
            let expected = (0..<rows * inner).map { index -> Float in
                let (r, i) = (index / inner, index % inner)
                let x1 = Double(u[r * 2 * inner + i] + bias[i]), x2 = Double(u[r * 2 * inner + inner + i] + bias[inner + i])
                return Float(x1 * gelu(x2, .erf))
            }
            #expect(nmse(out, expected) <= Tolerance.transcendental, "\(isa) inner \(inner)")
        }
    }

    @Test("bias + GeLU in erf and tanh form, in place", arguments: InstructionSet.supported)
    func biasGeLU_matchesFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for form in [GeLUForm.erf, .tanh] {
            for n in widths {
                var rng = SeededGenerator(seed: UInt64(n) + 99)
                let rows = 2
                var x = rng.normals(rows * n, scale: 3)
                x[0] = -12 // deep in the negative tail, where gelu is ~0
                let bias = rng.normals(n, scale: 0.05)
                let expected = x.indices.map { Float(gelu(Double(x[$0] + bias[$0 % n]), form)) }
                try kernels.biasGeLU(x, bias: bias, rows: rows, form: form, into: &x) // out aliases nothing in Swift: x is copied on write
                #expect(nmse(x, expected) <= Tolerance.transcendental, "\(isa) \(form) n \(n)")
                #expect(x.allSatisfy { $0.isFinite })
            }
        }
    }

    @Test("RoPE inverse frequencies are the reference's fp16-rounded values")
    func ropeInverseFrequencies_areFP16Rounded() throws {
        let inv = try Kernels.ropeInverseFrequencies(rotaryDim: 16)
        // fp16(1 / 10000^(2i/16)) for i = 0..7, as torch computes them with .half()
        let expected: [Float] = (0..<8).map { Float16Bits.toFloat(Float16Bits.from(1 / powf(10000, Float(2 * $0) / 16))) }
        #expect(inv == expected)
        #expect(inv[1] != 1 / powf(10000, 2.0 / 16), "the value must be rounded, not exact")
    }

    @Test("RoPE 1D and 2D rotate-half against the formula, strided inside QKV, q alone or q and k together",
          arguments: InstructionSet.supported)
    func rope_matchesFormula(isa: InstructionSet) throws {
        let kernels = try Kernels(isa: isa)
        for form in [RoPEShape.Form.oneD, .twoD] {
            for (headDim, pair) in [(4, false), (16, true), (24, false), (24, true), (128, true)] {
                let (tokens, heads) = (5, 3)
                // q sits at offset 0 of each head's [q | k | v] block of a fused QKV row, k at headDim;
                // v must come out untouched either way
                let shape = RoPEShape(tokens: tokens, heads: heads, headDim: headDim, form: form,
                                      tokenStride: heads * 3 * headDim, headStride: 3 * headDim, pairOffset: pair ? headDim : 0)
                var rng = SeededGenerator(seed: UInt64(headDim))
                let original = rng.normals(tokens * heads * 3 * headDim)
                let positions: [Int32] = [0, 1, 2, 7, 2047]
                let blocks: [Int32] = [0, 0, 1, 2, 3]
                let inv = try Kernels.ropeInverseFrequencies(rotaryDim: shape.rotaryDim)
                var x = original
                try kernels.rope(&x, shape: shape, positions: positions, blockPositions: blocks, inverseFrequencies: inv)

                var expected = original
                for t in 0..<tokens {
                    for h in 0..<heads {
                      for vector in 0..<(pair ? 2 : 1) {
                        let base = t * shape.tokenStride + h * shape.headStride + vector * headDim
                        let parts = form == .oneD ? [(0, positions[t])] : [(0, positions[t]), (headDim / 2, blocks[t])]
                        let dim = shape.rotaryDim
                        for (offset, position) in parts {
                            for i in 0..<dim / 2 {
                                let angle = Double(Float(position) * inv[i]) // the reference's fp32 t * inv_freq
                                let x1 = Double(original[base + offset + i]), x2 = Double(original[base + offset + dim / 2 + i])
                                expected[base + offset + i] = Float(x1 * cos(angle) - x2 * sin(angle))
                                expected[base + offset + dim / 2 + i] = Float(x2 * cos(angle) + x1 * sin(angle))
                            }
                        }
                      }
                    }
                }
                let error = nmse(x, expected)
                #expect(error <= Tolerance.formula, "\(isa) \(form) d \(headDim) pair \(pair): nmse \(error); \(firstMismatch(x, expected))")
            }
        }
    }

    @Test("RoPE rejects an odd rotary dimension and missing block positions")
    func rope_rejectsBadShapes() throws {
        let kernels = try Kernels()
        var x = [Float](repeating: 0, count: 12)
        #expect(throws: KernelError.self) {
            try kernels.rope(&x, shape: RoPEShape(tokens: 1, heads: 1, headDim: 6, form: .twoD), positions: [0], blockPositions: [0],
                             inverseFrequencies: [0.5])
        }
        #expect(throws: KernelError.self) {
            try kernels.rope(&x, shape: RoPEShape(tokens: 1, heads: 1, headDim: 8, form: .twoD), positions: [0],
                             inverseFrequencies: [1, 0.1])
        }
    }

    @Test("embedding lookup returns the dequantized rows of every table type", arguments: WeightType.allCases)
    func embedding_returnsDequantizedRows(type: WeightType) throws {
        let (vocab, hidden) = (50, type.block == 32 ? 64 : 36)
        var rng = SeededGenerator(seed: 17)
        let table = try WeightMatrix.quantize(rng.normals(vocab * hidden), rows: vocab, cols: hidden, as: type, group: 32)
        let ids: [Int32] = [0, 49, 7, 7, 23]
        for isa in InstructionSet.supported {
            let kernels = try Kernels(isa: isa)
            let dense = try kernels.dequantize(table)
            var out = [Float](repeating: 0, count: ids.count * hidden)
            try kernels.embedding(table, ids: ids, into: &out)
            let expected = ids.flatMap { dense[(Int($0) * hidden)..<(Int($0) * hidden + hidden)] }
            #expect(out == expected, "\(isa) \(type)")
            #expect(throws: KernelError.self) { try kernels.embedding(table, ids: [50], into: &out) }
            #expect(throws: KernelError.self) { try kernels.embedding(table, ids: [-1], into: &out) }
        }
    }
}
