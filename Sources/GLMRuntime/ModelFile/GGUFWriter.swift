// GGUFWriter.swift — writes a GGUF v3 file: metadata in insertion order, the
// tensor table, then each tensor's bytes at offsets aligned to
// `general.alignment` (32 unless set).

import Foundation

public struct GGUFWriter {
    private var metadata: [(String, GGUFValue)] = []
    private var tensors: [(name: String, dims: [Int], type: GGUFTensorType, data: [UInt8])] = []
    public var alignment = 32

    public init() {}

    /// A writer holding everything `file` holds (to rewrite or modify a model file).
    public init(copying file: GGUFFile) throws {
        for key in file.keys where key != "general.alignment" { set(key, file.metadata[key]!) }
        alignment = file.alignment
        for info in file.tensors {
            tensors.append((info.name, info.dims, info.type, try file.storage(info).bytes))
        }
    }

    public mutating func removeTensor(_ name: String) { tensors.removeAll { $0.name == name } }
    public mutating func removeKey(_ key: String) { metadata.removeAll { $0.0 == key } }

    /// Encodes the file in memory.
    public func bytes() -> [UInt8] { encode() }

    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { metadata.append((key, value)) }
    }

    /// Adds a tensor whose row-major `shape` is (outermost ... innermost) and whose
    /// bytes are already encoded in `type`.
    public mutating func addTensor(_ name: String, shape: [Int], type: GGUFTensorType, data: [UInt8]) {
        tensors.append((name, shape.reversed(), type, data))
    }

    public func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(encode())) else {
            throw ModelFileError.unreadable(file: path, reason: "cannot write the file")
        }
    }

    private func encode() -> [UInt8] {
        var out = [UInt8]()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        func value(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): out.append(x)
            case let .int8(x): out.append(UInt8(bitPattern: x))
            case let .uint16(x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case let .int16(x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case let .uint32(x): u32(x)
            case let .int32(x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case let .float32(x): u32(x.bitPattern)
            case let .bool(x): out.append(x ? 1 : 0)
            case let .string(x): string(x)
            case let .array(type, values):
                u32(type.rawValue)
                u64(UInt64(values.count))
                values.forEach(value)
            case let .uint64(x): u64(x)
            case let .int64(x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case let .float64(x): u64(x.bitPattern)
            }
        }
        var entries = metadata
        if alignment != 32, !entries.contains(where: { $0.0 == "general.alignment" }) {
            entries.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        u32(0x4655_4747) // "GGUF"
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(entries.count))
        for (key, v) in entries {
            string(key)
            u32(v.type.rawValue)
            value(v)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            string(t.name)
            u32(UInt32(t.dims.count))
            t.dims.forEach { u64(UInt64($0)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offsets.append(offset)
            offset = (offset + t.data.count + alignment - 1) / alignment * alignment
        }
        let pad = { (n: Int) in out += [UInt8](repeating: 0, count: (alignment - n % alignment) % alignment) }
        pad(out.count)
        let dataStart = out.count
        for (t, o) in zip(tensors, offsets) {
            out += [UInt8](repeating: 0, count: dataStart + o - out.count)
            out += t.data
        }
        pad(out.count)
        return out
    }
}
