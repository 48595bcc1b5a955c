// Q16ActivationTests.swift — the default decode mat-vec for quantized weights,
// with activations rounded to 16 bits per 32-block: the SIMD kernel against its
// scalar twin (same integers; only the float summation order differs), and
// against the FP32-activation product within the 16-bit rounding error.

import KernelBridge
import Testing

/// INT4 types plus Q8_0, which the 16-bit path also serves.
private let q16Types: [(WeightType, Int)] = q4Types + [(.q8_0, 0)]

@Suite("Quantized mat-vec with 16-bit activations")
struct Q16ActivationTests {
    @Test("SIMD equals the scalar reference on odd and round shapes")
    func q16MatvecSIMD_matchesReference() throws {
        let scalar = try Kernels(isa: .scalar, activations: .q16)
        for isa in simdSets {
            let simd = try Kernels(isa: isa, activations: .q16)
            for (type, group) in q16Types {
                let blockOnly = type == .q4_0 || type == .q8_0 || group == 128
                for cols in blockOnly ? [96, 128, 224, 256, 544] : [32, 33, 100, 257, 544] { // 4-block steps and 1-3 left
                    for rows in [1, 3, 8, 13, 33] { // 8-row passes with remainders
                        var rng = SeededGenerator(seed: UInt64(rows * 131 + cols))
                        let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
                        let x = rng.normals(cols), bias = rng.normals(rows)
                        var a = [Float](repeating: 0, count: rows), b = a
                        try scalar.matvecQ16(w, x, bias: bias, into: &a)
                        try simd.matvecQ16(w, x, bias: bias, into: &b)
                        let error = normalisedError(b, a, dense: try Kernels(isa: .scalar).dequantize(w), x: x, rows: rows, cols: cols)
                        #expect(error <= Tolerance.fp32Kernel, "\(isa) \(type) g\(group) \(rows)x\(cols): \(error)")
                    }
                }
            }
        }
    }

    /// Rounding x to 16 bits per 32-block moves each element by at most
    /// absmax/65534. The 8-bit test's worst case, (2.5 / 254)^2 / 5 = 2e-5,
    /// scales by (254 / 65534)^2 to 3e-10; a wrong nibble, order or zero point
    /// gives ~1. Outliers are the point of 16 bits: one element 100x the rest
    /// of its block still leaves the others ~650 steps of resolution.
    @Test("16-bit activations stay within their rounding error of the FP32 product, outliers included")
    func q16Matvec_closeToFP32() throws {
        let f32 = try Kernels(activations: .f32), q16 = try Kernels(activations: .q16)
        #expect(try Kernels().activations == .q16, "q16 is the default")
        for (type, group) in q16Types {
            let (rows, cols) = (64, 512)
            var rng = SeededGenerator(seed: 99)
            let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
            var x = rng.normals(cols)
            for i in stride(from: 5, to: cols, by: 97) { x[i] *= 100 } // GLM-130B-like outlier features
            var a = [Float](repeating: 0, count: rows), b = a
            try f32.matvec(w, x, bias: nil, into: &a)
            try q16.matvec(w, x, bias: nil, into: &b)
            let error = normalisedError(b, a, dense: try Kernels(isa: .scalar).dequantize(w), x: x, rows: rows, cols: cols)
            #expect(error > 0 && error <= 3e-10, "\(type) g\(group): \(error)")
        }
        var y = [Float](repeating: 0, count: 4)
        let f16 = try WeightMatrix.quantize([Float](repeating: 1, count: 4 * 64), rows: 4, cols: 64, as: .f16)
        #expect(throws: KernelError.self) { try q16.matvecQ16(f16, [Float](repeating: 1, count: 64), bias: nil, into: &y) }
    }

    /// Batched decode: m tokens in one call (the weights read once) must give each
    /// token exactly the bits of its one-token call, on every instruction set and
    /// type, with row counts that leave odd rows and token counts that leave 1-3.
    @Test("m tokens in one call equal m one-token calls bit for bit")
    func q16Batched_equalsOneTokenCalls() throws {
        for isa in [InstructionSet.scalar] + simdSets {
            let k = try Kernels(isa: isa, activations: .q16)
            for (type, group) in q16Types {
                let blockOnly = type == .q4_0 || type == .q8_0 || group == 128
                for cols in blockOnly ? [128, 224] : [33, 256] {
                    for (rows, m) in [(1, 2), (3, 5), (13, 4), (33, 9)] {
                        var rng = SeededGenerator(seed: UInt64(rows * 17 + cols * 3 + m))
                        let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
                        let x = rng.normals(m * cols), bias = rng.normals(rows)
                        var batched = [Float](repeating: 0, count: m * rows)
                        try k.matvecs(w, x, tokens: m, bias: bias, into: &batched)
                        for t in 0..<m {
                            var one = [Float](repeating: 0, count: rows)
                            try k.matvec(w, Array(x[(t * cols)..<((t + 1) * cols)]), bias: bias, into: &one)
                            let row = Array(batched[(t * rows)..<((t + 1) * rows)])
                            #expect(row.elementsEqual(one) { $0.bitPattern == $1.bitPattern },
                                    "\(isa) \(type) g\(group) \(rows)x\(cols), token \(t) of \(m)")
                        }
                    }
                }
            }
        }
    }
}

/// The default prefill where the table has it (AVX-512 VNNI): the 16-bit-activation
/// mat-mat, which quantizes X itself, against the scalar 16-bit mat-vec run token by
/// token (the same integers and scales; only the float summation order differs), on
/// whole and partial 6-token tiles and 32-row panels, and K-blocks past 1024 columns.
@Suite("Quantized mat-mat with 16-bit activations")
struct Q16MatmulTests {
    @Test("the q16 mat-mat equals the scalar q16 mat-vec of each token")
    func q16Matmul_matchesPerTokenReference() throws {
        guard InstructionSet.avx512.isSupported, Kernels.hasFastInt8MatMul else { return } // no such mat-mat here
        let scalar = try Kernels(isa: .scalar, activations: .q16), simd = try Kernels(isa: .avx512, activations: .q16)
        for (type, group) in q4Types where type == .q4_0 || type == .q4Row || group % 32 == 0 {
            for cols in [32, 96, 1056, 2080] {
                for rows in [1, 31, 33, 70] {
                    for m in [2, 5, 6, 7, 13, 50] {
                        guard type != .q4Group || cols % group == 0 || group <= 32 else { continue }
                        var rng = SeededGenerator(seed: UInt64(rows * 131 + cols * 7 + m))
                        let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
                        var x = rng.normals(m * cols)
                        for i in stride(from: 3, to: x.count, by: 101) { x[i] *= 50 } // outlier features
                        let bias = m % 2 == 0 ? rng.normals(rows) : nil
                        var a = [Float](repeating: 0, count: m * rows), b = [Float](repeating: .nan, count: m * rows)
                        try scalar.matvecs(w, x, tokens: m, bias: bias, into: &a)
                        #expect(try simd.matmulQ16(w, x, tokens: m, bias: bias, into: &b), "\(type) g\(group): the q16 mat-mat must take it")
                        let dense = try Kernels(isa: .scalar).dequantize(w)
                        var worst = 0.0
                        for t in 0..<m {
                            let xt = Array(x[(t * cols)..<((t + 1) * cols)])
                            worst = max(worst, normalisedError(Array(b[(t * rows)..<((t + 1) * rows)]), Array(a[(t * rows)..<((t + 1) * rows)]),
                                                               dense: dense, x: xt, rows: rows, cols: cols))
                        }
                        #expect(worst <= Tolerance.fp32Kernel, "\(type) g\(group) m\(m) \(rows)x\(cols): \(worst)")
                    }
                }
            }
        }
    }

    @Test("types and shapes the q16 mat-mat does not take fall back to the FP32 mat-mat")
    func q16Matmul_fallsBack() throws {
        guard InstructionSet.avx512.isSupported, Kernels.hasFastInt8MatMul else { return }
        let simd = try Kernels(isa: .avx512, activations: .q16)
        var rng = SeededGenerator(seed: 5)
        var y = [Float](repeating: 0, count: 3 * 4)
        for (type, cols) in [(WeightType.q8_0, 64), (.f16, 64), (.q4Row, 40)] {
            let w = try WeightMatrix.quantize(rng.normals(4 * cols), rows: 4, cols: cols, as: type)
            #expect(try !simd.matmulQ16(w, rng.normals(3 * cols), tokens: 3, bias: nil, into: &y), "\(type) \(cols)")
        }
    }
}
