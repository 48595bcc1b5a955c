// GGUFWriter.swift — writes a GGUF v3 file: metadata in insertion order, the
// tensor table, then each tensor's bytes at offsets aligned to
// `general.alignment` (32 unless set). Two ways to use it: hold every
// tensor's bytes and write at once (`bytes()`, `write(to:)`), or declare the
// tensors up front and stream their bytes one at a time (`stream(to:)`), so
// converting a checkpoint larger than memory holds one tensor at a time.

import Foundation

public struct GGUFWriter {
    struct Tensor { let name: String; let dims: [Int]; let type: GGUFTensorType; let byteCount: Int; var data: [UInt8]? }

    private var metadata: [(String, GGUFValue)] = []
    private var tensors: [Tensor] = []
    public var alignment = 32

    public init() {}

    /// A writer holding everything `file` holds (to rewrite or modify a model file).
    public init(copying file: GGUFFile) throws {
        for key in file.keys where key != "general.alignment" { set(key, file.metadata[key]!) }
        alignment = file.alignment
        for info in file.tensors {
            tensors.append(Tensor(name: info.name, dims: info.dims, type: info.type, byteCount: info.byteCount, data: try file.storage(info).bytes))
        }
    }

    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { metadata.append((key, value)) }
    }

    public mutating func removeKey(_ key: String) { metadata.removeAll { $0.0 == key } }
    public mutating func removeTensor(_ name: String) { tensors.removeAll { $0.name == name } }

    /// Adds a tensor whose row-major `shape` is (outermost ... innermost) with its encoded bytes.
    public mutating func addTensor(_ name: String, shape: [Int], type: GGUFTensorType, data: [UInt8]) {
        tensors.append(Tensor(name: name, dims: shape.reversed(), type: type, byteCount: data.count, data: data))
    }

    /// Declares a tensor whose bytes will come through `stream(to:)`.
    public mutating func declareTensor(_ name: String, shape: [Int], type: GGUFTensorType, byteCount: Int) {
        tensors.append(Tensor(name: name, dims: shape.reversed(), type: type, byteCount: byteCount, data: nil))
    }

    /// The whole file in memory (every tensor must have its bytes).
    public func bytes() -> [UInt8] {
        var (out, offsets) = header()
        let start = out.count
        for (t, o) in zip(tensors, offsets) {
            out += [UInt8](repeating: 0, count: start + o - out.count)
            out += t.data ?? [UInt8](repeating: 0, count: t.byteCount)
        }
        out += [UInt8](repeating: 0, count: (alignment - out.count % alignment) % alignment)
        return out
    }

    public func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes())) else {
            throw ModelFileError.unreadable(file: path, reason: "cannot write the file")
        }
    }

    /// Writes the header and returns a stream that takes the declared tensors' bytes in order.
    public func stream(to path: String) throws -> GGUFStream {
        let (head, offsets) = header()
        guard FileManager.default.createFile(atPath: path, contents: Data(head)), let handle = FileHandle(forWritingAtPath: path) else {
            throw ModelFileError.unreadable(file: path, reason: "cannot write the file")
        }
        handle.seekToEndOfFile()
        return GGUFStream(handle: handle, path: path, dataStart: head.count, offsets: offsets,
                          sizes: tensors.map(\.byteCount), names: tensors.map(\.name), alignment: alignment)
    }

    /// Header and tensor table, padded to the data section; plus each tensor's offset in it.
    private func header() -> ([UInt8], [Int]) {
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
            offset = (offset + t.byteCount + alignment - 1) / alignment * alignment
        }
        out += [UInt8](repeating: 0, count: (alignment - out.count % alignment) % alignment)
        return (out, offsets)
    }
}

/// The data section of a GGUF file being written, one tensor at a time, in declaration order.
public final class GGUFStream {
    private let handle: FileHandle
    private let path: String
    private let dataStart: Int
    private let offsets: [Int], sizes: [Int], names: [String]
    private let alignment: Int
    private var next = 0
    private var written = 0

    init(handle: FileHandle, path: String, dataStart: Int, offsets: [Int], sizes: [Int], names: [String], alignment: Int) {
        (self.handle, self.path, self.dataStart, self.offsets, self.sizes, self.names, self.alignment) =
            (handle, path, dataStart, offsets, sizes, names, alignment)
    }

    /// Writes the next declared tensor's bytes.
    public func write(_ bytes: [UInt8]) throws {
        guard next < offsets.count else { throw ModelFileError.malformed(file: path, what: "more tensors written than declared") }
        guard bytes.count == sizes[next] else {
            throw ModelFileError.malformed(file: path, what: "tensor '\(names[next])' has \(bytes.count) bytes, \(sizes[next]) declared")
        }
        let padding = offsets[next] - written
        if padding > 0 { handle.write(Data(count: padding)) }
        handle.write(Data(bytes))
        written = offsets[next] + bytes.count
        next += 1
    }

    public func finish() throws {
        guard next == offsets.count else { throw ModelFileError.malformed(file: path, what: "\(offsets.count - next) declared tensors not written") }
        let end = (written + alignment - 1) / alignment * alignment
        if end > written { handle.write(Data(count: end - written)) }
        try handle.close()
    }
}
