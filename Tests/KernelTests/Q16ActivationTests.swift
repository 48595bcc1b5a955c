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
