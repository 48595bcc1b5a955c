// Pickle.swift — the subset of Python's pickle protocol (versions 2 to 4) that
// torch.save writes for a state dict, interpreted as data, never as code:
// containers, strings and numbers, the persistent ids of tensor storages, and
// calls to exactly two allowed callables (torch._utils._rebuild_tensor_v2 and
// collections.OrderedDict). Any other global or opcode stops the read with an
// error naming it: a malicious checkpoint can only fail.
//
// Containers live in flat arrays (PickleObjects) and values name them by
// index. Through the memo a pickle can nest objects a million deep or make
// them contain each other; as indices neither recurses when freed or leaks.

public struct StorageRef: Equatable, Sendable {
    public let dtype: String   // "HalfStorage", "FloatStorage", ...
    public let key: String     // the entry data/<key> in the archive
    public let count: Int      // elements
}

public struct TensorRef: Equatable, Sendable {
    public let storage: StorageRef
    public let offset: Int     // elements into the storage
    public let shape: [Int]
    public let stride: [Int]
}

public enum PickleValue: Sendable {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    /// Indices into PickleObjects' tuples, lists and dicts.
    case tuple(Int), list(Int), dict(Int)
    case global(String), storage(StorageRef), tensor(TensorRef)

    var int: Int? { if case let .int(v) = self { return v }; return nil }
    var string: String? { if case let .string(v) = self { return v }; return nil }
}

/// Every container a pickle built, and the value it returned.
public struct PickleObjects: Sendable {
    public internal(set) var tuples: [[PickleValue]] = []
    public internal(set) var lists: [[PickleValue]] = []
    public internal(set) var dicts: [[(PickleValue, PickleValue)]] = []
    public internal(set) var root: PickleValue = .none

    public func tuple(_ v: PickleValue) -> [PickleValue]? { if case let .tuple(i) = v { return tuples[i] }; return nil }
    public func dict(_ v: PickleValue) -> [(PickleValue, PickleValue)]? { if case let .dict(i) = v { return dicts[i] }; return nil }

    mutating func makeTuple(_ items: [PickleValue]) -> PickleValue { tuples.append(items); return .tuple(tuples.count - 1) }
}

struct Unpickler {
    static let allowedGlobals: Set<String> = [
        "torch._utils._rebuild_tensor_v2", "collections.OrderedDict",
        "torch.HalfStorage", "torch.FloatStorage", "torch.BFloat16Storage", "torch.CharStorage", "torch.ByteStorage",
        "torch.DoubleStorage",
    ]

    let bytes: [UInt8]
    let file: String
    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var objects = PickleObjects()

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    private func corrupt(_ reason: String) -> CheckpointError { .corruptPickle(file: file, reason: reason) }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else { throw corrupt("truncated at byte \(position)") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    private mutating func uint(_ n: Int) throws -> Int {
        try take(n).reversed().reduce(0) { $0 << 8 | Int($1) }
    }

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw corrupt("stack underflow at byte \(position)") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw corrupt("MARK missing at byte \(position)") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw corrupt("unterminated line") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    private func global(_ module: String, _ name: String) throws -> PickleValue {
        let qualified = "\(module).\(name)"
        guard Unpickler.allowedGlobals.contains(qualified) else {
            throw CheckpointError.unsupportedPickle(file: file, found: "the global \(qualified)")
        }
        return .global(qualified)
    }

    mutating func load() throws -> PickleObjects {
        while true {
            guard position < bytes.count else { throw corrupt("no STOP opcode") }
            let opcode = bytes[position]
            position += 1
            switch opcode {
            case 0x80: _ = try take(1)                                  // PROTO
            case 0x95: _ = try take(8)                                  // FRAME
            case 0x2E:                                                  // STOP
                objects.root = try pop()
                return objects
            case 0x7D: objects.dicts.append([]); stack.append(.dict(objects.dicts.count - 1))  // EMPTY_DICT
            case 0x5D: objects.lists.append([]); stack.append(.list(objects.lists.count - 1))  // EMPTY_LIST
            case 0x29: stack.append(objects.makeTuple([]))              // EMPTY_TUPLE
            case 0x28: marks.append(stack.count)                        // MARK
            case 0x71: memo[try uint(1)] = stack.last                   // BINPUT
            case 0x72: memo[try uint(4)] = stack.last                   // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                    // MEMOIZE
            case 0x68, 0x6A:                                            // BINGET, LONG_BINGET
                let key = try uint(opcode == 0x68 ? 1 : 4)
                guard let v = memo[key] else { throw corrupt("memo \(key) missing") }
                stack.append(v)
            case 0x58, 0x8C, 0x54, 0x55:                                // BINUNICODE, SHORT_BINUNICODE, BINSTRING, SHORT_BINSTRING
                let n = try uint(opcode == 0x58 || opcode == 0x54 ? 4 : 1)
                stack.append(.string(String(decoding: try take(n), as: UTF8.self)))
            case 0x42, 0x43:                                            // BINBYTES, SHORT_BINBYTES
                stack.append(.bytes(Array(try take(try uint(opcode == 0x42 ? 4 : 1)))))
            case 0x4B: stack.append(.int(try uint(1)))                  // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                  // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x8A:                                                  // LONG1
                let n = try uint(1)
                guard n <= 8 else { throw CheckpointError.unsupportedPickle(file: file, found: "an integer of \(n) bytes") }
                let raw = try take(n)
                var v = raw.reversed().reduce(0) { $0 << 8 | Int($1) }
                if n > 0, n < 8, raw.last! & 0x80 != 0 { v -= 1 << (8 * n) }
                stack.append(.int(v))
            case 0x47: stack.append(.float(Double(bitPattern: try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))) // BINFLOAT (big-endian)
            case 0x88: stack.append(.bool(true))                        // NEWTRUE
            case 0x89: stack.append(.bool(false))                       // NEWFALSE
            case 0x4E: stack.append(.none)                              // NONE
            case 0x74: let items = try popMark(); stack.append(objects.makeTuple(items))          // TUPLE
            case 0x85: let a = try pop(); stack.append(objects.makeTuple([a]))                     // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(objects.makeTuple([a, b]))   // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(objects.makeTuple([a, b, c])) // TUPLE3
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:                                                  // STACK_GLOBAL
                guard let name = try pop().string, let module = try pop().string else { throw corrupt("STACK_GLOBAL needs two strings") }
                stack.append(try global(module, name))
            case 0x51:                                                  // BINPERSID
                stack.append(try persistent(try pop()))
            case 0x52:                                                  // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args))
            case 0x62:                                                  // BUILD: state for the object below it
                _ = try pop()
                guard let target = stack.last else { throw corrupt("BUILD without an object") }
                // OrderedDict carries `_metadata`; nothing else may be built
                guard case .dict = target else { throw CheckpointError.unsupportedPickle(file: file, found: "BUILD of a non-dict object") }
            case 0x73:                                                  // SETITEM
                let value = try pop(), key = try pop()
                guard case let .dict(d)? = stack.last else { throw corrupt("SETITEM on a non-dict") }
                objects.dicts[d].append((key, value))
            case 0x75:                                                  // SETITEMS
                let items = try popMark()
                guard case let .dict(d)? = stack.last, items.count % 2 == 0 else { throw corrupt("SETITEMS on a non-dict") }
                for i in stride(from: 0, to: items.count, by: 2) { objects.dicts[d].append((items[i], items[i + 1])) }
            case 0x61:                                                  // APPEND
                let value = try pop()
                guard case let .list(l)? = stack.last else { throw corrupt("APPEND on a non-list") }
                objects.lists[l].append(value)
            case 0x65:                                                  // APPENDS
                let items = try popMark()
                guard case let .list(l)? = stack.last else { throw corrupt("APPENDS on a non-list") }
                objects.lists[l] += items
            default:
                throw CheckpointError.unsupportedPickle(file: file, found: String(format: "opcode 0x%02X at byte %d", opcode, position - 1))
            }
        }
    }

    /// ('storage', <Storage global>, key, location, numel)
    private func persistent(_ pid: PickleValue) throws -> PickleValue {
        guard let t = objects.tuple(pid), t.count == 5, t[0].string == "storage", case let .global(type) = t[1],
              let key = t[2].string, let count = t[4].int, count >= 0 else {
            throw CheckpointError.unsupportedPickle(file: file, found: "a persistent id that is not a tensor storage")
        }
        return .storage(StorageRef(dtype: String(type.dropFirst("torch.".count)), key: key, count: count))
    }

    private mutating func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case let .global(name) = callable, let a = objects.tuple(args) else {
            throw CheckpointError.unsupportedPickle(file: file, found: "a call to something that is not an allowed global")
        }
        switch name {
        case "collections.OrderedDict":
            objects.dicts.append([])
            return .dict(objects.dicts.count - 1)
        case "torch._utils._rebuild_tensor_v2":
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count >= 4, case let .storage(storage) = a[0], let offset = a[1].int,
                  let size = objects.tuple(a[2])?.compactMap(\.int), let stride = objects.tuple(a[3])?.compactMap(\.int),
                  size.count == objects.tuple(a[2])?.count, stride.count == size.count, offset >= 0, size.allSatisfy({ $0 >= 0 }) else {
                throw corrupt("bad _rebuild_tensor_v2 arguments")
            }
            return .tensor(TensorRef(storage: storage, offset: offset, shape: size, stride: stride))
        default:
            throw CheckpointError.unsupportedPickle(file: file, found: "a call to \(name)")
        }
    }
}
