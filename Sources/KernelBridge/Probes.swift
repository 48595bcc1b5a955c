// Probes.swift — safe wrappers over the bench's machine-limit loops and the
// random weight generator (bench_probes.c).

internal import CKernels

public enum Probes {
    /// Sums all of `buffer` once with the current thread count; returns the sum.
    public static func read(_ buffer: ProbeBuffer, isa: InstructionSet) -> Double {
        glmk_probe_read(buffer.floats, Int64(buffer.count), isa.cValue)
    }

    /// Runs FMA chains on every thread; returns the floating-point operations done.
    public static func fma(iterations: Int, isa: InstructionSet) -> Int {
        var flops: Int64 = 0
        _ = glmk_probe_fma(Int64(iterations), isa.cValue, &flops)
        return Int(flops)
    }

    /// Runs int16 dot chains (vpmaddwd) on every thread; returns 2 x the multiply-accumulates.
    public static func int16(iterations: Int, isa: InstructionSet) -> Int {
        var ops: Int64 = 0
        _ = glmk_probe_int16(Int64(iterations), isa.cValue, &ops)
        return Int(ops)
    }

    /// Runs int8 dot chains on every thread (vpdpbusd with AVX-512 VNNI, else maddubs + madd + add);
    /// returns 2 x the multiply-accumulates.
    public static func int8(iterations: Int, isa: InstructionSet) -> Int {
        var ops: Int64 = 0
        _ = glmk_probe_int8(Int64(iterations), isa.cValue, &ops)
        return Int(ops)
    }
}

/// A large, 64-byte aligned FP32 buffer for bandwidth probes and activations.
public final class ProbeBuffer: @unchecked Sendable {
    // @unchecked: written once at init, read-only afterwards.
    let floats: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        precondition(count > 0, "ProbeBuffer needs a positive size")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        floats = raw.bindMemory(to: Float.self, capacity: count)
        // touch every page so the probe measures reads, not page faults
        floats.initialize(repeating: 1e-3, count: count)
    }

    deinit { UnsafeMutableRawPointer(floats).deallocate() }

    public var bytes: Int { count * 4 }
}

extension WeightMatrix {
    /// A matrix of valid random values in `type`, generated in parallel in C
    /// (fast enough for multi-gigabyte benchmark matrices).
    public static func random(_ type: WeightType, rows: Int, cols: Int, group: Int = 0, seed: UInt64 = 1) throws -> WeightMatrix {
        let op = "random(\(type.rawValue), \(rows)x\(cols))"
        guard let rowBytes = type.rowBytes(cols: cols), rows > 0 else {
            throw KernelError.unsupported(operation: op, detail: "cols must be a multiple of \(type.block)")
        }
        let group = type == .q4Row ? cols : (type == .q4Group ? group : 0)
        var scales = [UInt16](repeating: 0, count: rows * type.scalesPerRow(cols: cols, group: group))
        let descriptor = glmk_matrix(type: type.cValue, rows: Int64(rows), cols: Int64(cols), group: Int64(group),
                                     data: nil, row_bytes: Int64(rowBytes), scales: nil)
        let storage = try ByteStorage(count: rows * rowBytes) { memory in
            let status = scales.withUnsafeMutableBufferPointer { sp in
                withUnsafePointer(to: descriptor) { glmk_fill_random_weights($0, memory, sp.baseAddress, seed) }
            }
            try KernelError.check(status, op, "bad shape or group")
        }
        return try WeightMatrix(type: type, rows: rows, cols: cols, group: group, data: storage, scales: scales)
    }
}
