// ThreadingTests.swift — results with one thread and with all threads, and the
// topology the thread policy is derived from.

import KernelBridge
import Testing

@Suite("Threads and topology", .serialized)
struct ThreadingTests {
    /// Every parallel kernel splits work by output rows (products), by
    /// (query, head) pairs (attention) or by rows (element-wise), and each
    /// output element is computed by one thread in a fixed order. So the thread
    /// count cannot change a single bit: the bound is exact equality.
    @Test("1 thread and all threads give identical results")
    func oneThreadAndAllThreads_agreeExactly() throws {
        let kernels = try Kernels()
        var rng = SeededGenerator(seed: 1234)
        let (rows, cols, m) = (300, 512, 9) // large enough to pass every kernel's parallel threshold
        let w = try WeightMatrix.quantize(rng.normals(rows * cols), rows: rows, cols: cols, as: .q4Row)
        let x = rng.normals(m * cols)
        let attention = AttentionShape(queries: 64, keys: 64, heads: 4, headDim: 64, firstQueryPosition: 0, bidirectionalLength: 30)
        let q = rng.normals(64 * 256), k = rng.normals(64 * 256), v = rng.normals(64 * 256)
        let u = rng.normals(64 * 2 * 1024)
        // decode over a long cache: the key-range walk, whose ranges must not follow the thread count
        let decode = AttentionShape(queries: 1, keys: 300, heads: 4, headDim: 64, firstQueryPosition: 299, bidirectionalLength: 0)
        let kd = rng.normals(300 * 256), vd = rng.normals(300 * 256)

        func runAll() throws -> [[Float]] {
            var y1 = [Float](repeating: 0, count: rows), ym = [Float](repeating: 0, count: m * rows)
            try kernels.matvec(w, Array(x[0..<cols]), into: &y1)
            try kernels.matmul(w, x, tokens: m, into: &ym)
            var a = [Float](repeating: 0, count: 64 * 256)
            try kernels.attention(q: q, k: k, v: v, shape: attention, into: &a)
            var ad = [Float](repeating: 0, count: 256)
            try kernels.attention(q: Array(q[0..<256]), k: kd, v: vd, shape: decode, into: &ad)
            var g = [Float](repeating: 0, count: 64 * 1024)
            try kernels.biasGeGLU(u, bias: nil, rows: 64, inner: 1024, into: &g)
            return [y1, ym, a, ad, g]
        }

        let all = Threads.defaultCount
        try Threads.configure(count: 1)
        #expect(Threads.current == 1)
        let single = try runAll()
        try Threads.configure(count: max(all, 2)) // at least 2, so a 1-core machine still runs two threads
        let parallel = try runAll()
        try Threads.configure()
        #expect(single == parallel)
    }

    @Test("topology reports cores, hardware threads and caches")
    func topology_reportsMachine() throws {
        let t = try Topology.query()
        #expect(t.cores >= 1)
        #expect(t.hardwareThreads >= t.cores)
        #expect(t.packages >= 1)
        #expect(t.l1dBytes > 0 && t.l2Bytes >= t.l1dBytes)
        #expect(t.memoryBytes > 0)
        #expect(Threads.configureRejectsZero())
    }

    @Test("the scalar reference is always available and the best set is supported")
    func instructionSets_bestIsSupported() {
        #expect(InstructionSet.scalar.isSupported)
        #expect(InstructionSet.best.isSupported)
        #expect(InstructionSet.supported.contains(.scalar))
    }
}

extension Threads {
    /// A thread count of zero is a caller's mistake and must throw.
    static func configureRejectsZero() -> Bool {
        (try? configure(count: 0)) == nil
    }
}
