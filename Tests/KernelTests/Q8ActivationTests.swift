// Q8ActivationTests.swift — the INT4 mat-vec with 8-bit activations: the SIMD
// kernel against its scalar twin (same integers, so only float summation
// order differs), and against the FP32-activation product within the error
// that quantizing activations to 8 bits introduces.

import KernelBridge
import Testing

let q4Types: [(WeightType, Int)] = [(.q4_0, 0), (.q4Row, 0), (.q4Group, 32), (.q4Group, 128)]

@Suite("INT4 mat-vec with 8-bit activations")
struct Q8ActivationTests {
    @Test("SIMD equals the scalar reference on odd and round shapes")
    func q8MatvecSIMD_matchesReference() throws {
        let scalar = try Kernels(isa: .scalar, activations: .q8)
        for isa in simdSets {
            let simd = try Kernels(isa: isa, activations: .q8)
            for (type, group) in q4Types {
                for cols in type == .q4_0 || group == 128 ? [128, 256, 544] : [32, 33, 100, 257, 544] {
                    for rows in [1, 5, 33] {
                        var rng = SeededGenerator(seed: UInt64(rows * 131 + cols))
                        let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
                        let x = rng.normals(cols), bias = rng.normals(rows)
                        var a = [Float](repeating: 0, count: rows), b = a
                        try scalar.matvecQ8(w, x, bias: bias, into: &a)
                        try simd.matvecQ8(w, x, bias: bias, into: &b)
                        let error = normalisedError(b, a, dense: try Kernels(isa: .scalar).dequantize(w), x: x, rows: rows, cols: cols)
                        #expect(error <= Tolerance.fp32Kernel, "\(isa) \(type) g\(group) \(rows)x\(cols): \(error)")
                    }
                }
            }
        }
    }

    /// Rounding x to 8 bits per 32-block moves each element by at most
    /// absmax/254 and on average by about absmax/440 (uniform error / sqrt 3),
    /// so against sum |w x| a dot product moves by ~1e-3 relative: nmse ~1e-6
    /// for N(0, 1) data. 2e-5 is the worst case (every error at its bound,
    /// with absmax ~2.5 sigma: (2.5 / 254)^2 / 5); a wrong nibble or scale gives ~1.
    @Test("8-bit activations stay within the quantization error of the FP32 product")
    func q8Matvec_closeToFP32() throws {
        let f32 = try Kernels(), q8 = try Kernels(activations: .q8)
        for (type, group) in q4Types {
            let (rows, cols) = (64, 512)
            var rng = SeededGenerator(seed: 99)
            let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
            let x = rng.normals(cols)
            var a = [Float](repeating: 0, count: rows), b = a
            try f32.matvec(w, x, bias: nil, into: &a)
            try q8.matvec(w, x, bias: nil, into: &b)
            let error = normalisedError(b, a, dense: try Kernels(isa: .scalar).dequantize(w), x: x, rows: rows, cols: cols)
            #expect(error > 0 && error <= 2e-5, "\(type) g\(group): \(error)")
        }
        var y = [Float](repeating: 0, count: 4)
        let f16 = try WeightMatrix.quantize([Float](repeating: 1, count: 4 * 64), rows: 4, cols: 64, as: .f16)
        #expect(throws: KernelError.self) { try q8.matvecQ8(f16, [Float](repeating: 1, count: 64), bias: nil, into: &y) }
    }

    @Test("the q8 mat-mat (prefill) equals the token-by-token reference on odd and round shapes")
    func q8Matmul_matchesReference() throws {
        let scalar = try Kernels(isa: .scalar, activations: .q8)
        for isa in simdSets {
            let simd = try Kernels(isa: isa, activations: .q8)
            // a weight scale is shared by runs of 1 (q4_0, groups of 32), 2, 4 or 16 (q4_row) blocks
            for (type, group) in q4Types + [(.q4Group, 64)] {
                let blockOnly = type == .q4_0 || group == 128
                for cols in blockOnly ? [128, 544, 1056] : [33, 100, 544, 1056] { // 1056: three K-blocks of 512
                    for (m, rows) in [(2, 5), (7, 16), (13, 33)] {
                        var rng = SeededGenerator(seed: UInt64(m * 7 + rows * 131 + cols))
                        let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
                        let x = rng.normals(m * cols), bias = rng.normals(rows)
                        var a = [Float](repeating: 0, count: m * rows), b = a
                        #expect(try scalar.matmulQ8(w, x, tokens: m, bias: bias, into: &a))
                        let ran = try simd.matmulQ8(w, x, tokens: m, bias: bias, into: &b)
                        #expect(ran == Kernels.hasFastInt8MatMul, "the fast kernel runs exactly where the CPU has it")
                        guard ran else { return } // no AVX-512 VNNI here: the runtime keeps the FP32 mat-mat
                        let dense = try Kernels(isa: .scalar).dequantize(w)
                        for t in 0..<m {
                            let row = Array(x[(t * cols)..<((t + 1) * cols)])
                            let error = normalisedError(Array(b[(t * rows)..<((t + 1) * rows)]), Array(a[(t * rows)..<((t + 1) * rows)]),
                                                        dense: dense, x: row, rows: rows, cols: cols)
                            #expect(error <= Tolerance.fp32Kernel, "\(isa) \(type) g\(group) m\(m) \(rows)x\(cols) token \(t): \(error)")
                        }
                    }
                }
            }
        }
    }
}
