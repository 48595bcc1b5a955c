// ProductKernelTests.swift — mat-vec and mat-mat for every weight type: the
// SIMD kernels against the scalar reference, the reference against the
// dequantized matrix in Double, on round and odd shapes.

import KernelBridge
import Testing

/// Column counts per type: odd sizes where the type allows them (K not a
/// multiple of 32 or 8, K = 1), block multiples for the GGUF types, and K
/// crossing the mat-mat's K-block (128..512) to hit its remainder path.
private func columnCases(_ type: WeightType) -> [Int] {
    type.block == 32 ? [32, 64, 96, 288, 544] : [1, 7, 31, 33, 64, 100, 257, 530]
}

private let rowCases = [1, 5, 8, 17, 33]
// 6 and 24 are the AVX2 and AVX-512 tiles' token counts: whole tiles, partial ones, several
private let tokenCases = [1, 2, 6, 7, 13, 24, 25, 50]

private func groupCases(_ type: WeightType) -> [Int] { type == .q4Group ? [32, 64, 128] : [0] }

private func matrix(_ type: WeightType, rows: Int, cols: Int, group: Int, seed: UInt64) throws -> WeightMatrix {
    var rng = SeededGenerator(seed: seed)
    return try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: type, group: group)
}

/// y = W x + b in Double from the dequantized weights: what every product must compute.
private func expectedProduct(_ dense: [Float], rows: Int, cols: Int, x: [Float], bias: [Float]?) -> [Float] {
    (0..<rows).map { n in
        var sum = Double(bias?[n] ?? 0)
        for k in 0..<cols { sum += Double(dense[n * cols + k]) * Double(x[k]) }
        return Float(sum)
    }
}

/// Per output, sum_k |W[n,k] x[k]| + |b[n]|: the scale that bounds the rounding
/// error of a float dot product (Higham: |error| <= gamma_K * sum |w x|). A
/// single output can cancel to near zero, so errors are normalised by this
/// magnitude rather than by the result itself.
private func productMagnitude(_ dense: [Float], rows: Int, cols: Int, x: [Float], tokens: Int, bias: [Float]?) -> [Float] {
    (0..<tokens * rows).map { index in
        let (t, n) = (index / rows, index % rows)
        var sum = Double(abs(bias?[n] ?? 0))
        for k in 0..<cols { sum += abs(Double(dense[n * cols + k]) * Double(x[t * cols + k])) }
        return Float(sum)
    }
}

/// sum((a - e)^2) / sum(magnitude^2).
private func productError(_ actual: [Float], _ expected: [Float], magnitude: [Float]) -> Double {
    let err = zip(actual, expected).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
    let scale = magnitude.reduce(0.0) { $0 + Double($1) * Double($1) }
    return scale == 0 ? err : err / scale
}

@Suite("Weight x activation products")
struct ProductKernelTests {
    @Test("mat-vec: reference equals the dequantized matrix product", arguments: WeightType.allCases)
    func matvecReference_matchesDequantizedProduct(type: WeightType) throws {
        let scalar = try Kernels(isa: .scalar)
        for cols in columnCases(type) {
            for rows in [1, 17] {
                for group in groupCases(type) {
                    let w = try matrix(type, rows: rows, cols: cols, group: group, seed: UInt64(rows * 1000 + cols))
                    var rng = SeededGenerator(seed: 7)
                    let x = rng.normals(cols), bias = rng.normals(rows)
                    var y = [Float](repeating: 0, count: rows)
                    try scalar.matvec(w, x, bias: bias, into: &y)
                    let dense = try scalar.dequantize(w)
                    let expected = expectedProduct(dense, rows: rows, cols: cols, x: x, bias: bias)
                    let error = productError(y, expected, magnitude: productMagnitude(dense, rows: rows, cols: cols, x: x, tokens: 1, bias: bias))
                    #expect(error <= Tolerance.formula, "\(type) \(rows)x\(cols) g\(group): nmse \(error); \(firstMismatch(y, expected))")
                }
            }
        }
    }

    @Test("mat-vec: SIMD matches the scalar reference on odd and round shapes", arguments: WeightType.allCases)
    func matvecSIMD_matchesReference(type: WeightType) throws {
        let scalar = try Kernels(isa: .scalar)
        for isa in simdSets {
            let simd = try Kernels(isa: isa)
            for cols in columnCases(type) {
                for rows in rowCases {
                    for group in groupCases(type) {
                        let w = try matrix(type, rows: rows, cols: cols, group: group, seed: UInt64(rows * 7919 + cols))
                        var rng = SeededGenerator(seed: UInt64(cols))
                        let x = rng.normals(cols)
                        let bias: [Float]? = rows % 2 == 1 ? rng.normals(rows) : nil
                        var expected = [Float](repeating: 0, count: rows), actual = expected
                        try scalar.matvec(w, x, bias: bias, into: &expected)
                        try simd.matvec(w, x, bias: bias, into: &actual)
                        let magnitude = productMagnitude(try scalar.dequantize(w), rows: rows, cols: cols, x: x, tokens: 1, bias: bias)
                        let error = productError(actual, expected, magnitude: magnitude)
                        #expect(error <= Tolerance.fp32Kernel,
                                "\(isa) \(type) \(rows)x\(cols) g\(group) bias \(bias != nil): nmse \(error); \(firstMismatch(actual, expected))")
                    }
                }
            }
        }
    }

    @Test("mat-mat: SIMD matches the scalar reference on odd and round shapes", arguments: WeightType.allCases)
    func matmulSIMD_matchesReference(type: WeightType) throws {
        let scalar = try Kernels(isa: .scalar)
        for isa in simdSets {
            let simd = try Kernels(isa: isa)
            for cols in columnCases(type) where cols <= 288 || type == .f32 || type == .q4Row {
                for rows in [1, 16, 17, 33] {
                    for m in tokenCases {
                        let group = groupCases(type).last!
                        let w = try matrix(type, rows: rows, cols: cols, group: group, seed: UInt64(rows * 31 + cols + m))
                        var rng = SeededGenerator(seed: UInt64(m * 101 + cols))
                        let x = rng.normals(m * cols)
                        let bias: [Float]? = m % 2 == 0 ? rng.normals(rows) : nil
                        var expected = [Float](repeating: 0, count: m * rows), actual = expected
                        try scalar.matmul(w, x, tokens: m, bias: bias, into: &expected)
                        try simd.matmul(w, x, tokens: m, bias: bias, into: &actual)
                        let magnitude = productMagnitude(try scalar.dequantize(w), rows: rows, cols: cols, x: x, tokens: m, bias: bias)
                        let error = productError(actual, expected, magnitude: magnitude)
                        #expect(error <= Tolerance.fp32Kernel,
                                "\(isa) \(type) m\(m) \(rows)x\(cols): nmse \(error); \(firstMismatch(actual, expected))")
                    }
                }
            }
        }
    }

    // The mat-mat blocks K by up to 4096 columns (from the L2 size): rows wider than
    // two blocks exercise the accumulation across K-blocks and a partial last one.
    @Test("mat-mat: SIMD matches the scalar reference across several K-blocks", arguments: WeightType.allCases)
    func matmulSIMD_matchesReferenceAcrossKBlocks(type: WeightType) throws {
        let scalar = try Kernels(isa: .scalar)
        let cols = type.block == 32 ? 259 * 32 : 8292, rows = 17, m = 31
        let w = try matrix(type, rows: rows, cols: cols, group: groupCases(type).last!, seed: 11)
        var rng = SeededGenerator(seed: 12)
        let x = rng.normals(m * cols), bias = rng.normals(rows)
        for isa in simdSets {
            var expected = [Float](repeating: 0, count: m * rows), actual = expected
            try scalar.matmul(w, x, tokens: m, bias: bias, into: &expected)
            try Kernels(isa: isa).matmul(w, x, tokens: m, bias: bias, into: &actual)
            let magnitude = productMagnitude(try scalar.dequantize(w), rows: rows, cols: cols, x: x, tokens: m, bias: bias)
            let error = productError(actual, expected, magnitude: magnitude)
            #expect(error <= Tolerance.fp32Kernel, "\(isa) \(type) m\(m) \(rows)x\(cols): nmse \(error)")
        }
    }

    @Test("mat-mat of one token equals mat-vec")
    func matmulOneToken_equalsMatvec() throws {
        let kernels = try Kernels()
        let w = try matrix(.q4Row, rows: 37, cols: 300, group: 0, seed: 3)
        var rng = SeededGenerator(seed: 4)
        let x = rng.normals(300)
        var a = [Float](repeating: 0, count: 37), b = a
        try kernels.matvec(w, x, into: &a)
        try kernels.matmul(w, x, tokens: 1, into: &b)
        #expect(nmse(b, a) <= Tolerance.fp32Kernel)
    }

    @Test("dequantize: SIMD rows equal reference rows exactly", arguments: WeightType.allCases)
    func dequantizeSIMD_equalsReference(type: WeightType) throws {
        let scalar = try Kernels(isa: .scalar)
        for isa in simdSets {
            for cols in columnCases(type) {
                for group in groupCases(type) {
                    let w = try matrix(type, rows: 3, cols: cols, group: group, seed: UInt64(cols))
                    // Both compute the exact product q * scale in float: no rounding difference is possible.
                    #expect(try Kernels(isa: isa).dequantize(w) == scalar.dequantize(w), "\(isa) \(type) cols \(cols) g\(group)")
                }
            }
        }
    }

    @Test("products reject mismatched shapes with a clear error")
    func products_rejectShapeMismatch() throws {
        let kernels = try Kernels()
        let w = try matrix(.f32, rows: 4, cols: 8, group: 0, seed: 1)
        var y = [Float](repeating: 0, count: 4)
        #expect(throws: KernelError.shapeMismatch(operation: "matvec.f32", argument: "x", expected: 8, actual: 7)) {
            try kernels.matvec(w, [Float](repeating: 0, count: 7), into: &y)
        }
        var wrongY = [Float](repeating: 0, count: 3)
        #expect(throws: KernelError.self) { try kernels.matvec(w, [Float](repeating: 0, count: 8), into: &wrongY) }
        #expect(throws: KernelError.self) { try kernels.matmul(w, [Float](repeating: 0, count: 16), tokens: 3, into: &y) }
        #expect(throws: KernelError.self) { try WeightMatrix.quantize([Float](repeating: 0, count: 40), rows: 1, cols: 40, as: .q4_0) }
        #expect(throws: KernelError.self) { try WeightMatrix.quantize([Float](repeating: 0, count: 64), rows: 1, cols: 64, as: .q4Group, group: 48) }
    }
}
