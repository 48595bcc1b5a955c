// Verifier.swift — a provider's operations run against the scalar reference
// on random inputs of several shapes (odd and round) before the registry lets
// the runtime use them. Bounds are those of the kernel test suite: a
// normalised error of 1e-10 (relative RMS 1e-5), products normalised by
// sum |w x| per output, the scale their float rounding is bounded by.
//
// Products are tried with and without a bias, on shapes up to a few
// thousand rows with odd columns, at several token counts; a C plugin is
// called through its verifying() copy (guard words around the output,
// inputs compared, a crash caught) with OpenMP on one thread, and then from
// two threads at once. Verification catches mistakes; it is not a sandbox.

import Foundation
import KernelBridge

public struct VerificationResult: Sendable {
    public let provider: String
    public let operation: String
    /// Largest normalised error over the shapes tried.
    public let error: Double
    public let passed: Bool
    /// Why it failed: the shape and the error, or NaN, or a thrown error.
    public let failure: String?
}

public enum Verifier {
    public static let bound = 1e-10

    public static func verify(_ provider: any KernelProvider, operation: String) -> VerificationResult {
        func result(_ error: Double, _ failure: String?) -> VerificationResult {
            VerificationResult(provider: provider.name, operation: operation, error: error, passed: failure == nil, failure: failure)
        }
        do {
            let reference = try Kernels(isa: .scalar)
            let cases = try cases(for: operation)
            var worst = 0.0
            // one case at a time, guarded, with the plugin's OpenMP on this thread only
            let subject: any KernelProvider = (provider as? CPluginProvider)?.verifying() ?? provider
            let threads = Threads.current
            try Threads.configure(count: 1)
            defer { try? Threads.configure(count: threads) }
            var expectations: [[Float]] = []
            for c in cases {
                let expected = try c.run(reference)
                expectations.append(expected.values)
                let actual = try c.run(subject)
                if let failure = judge(actual.values, expected, shape: c.shape, worst: &worst) { return result(.infinity, failure) }
            }
            try? Threads.configure(count: threads)
            // then two threads at once, each calling several times: a kernel with shared state fails here
            if let c = cases.max(by: { $0.size < $1.size }) {
                let expected = try c.run(reference)
                let failures = LockedStrings()
                // two real threads (concurrentPerform may run both iterations on one under load)
                let done = DispatchSemaphore(value: 0)
                let start = DispatchSemaphore(value: 0)
                let work: @Sendable () -> Void = {
                    start.wait()
                    defer { done.signal() }
                    for _ in 0..<4 {
                        do {
                            let actual = try c.run(provider)
                            var unused = 0.0
                            if let failure = judge(actual.values, expected, shape: c.shape + ", two threads at once", worst: &unused) {
                                failures.append(failure)
                            }
                        } catch {
                            failures.append("\(c.shape), two threads at once: \(error)")
                        }
                    }
                }
                let threads = [Thread(block: work), Thread(block: work)]
                threads.forEach { $0.start() }
                start.signal()
                start.signal()
                done.wait()
                done.wait()
                if let failure = failures.first { return result(.infinity, failure) }
            }
            return result(worst, nil)
        } catch {
            return result(.infinity, "\(error)")
        }
    }

    /// nil when `actual` is finite and within the bound of `expected`, else why not.
    private static func judge(_ actual: [Float], _ expected: (values: [Float], scale: [Float]), shape: String, worst: inout Double) -> String? {
        if let bad = actual.firstIndex(where: { !$0.isFinite }) { return "\(shape): produced \(actual[bad]) at output \(bad)" }
        let error = normalisedError(actual, expected.values, scale: expected.scale)
        worst = max(worst, error)
        return error <= bound ? nil : String(format: "%@: normalised error %.3g (bound %.0e)", shape, error, bound)
    }

    static func normalisedError(_ a: [Float], _ e: [Float], scale: [Float]) -> Double {
        var err = 0.0, ref = 0.0
        for i in a.indices {
            err += (Double(a[i]) - Double(e[i])) * (Double(a[i]) - Double(e[i]))
            ref += Double(scale[i]) * Double(scale[i])
        }
        return ref == 0 ? err : err / ref
    }

    /// Times `operation` on `provider` against `baseline` at a working size; returns
    /// baseline time / provider time (best of `repetitions`). `quick` times a
    /// smaller shape, as the registry does on every load.
    public static func speedup(_ provider: any KernelProvider, over baseline: any KernelProvider, operation: String,
                               quick: Bool = false) throws -> Double {
        guard let c = try cases(for: operation, benchmark: quick ? .quick : .full).first else { return .nan }
        // one thread each: an OpenMP barrier waiting on a thread the machine has descheduled
        // (other work on a shared 2-core machine) would otherwise decide the ratio
        let threads = Threads.current
        try Threads.configure(count: 1)
        defer { try? Threads.configure(count: threads) }
        func time(_ p: any KernelProvider) throws -> Double {
            _ = try c.run(p)
            var best = Double.infinity
            for _ in 0..<5 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try c.run(p)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start))
            }
            return best
        }
        return try time(baseline) / time(provider)
    }
}

/// Failure messages collected from several threads.
private final class LockedStrings: @unchecked Sendable {
    // @unchecked: every access holds the lock.
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var first: String? { lock.lock(); defer { lock.unlock() }; return items.first }
}

/// One verification input: runs the operation on a kernel set and returns
/// its output with the scale errors are measured against.
struct VerificationCase: @unchecked Sendable {
    // @unchecked: run only reads the inputs it captured.
    let shape: String
    /// Multiply-adds (or elements), to pick the largest case.
    var size = 0
    let run: (any KernelSet) throws -> (values: [Float], scale: [Float])
}

/// The shapes speedup() times.
enum BenchmarkSize { case none, quick, full }

private struct Random {
    var state: UInt64
    mutating func normals(_ n: Int) -> [Float] {
        (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u1 = max(Double(state >> 11) / Double(1 << 53), 1e-12)
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u2 = Double(state >> 11) / Double(1 << 53)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
    }
}

extension Verifier {
    static func cases(for operation: String, benchmark: BenchmarkSize = .none) throws -> [VerificationCase] {
        var rng = Random(state: 0x5EED)
        let parts = operation.split(separator: ".").map(String.init)
        let kind = parts[0], detail = parts.count > 1 ? parts[1] : ""
        switch kind {
        case "matvec", "matmul", "embedding":
            guard let type = WeightType(rawValue: detail) else { throw KernelError.unsupported(operation: operation, detail: "unknown weight type") }
            // (rows, cols, tokens): odd and round, up to a few thousand rows; block types need cols % 32 == 0
            let cols = type.block == 32 ? [32, 96, 256, 544, 1056, 160] : [7, 33, 256, 530, 1031, 77]
            let tokens = kind == "matmul" ? [1, 3, 7, 16, 5, 2] : [1, 1, 1, 1, 1, 1]
            var shapes = zip(zip([1, 17, 64, 33, 2053, 3001], cols), tokens).map { ($0.0, $0.1, $1) }
            switch benchmark {
            case .full: shapes = [(4096, 4096, kind == "matmul" ? 64 : 1)]
            case .quick: shapes = [(1024, 1024, kind == "matmul" ? 16 : 1)]
            case .none: break
            }
            return try shapes.flatMap { rows, k, m -> [VerificationCase] in
                let w = try WeightMatrix.quantize(rng.normals(rows * k), rows: rows, cols: k, as: type, group: type == .q4Group ? 32 : 0)
                if kind == "embedding" {
                    let ids = (0..<5).map { Int32(($0 * 7) % rows) }
                    return [VerificationCase(shape: "\(rows)x\(k) table", size: 5 * k) { kernels in
                        var out = [Float](repeating: .nan, count: ids.count * k)
                        try kernels.embedding(w, ids: ids, into: &out)
                        return (out, out.map { _ in 1 })
                    }]
                }
                let dense = try Kernels(isa: .scalar).dequantize(w)
                let x = rng.normals(m * k), bias = rng.normals(rows)
                // per output, sum |w x| + |b|: the scale of a dot product's rounding error
                let dot = (0..<m * rows).map { i -> Float in
                    let (t, n) = (i / rows, i % rows)
                    return (0..<k).reduce(Float(0)) { $0 + abs(dense[n * k + $1] * x[t * k + $1]) }
                }
                return [bias, nil].map { b -> VerificationCase in
                    let scale = b.map { b in dot.indices.map { dot[$0] + abs(b[$0 % rows]) } } ?? dot
                    return VerificationCase(shape: "\(m) token(s), \(rows)x\(k), \(b == nil ? "no bias" : "bias")", size: m * rows * k) { kernels in
                        var y = [Float](repeating: .nan, count: m * rows)
                        if kind == "matvec" { try kernels.matvec(w, x, bias: b, into: &y) } else { try kernels.matmul(w, x, tokens: m, bias: b, into: &y) }
                        return (y, scale)
                    }
                }
            }
        case "attention":
            return [(5, 5, 2, 16, 0, 3), (1, 70, 3, 32, 69, 40)].map { q, kv, heads, d, first, bidir in
                let shape = AttentionShape(queries: q, keys: kv, heads: heads, headDim: d, firstQueryPosition: first, bidirectionalLength: bidir)
                let (qs, ks, vs) = (rng.normals(q * heads * d), rng.normals(kv * heads * d), rng.normals(kv * heads * d))
                return VerificationCase(shape: "\(q) queries over \(kv) keys, \(heads)x\(d)") { kernels in
                    var out = [Float](repeating: .nan, count: q * heads * d)
                    try kernels.attention(q: qs, k: ks, v: vs, shape: shape, into: &out)
                    return (out, out)
                }
            }
        case "residual_layernorm":
            let (rows, n) = (3, 100)
            let x = rng.normals(rows * n), y = rng.normals(rows * n), g = rng.normals(n), b = rng.normals(n)
            return [VerificationCase(shape: "\(rows)x\(n)") { kernels in
                var out = [Float](repeating: .nan, count: rows * n)
                try kernels.residualLayerNorm(x: x, alpha: 2, y: y, gamma: g, beta: b, rows: rows, eps: 1e-5, into: &out)
                return (out, out)
            }]
        case "residual_rmsnorm":
            let (rows, n) = (3, 100)
            let x = rng.normals(rows * n), y = rng.normals(rows * n), g = rng.normals(n)
            return [VerificationCase(shape: "\(rows)x\(n)") { kernels in
                var (sum, out) = (x, [Float](repeating: .nan, count: rows * n))
                try kernels.residualRMSNorm(residual: &sum, adding: y, gamma: g, rows: rows, eps: 1e-5, into: &out)
                return (sum + out, sum + out)
            }]
        case "bias_geglu":
            let (rows, inner) = (3, 37)
            let u = rng.normals(rows * 2 * inner), b = rng.normals(2 * inner)
            return [VerificationCase(shape: "\(rows)x\(inner)") { kernels in
                var out = [Float](repeating: .nan, count: rows * inner)
                try kernels.biasGeGLU(u, bias: b, rows: rows, inner: inner, into: &out)
                return (out, out)
            }]
        case "bias_gelu":
            let form: GeLUForm = detail == "tanh" ? .tanh : .erf
            let x = rng.normals(3 * 41), b = rng.normals(41)
            return [VerificationCase(shape: "3x41") { kernels in
                var out = [Float](repeating: .nan, count: x.count)
                try kernels.biasGeLU(x, bias: b, rows: 3, form: form, into: &out)
                return (out, out)
            }]
        case "rope":
            let form: RoPEShape.Form = RoPEShape.Form.allCases.first { OperationName.rope($0) == operation } ?? .oneD
            let shape = RoPEShape(tokens: 4, heads: 3, headDim: 16, form: form, rotaryDim: form == .interleaved ? 10 : nil)
            let x = rng.normals(4 * 3 * 16)
            let inv = try Kernels.ropeInverseFrequencies(rotaryDim: shape.rotaryDim, roundedToHalf: form != .interleaved)
            return [VerificationCase(shape: "4 tokens, 3x16") { kernels in
                var out = x
                try kernels.rope(&out, offset: 0, shape: shape, positions: [0, 1, 5, 9], blockPositions: [0, 0, 1, 2], inverseFrequencies: inv)
                return (out, out)
            }]
        case "eltwise":
            let (rows, n) = (3, 37)
            let a = rng.normals(rows * 2 * n), b = rng.normals(rows * n)
            let steps: [ElementwiseStep] = [.addRow, .scaleAdd(1.7), .mul, .gelu(.erf), .gelu(.tanh), .silu, .siluMul]
            return steps.map { step in
                VerificationCase(shape: "\(step), \(rows)x\(n) strided") { kernels in
                    var out = [Float](repeating: .nan, count: rows * n)
                    try kernels.eltwise(step, rows: rows, n: n, out: &out, outView: RowsView(stride: n), a: a,
                                        aView: RowsView(offset: n, stride: 2 * n), b: b, bView: RowsView(stride: n))
                    return (out, out)
                }
            }
        default:
            throw KernelError.unsupported(operation: operation, detail: "no verification for this operation")
        }
    }
}
