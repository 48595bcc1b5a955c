// GGUFFile.swift — reads a GGUF model file (ggml docs/gguf.md, versions 2 and
// 3): header, typed metadata, tensor table, aligned data. The file is
// memory-mapped; tensors are handed out as views into the mapping, never
// copied. Every count, length and offset is checked against the file size
// before use, so a truncated or corrupt file fails with a ModelFileError.

import KernelBridge

public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml order: dims[0] is the innermost (columns).
    public let dims: [Int]
    public let type: GGUFTensorType
    /// Offset from the start of the data section.
    public let offset: Int
    public let byteCount: Int

    /// Row-major shape, outermost first (rows, cols) — the reverse of dims.
    public var shape: [Int] { dims.reversed() }
}

public final class GGUFFile: @unchecked Sendable {
    // @unchecked: immutable after init; the mapping is read-only.
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let keys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    private let file: MappedFile
    private let index: [String: Int]

    /// Limits that keep a corrupt count from allocating the world.
    static let maxStringBytes = 1 << 30
    static let maxDims = 4
    /// Array elements the whole metadata may hold: each becomes a boxed value in
    /// memory, so a file of small elements could otherwise grow forty-fold.
    /// The largest real tokenizer (150528 pieces x 3 arrays, a 300 KB character map) is well below.
    static let maxArrayElements = 1 << 22

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var reader = Reader(file: file, name: file.path.lastPathComponentForErrors)
        let magic = try reader.u32("magic")
        guard magic == 0x4655_4747 else {
            let bytes = withUnsafeBytes(of: magic.littleEndian) { Array($0) }
            throw ModelFileError.notGGUF(file: reader.name, magic: bytes.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "." }.joined())
        }
        version = try reader.u32("version")
        guard version == 2 || version == 3 else { throw ModelFileError.unsupportedVersion(file: reader.name, version: version) }
        let tensorCount = try reader.count("tensor count", minimumBytesEach: 24)
        let kvCount = try reader.count("metadata count", minimumBytesEach: 12)

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for _ in 0..<kvCount {
            let key = try reader.string("metadata key")
            let type = try reader.valueType("value type of '\(key)'")
            let value = try reader.value(type, "value of '\(key)'")
            guard metadata[key] == nil else { throw ModelFileError.malformed(file: reader.name, what: "duplicate key '\(key)'") }
            metadata[key] = value
            keys.append(key)
        }
        self.metadata = metadata
        self.keys = keys

        let alignment = metadata["general.alignment"]?.intValue ?? 32
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= 1 << 16 else {
            throw ModelFileError.malformed(file: reader.name, what: "general.alignment \(alignment) is not a power of two")
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let name = try reader.string("tensor name")
            let nDims = Int(try reader.u32("dimension count of '\(name)'"))
            guard (1...GGUFFile.maxDims).contains(nDims) else {
                throw ModelFileError.malformed(file: reader.name, what: "tensor '\(name)' has \(nDims) dimensions")
            }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try reader.u64("dimensions of '\(name)'")
                guard d > 0, d < 1 << 40 else { throw ModelFileError.malformed(file: reader.name, what: "tensor '\(name)' has dimension \(d)") }
                dims.append(Int(d))
            }
            let rawType = try reader.u32("type of '\(name)'")
            guard let type = GGUFTensorType(rawValue: rawType) else {
                throw ModelFileError.tensorType(file: reader.name, tensor: name, type: "ggml type \(rawType)")
            }
            let offset = try reader.u64("offset of '\(name)'")
            guard offset < 1 << 48, Int(offset) % alignment == 0 else {
                throw ModelFileError.malformed(file: reader.name, what: "tensor '\(name)' offset \(offset) is not aligned to \(alignment)")
            }
            guard let rowBytes = type.weightType.rowBytes(cols: dims[0]) else {
                throw ModelFileError.malformed(file: reader.name, what: "tensor '\(name)' of \(type.name) cannot have \(dims[0]) columns")
            }
            guard let byteCount = CheckedSize.product(Array(dims.dropFirst()) + [rowBytes]) else {
                throw ModelFileError.malformed(file: reader.name, what: "tensor '\(name)' of shape \(dims.reversed()) has more bytes than a file can hold")
            }
            guard index[name] == nil else { throw ModelFileError.malformed(file: reader.name, what: "duplicate tensor '\(name)'") }
            index[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(offset), byteCount: byteCount))
        }
        tensors = infos
        self.index = index
        dataOffset = (reader.offset + alignment - 1) / alignment * alignment
        for info in infos {
            let available = file.count - dataOffset
            guard available >= 0, info.offset <= available, info.byteCount <= available - info.offset else {
                throw ModelFileError.tensorOutsideFile(file: reader.name, tensor: info.name)
            }
        }
    }

    /// FNV-1a (64-bit) of the header — metadata and tensor table, everything before the
    /// tensor data — and of the file's size: ranks of a pipeline compare it to be sure
    /// that they opened the same model without reading its gigabytes of weights.
    public var headerChecksum: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        for byte in file.bytes(at: 0, count: min(dataOffset, file.count)) ?? [] { mix(byte) }
        withUnsafeBytes(of: UInt64(file.count).littleEndian) { $0.forEach(mix) }
        return hash
    }

    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// The tensor's bytes, a view into the mapping.
    public func storage(_ info: GGUFTensorInfo) throws -> ByteStorage {
        guard let storage = file.storage(at: dataOffset + info.offset, count: info.byteCount) else {
            throw ModelFileError.tensorOutsideFile(file: path, tensor: info.name)
        }
        return storage
    }

    /// A 2D tensor as a weight matrix (rows, cols), without copying.
    public func matrix(_ name: String) throws -> WeightMatrix {
        guard let info = tensorInfo(name) else { throw ModelFileError.missingTensor(file: path, tensor: name) }
        let shape = info.shape
        let rows = shape.count == 1 ? 1 : shape.dropLast().reduce(1, *)
        return try WeightMatrix(type: info.type.weightType, rows: rows, cols: info.dims[0], data: storage(info))
    }

    /// A tensor's values as FP32 (a copy; for small tensors such as biases and norms).
    public func floats(_ name: String) throws -> [Float] {
        let w = try matrix(name)
        return try Kernels(isa: .scalar).dequantize(w)
    }
}

// MARK: - Bounds-checked cursor

private struct Reader {
    let file: MappedFile
    let name: String
    var offset = 0
    var arrayElements = 0

    mutating func u32(_ what: String) throws -> UInt32 { try fixed(UInt32.self, what) }
    mutating func u64(_ what: String) throws -> UInt64 { try fixed(UInt64.self, what) }

    mutating func fixed<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        guard let v = file.load(T.self, at: offset) else { throw ModelFileError.truncated(file: name, what: what) }
        offset += MemoryLayout<T>.size
        return v
    }

    /// A count whose items take at least `minimumBytesEach`: larger than the rest of the file means corrupt.
    mutating func count(_ what: String, minimumBytesEach: Int) throws -> Int {
        let n = try u64(what)
        guard n <= UInt64(max(0, file.count - offset) / minimumBytesEach) else {
            throw ModelFileError.malformed(file: name, what: "\(what) \(n) is larger than the file can hold")
        }
        return Int(n)
    }

    mutating func string(_ what: String) throws -> String {
        let length = try u64("length of \(what)")
        guard length <= UInt64(GGUFFile.maxStringBytes), let bytes = file.bytes(at: offset, count: Int(length)) else {
            throw ModelFileError.truncated(file: name, what: what)
        }
        offset += Int(length)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw ModelFileError.malformed(file: name, what: "\(what) is not valid UTF-8")
        }
        return s
    }

    mutating func valueType(_ what: String) throws -> GGUFValueType {
        let raw = try u32(what)
        guard let type = GGUFValueType(rawValue: raw) else { throw ModelFileError.malformed(file: name, what: "\(what): unknown type \(raw)") }
        return type
    }

    mutating func value(_ type: GGUFValueType, _ what: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try fixed(UInt8.self, what))
        case .int8: return .int8(try fixed(Int8.self, what))
        case .uint16: return .uint16(try fixed(UInt16.self, what))
        case .int16: return .int16(try fixed(Int16.self, what))
        case .uint32: return .uint32(try fixed(UInt32.self, what))
        case .int32: return .int32(try fixed(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try fixed(UInt32.self, what)))
        case .bool:
            let b = try fixed(UInt8.self, what)
            guard b <= 1 else { throw ModelFileError.malformed(file: name, what: "\(what): bool byte \(b)") }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .uint64: return .uint64(try fixed(UInt64.self, what))
        case .int64: return .int64(try fixed(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try fixed(UInt64.self, what)))
        case .array:
            guard depth < 4 else { throw ModelFileError.malformed(file: name, what: "\(what): arrays nested too deep") }
            let elementType = try valueType("element type of \(what)")
            let n = try count("length of \(what)", minimumBytesEach: elementType.fixedSize ?? 8)
            arrayElements += n
            guard arrayElements <= GGUFFile.maxArrayElements else {
                throw ModelFileError.malformed(file: name, what: "\(what): metadata arrays hold more than \(GGUFFile.maxArrayElements) elements")
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(n)
            for _ in 0..<n { values.append(try value(elementType, what, depth: depth + 1)) }
            return .array(elementType, values)
        }
    }
}

extension String {
    /// The file name of a path, for error messages.
    var lastPathComponentForErrors: String { split(separator: "/").last.map(String.init) ?? self }
}
