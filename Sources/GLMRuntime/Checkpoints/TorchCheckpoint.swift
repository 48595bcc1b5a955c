// TorchCheckpoint.swift — one torch.save file (a ZIP holding data.pkl and one
// entry per tensor storage): its state dict's tensors by name, read as FP32.
// The state dict is the top-level dict, or its 'module' (SAT) or 'state_dict' entry.

public final class TorchCheckpoint {
    public let path: String
    let archive: ZipArchive
    private let prefix: String
    public let tensors: [String: TensorRef]
    /// Names in the file's own order.
    public let names: [String]

    public init(path: String) throws {
        self.path = path
        let name = path.lastPathComponentForErrors
        archive = try ZipArchive(path: path)
        let pickle = try archive.entry(endingWith: "data.pkl")
        prefix = String(pickle.name.dropLast("data.pkl".count))
        if let order = archive.entries[prefix + "byteorder"], try archive.bytes(order) != Array("little".utf8) {
            throw CheckpointError.corruptZip(file: name, reason: "big-endian storages are not supported")
        }
        var unpickler = Unpickler(bytes: try archive.bytes(pickle), file: name)
        let objects = try unpickler.load()
        var top = objects.root
        for key in ["module", "state_dict"] {
            if let inner = objects.dict(top)?.first(where: { $0.0.string == key })?.1, objects.dict(inner) != nil { top = inner }
        }
        guard let stateDict = objects.dict(top) else { throw CheckpointError.corruptPickle(file: name, reason: "the top-level object is not a dict") }
        var tensors: [String: TensorRef] = [:], names: [String] = []
        for (key, value) in stateDict {
            guard let k = key.string else { continue }
            if case let .tensor(t) = value {
                tensors[k] = t
                names.append(k)
            }
        }
        self.tensors = tensors
        self.names = names
    }

    public func shape(_ name: String) throws -> [Int] {
        guard let t = tensors[name] else { throw ModelFileError.missingTensor(file: path.lastPathComponentForErrors, tensor: name) }
        return t.shape
    }

    /// The tensor's values as FP32 in row-major order (any strides).
    public func floats(_ name: String) throws -> [Float] {
        let file = path.lastPathComponentForErrors
        guard let t = tensors[name] else { throw ModelFileError.missingTensor(file: file, tensor: name) }
        guard let size = TorchCheckpoint.elementSize(t.storage.dtype) else {
            throw CheckpointError.unsupportedPickle(file: file, found: "a \(t.storage.dtype) tensor ('\(name)')")
        }
        let entry = try archive.entry(endingWith: "data/" + t.storage.key)
        guard let storageBytes = CheckedSize.multiply(t.storage.count, size), entry.size >= storageBytes else {
            throw CheckpointError.corruptZip(file: file, reason: "storage of '\(name)' holds \(entry.size) bytes, \(t.storage.count) x \(size) expected")
        }
        guard let count = CheckedSize.product(t.shape), count <= t.storage.count else {
            throw CheckpointError.corruptZip(file: file, reason: "tensor '\(name)' of shape \(t.shape) has more elements than its storage (\(t.storage.count))")
        }
        // the largest element index the view reaches must lie inside the storage
        var last: Int? = t.offset
        for (extent, stride) in zip(t.shape, t.stride) where extent > 0 {
            last = last.flatMap { l in CheckedSize.multiply(extent - 1, stride).flatMap { CheckedSize.add(l, $0) } }
        }
        guard count == 0 || (last.map { $0 < t.storage.count } == true && t.stride.allSatisfy { $0 >= 0 }) else {
            throw CheckpointError.corruptZip(file: file, reason: "tensor '\(name)' reaches outside its storage")
        }
        let raw = try archive.bytes(entry, offset: 0, count: storageBytes)
        defer { archive.release(entry) }
        var out = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: t.shape.count)
        for i in 0..<count {
            let element = t.offset + zip(index, t.stride).reduce(0) { $0 + $1.0 * $1.1 }
            out[i] = TorchCheckpoint.decode(raw, element * size, t.storage.dtype)
            var d = t.shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < t.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "HalfStorage", "BFloat16Storage": return 2
        case "FloatStorage": return 4
        case "DoubleStorage": return 8
        case "CharStorage", "ByteStorage": return 1
        default: return nil
        }
    }

    private static func decode(_ b: [UInt8], _ o: Int, _ dtype: String) -> Float {
        switch dtype {
        case "HalfStorage": return halfToFloat(UInt16(b[o]) | UInt16(b[o + 1]) << 8)
        case "BFloat16Storage": return Float(bitPattern: (UInt32(b[o]) | UInt32(b[o + 1]) << 8) << 16)
        case "FloatStorage": return Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) })
        case "DoubleStorage": return Float(Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) }))
        case "CharStorage": return Float(Int8(bitPattern: b[o]))
        default: return Float(b[o])
        }
    }
}
