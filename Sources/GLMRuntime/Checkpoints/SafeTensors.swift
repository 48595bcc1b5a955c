// SafeTensors.swift — a reader for the safetensors format (8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the raw data). Every offset and size is checked against the file
// before anything is read. Used by the converter and by the golden tests.

import Foundation

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case malformedHeader(file: String, reason: String)
    case missingTensor(file: String, name: String)
    case badTensor(file: String, name: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .malformedHeader(file, reason): return "\(file): malformed safetensors header: \(reason)"
        case let .missingTensor(file, name): return "\(file): no tensor named '\(name)'"
        case let .badTensor(file, name, reason): return "\(file): tensor '\(name)': \(reason)"
        }
    }
}

public struct SafeTensorsFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only
    public struct Entry: Sendable, Equatable {
        public let dtype: String
        public let shape: [Int]
        let begin: Int
        let end: Int
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let entries: [String: Entry]
    private let file: MappedFile
    private let dataStart: Int

    /// The tensor names in the file, sorted.
    public var names: [String] { entries.keys.sorted() }

    public init(path: String) throws {
        self.path = path
        let file = (path as NSString).lastPathComponent
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch {
            throw SafeTensorsError.unreadable(file: file, reason: "\(error)")
        }
        self.file = mapped
        guard let headerLength = mapped.load(UInt64.self, at: 0) else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "file shorter than 8 bytes")
        }
        guard headerLength <= UInt64(mapped.count - 8) else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "header length \(headerLength) exceeds the file")
        }
        dataStart = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(mapped.bytes(at: 8, count: Int(headerLength)) ?? []))
        } catch {
            throw SafeTensorsError.malformedHeader(file: file, reason: "header is not JSON")
        }
        guard let header = json as? [String: Any] else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "header is not a JSON object")
        }
        let available = mapped.count - dataStart
        var entries: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw SafeTensorsError.badTensor(file: file, name: name, reason: "needs dtype, shape and data_offsets") }
            guard let size = SafeTensorsFile.elementSize(dtype) else {
                throw SafeTensorsError.badTensor(file: file, name: name, reason: "unknown dtype \(dtype)")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= available else {
                throw SafeTensorsError.badTensor(file: file, name: name, reason: "byte range \(offsets) outside the \(available)-byte data section")
            }
            guard let bytes = CheckedSize.product(shape + [size]), bytes == offsets[1] - offsets[0] else {
                throw SafeTensorsError.badTensor(file: file, name: name, reason: "shape \(shape) of \(dtype) does not match \(offsets[1] - offsets[0]) bytes")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        self.entries = entries
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": return 8
        case "F32", "I32", "U32": return 4
        case "F16", "BF16", "I16", "U16": return 2
        case "I8", "U8", "BOOL": return 1
        default: return nil
        }
    }

    public func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else {
            throw SafeTensorsError.missingTensor(file: (path as NSString).lastPathComponent, name: name)
        }
        return entry
    }

    /// The raw bytes of a tensor (a copy; the mapped pages are released after it).
    public func bytes(_ name: String) throws -> Data {
        let e = try entry(name)
        defer { file.release(offset: dataStart + e.begin, count: e.end - e.begin) }
        return Data(file.bytes(at: dataStart + e.begin, count: e.end - e.begin) ?? [])
    }

    /// A tensor as FP32, converting F16, BF16, F64 and the integer types.
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name)
        let raw = try bytes(name)
        return try raw.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> [Float] in
            let n = e.elementCount
            switch e.dtype {
            case "F32": return (0..<n).map { buffer.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            case "F64": return (0..<n).map { Float(buffer.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
            case "F16": return (0..<n).map { halfToFloat(buffer.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
            case "BF16": return (0..<n).map { Float(bitPattern: UInt32(buffer.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
            case "I8": return (0..<n).map { Float(buffer.load(fromByteOffset: $0, as: Int8.self)) }
            case "U8": return (0..<n).map { Float(buffer.load(fromByteOffset: $0, as: UInt8.self)) }
            case "I32": return (0..<n).map { Float(buffer.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case "I64": return (0..<n).map { Float(buffer.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            default:
                throw SafeTensorsError.badTensor(file: (path as NSString).lastPathComponent, name: name, reason: "cannot convert \(e.dtype) to float")
            }
        }
    }

    /// An I8 tensor's values.
    public func int8s(_ name: String) throws -> [Int8] {
        let e = try entry(name)
        guard e.dtype == "I8" else {
            throw SafeTensorsError.badTensor(file: (path as NSString).lastPathComponent, name: name, reason: "dtype \(e.dtype), expected I8")
        }
        return try bytes(name).map { Int8(bitPattern: $0) }
    }
}

/// IEEE half to single, for reading F16 tensors without depending on the kernels.
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        let value = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -value : value
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
    return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
}
