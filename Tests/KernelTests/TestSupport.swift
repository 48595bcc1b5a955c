// TestSupport.swift — seeded random data, the normalised error, and fixture paths.

import Foundation
import GLMRuntime
import KernelBridge

/// A seeded generator (GLMRuntime's SplitMix64) so failures reproduce exactly.
struct SeededGenerator: RandomNumberGenerator {
    private var base: SplitMix64
    init(seed: UInt64) { base = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { base.next() }

    /// N(0, 1) by Box-Muller.
    mutating func normal() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    mutating func normals(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in normal() * scale }
    }
}

/// sum((a - e)^2) / sum(e^2); 0 when both are zero.
func nmse(_ actual: [Float], _ expected: [Float]) -> Double {
    precondition(actual.count == expected.count, "nmse of arrays of different lengths")
    var err = 0.0, ref = 0.0
    for (a, e) in zip(actual, expected) {
        err += (Double(a) - Double(e)) * (Double(a) - Double(e))
        ref += Double(e) * Double(e)
    }
    if ref == 0 { return err == 0 ? 0 : .infinity }
    return err / ref
}

/// Per output, sum_k |W x| + |b| (the scale of a dot product's error), then the normalised error.
func normalisedError(_ a: [Float], _ e: [Float], dense: [Float], x: [Float], rows: Int, cols: Int) -> Double {
    var err = 0.0, scale = 0.0
    for n in 0..<rows {
        var m = 0.0
        for k in 0..<cols { m += abs(Double(dense[n * cols + k]) * Double(x[k])) }
        err += (Double(a[n]) - Double(e[n])) * (Double(a[n]) - Double(e[n]))
        scale += m * m
    }
    return err / scale
}

/// Where the first large difference is, for failure messages.
func firstMismatch(_ actual: [Float], _ expected: [Float]) -> String {
    let scale = expected.map { abs($0) }.max() ?? 1
    for i in actual.indices where abs(actual[i] - expected[i]) > 1e-4 * max(scale, 1e-30) || actual[i].isNaN {
        return "index \(i): expected \(expected[i]), actual \(actual[i])"
    }
    return "no element differs by more than 1e-4 of the scale"
}

enum Fixtures {
    /// Tests/Fixtures, found from this file so tests need nothing outside the repo.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func golden(_ arch: String) -> URL { root.appendingPathComponent(arch) }
}

/// The instruction sets to compare against the scalar reference on this CPU.
let simdSets: [InstructionSet] = InstructionSet.supported.filter { $0 != .scalar }
