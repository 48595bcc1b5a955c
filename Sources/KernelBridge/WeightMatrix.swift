// WeightMatrix.swift — a weight matrix W (rows = output features, cols = input
// features) in one of the WeightType layouts, validated once at construction so
// that every kernel call after it can trust the descriptor.

internal import CKernels

public struct WeightMatrix: Sendable {
    public let type: WeightType
    public let rows: Int
    public let cols: Int
    /// Weights per scale: `cols` for q4_row, 32/64/128 for q4_group, 0 otherwise.
    public let group: Int
    public let data: ByteStorage
    /// fp16 scales (Q4 types): (rows, type.scalesPerRow), empty otherwise.
    public let scales: [UInt16]

    public var rowBytes: Int { type.rowBytes(cols: cols) ?? 0 }
    /// Bytes a product streams: packed values plus scales.
    public var byteCount: Int { rows * rowBytes + 2 * scales.count }

    /// Wraps already-encoded data, checking every size against the type.
    public init(type: WeightType, rows: Int, cols: Int, group: Int = 0, data: ByteStorage, scales: [UInt16] = []) throws {
        let op = "weights(\(type.rawValue), \(rows)x\(cols))"
        guard rows > 0, cols > 0 else {
            throw KernelError.invalidArgument(operation: op, detail: "rows and cols must be positive")
        }
        guard let rowBytes = type.rowBytes(cols: cols) else {
            throw KernelError.unsupported(operation: op, detail: "cols must be a multiple of \(type.block)")
        }
        let group = try WeightMatrix.normalisedGroup(type, cols: cols, group: group, op)
        try KernelError.require(data.count, atLeast: rows * rowBytes, op, "data bytes")
        try KernelError.require(scales.count, exactly: rows * type.scalesPerRow(cols: cols, group: group), op, "scales")
        self.type = type
        self.rows = rows
        self.cols = cols
        self.group = group
        self.data = data
        self.scales = scales
    }

    /// Quantizes FP32 `values` (rows, cols) with the C quantizers (GLM-130B rules for
    /// the INT4 types, GGUF's for Q8_0 and Q4_0). `group` is for q4_group (32, 64, 128).
    public static func quantize(_ values: [Float], rows: Int, cols: Int, as type: WeightType, group: Int = 0) throws -> WeightMatrix {
        let op = "quantize(\(type.rawValue), \(rows)x\(cols))"
        guard rows > 0, cols > 0 else { throw KernelError.invalidArgument(operation: op, detail: "rows and cols must be positive") }
        try KernelError.require(values.count, exactly: rows * cols, op, "values")
        guard let rowBytes = type.rowBytes(cols: cols) else {
            throw KernelError.unsupported(operation: op, detail: "cols must be a multiple of \(type.block)")
        }
        let group = try normalisedGroup(type, cols: cols, group: group, op)
        var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
        var scales = [UInt16](repeating: 0, count: rows * type.scalesPerRow(cols: cols, group: group))
        var descriptor = glmk_matrix(type: type.cValue, rows: Int64(rows), cols: Int64(cols), group: Int64(group),
                                     data: nil, row_bytes: Int64(rowBytes), scales: nil)
        let status = bytes.withUnsafeMutableBytes { data in
            scales.withUnsafeMutableBufferPointer { scalePtr in
                values.withUnsafeBufferPointer { src in
                    descriptor.data = UnsafeRawPointer(data.baseAddress)
                    return glmk_quantize(&descriptor, data.baseAddress, scalePtr.baseAddress, src.baseAddress)
                }
            }
        }
        try KernelError.check(status, op, "quantizer rejected the shape")
        return try WeightMatrix(type: type, rows: rows, cols: cols, group: group, data: ByteStorage(copying: bytes), scales: scales)
    }

    private static func normalisedGroup(_ type: WeightType, cols: Int, group: Int, _ op: String) throws -> Int {
        switch type {
        case .q4Row: return cols
        case .q4Group:
            guard [32, 64, 128].contains(group) else {
                throw KernelError.unsupported(operation: op, detail: "group must be 32, 64 or 128, got \(group)")
            }
            return group
        default: return 0
        }
    }

    /// Calls `body` with the C descriptor; the pointers inside are valid only during the call.
    func withDescriptor<R>(_ body: (UnsafePointer<glmk_matrix>) throws -> R) rethrows -> R {
        try scales.withUnsafeBufferPointer { scalePtr in
            var descriptor = glmk_matrix(type: type.cValue, rows: Int64(rows), cols: Int64(cols), group: Int64(group),
                                         data: data.base, row_bytes: Int64(rowBytes), scales: scalePtr.baseAddress)
            return try withUnsafePointer(to: &descriptor) { try body($0) }
        }
    }
}

// MARK: - INT4 packing

public enum Int4Packing {
    /// Two values per byte, the even element in the high nibble (GLM-130B's
    /// `compress_int4_weight` layout). Values must lie in [-8, 7].
    public static func pack(_ values: [Int8]) throws -> [UInt8] {
        guard values.allSatisfy({ (-8...7).contains($0) }) else {
            throw KernelError.invalidArgument(operation: "pack_int4", detail: "values must lie in [-8, 7]")
        }
        var out = [UInt8](repeating: 0, count: (values.count + 1) / 2)
        guard !values.isEmpty else { return out }
        let status = out.withUnsafeMutableBufferPointer { dst in
            values.withUnsafeBufferPointer { glmk_pack_int4(dst.baseAddress, $0.baseAddress, Int64(values.count)) }
        }
        try KernelError.check(status, "pack_int4", "\(values.count) values")
        return out
    }

    /// The inverse of `pack`, sign-extending each nibble.
    public static func unpack(_ bytes: [UInt8], count: Int) throws -> [Int8] {
        try KernelError.require(bytes.count, atLeast: (count + 1) / 2, "unpack_int4", "bytes")
        var out = [Int8](repeating: 0, count: count)
        guard count > 0 else { return out }
        let status = out.withUnsafeMutableBufferPointer { dst in
            bytes.withUnsafeBufferPointer { glmk_unpack_int4(dst.baseAddress, $0.baseAddress, Int64(count)) }
        }
        try KernelError.check(status, "unpack_int4", "\(count) values")
        return out
    }
}

// MARK: - fp16

public enum Float16Bits {
    /// IEEE half bits of `value`, rounded to nearest even (portable; no F16C needed).
    public static func from(_ value: Float) -> UInt16 { glmk_fp32_to_fp16(value) }
    public static func toFloat(_ bits: UInt16) -> Float { glmk_fp16_to_fp32(bits) }
}

// MARK: - Raw access for the plugin loader

/// A weight matrix's raw parts, valid only inside `withRawParts`: for handing
/// weights to C plugins (glm_plugin.h's glm_plugin_matrix has this layout).
public struct RawMatrixParts {
    public let type: Int32
    public let rows: Int64, cols: Int64, group: Int64
    public let data: UnsafeRawPointer
    public let rowBytes: Int64
    public let scales: UnsafePointer<UInt16>?
}

extension WeightMatrix {
    public func withRawParts<R>(_ body: (RawMatrixParts) throws -> R) rethrows -> R {
        try withDescriptor { d in
            try body(RawMatrixParts(type: Int32(d.pointee.type.rawValue), rows: d.pointee.rows, cols: d.pointee.cols,
                                    group: d.pointee.group, data: d.pointee.data, rowBytes: d.pointee.row_bytes, scales: d.pointee.scales))
        }
    }
}
