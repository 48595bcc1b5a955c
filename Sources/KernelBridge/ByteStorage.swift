// ByteStorage.swift — read-only bytes that weights live in: either owned here
// (copied from an array) or borrowed from something that keeps them alive,
// such as a memory-mapped model file. Kernels read through it without copying.

public final class ByteStorage: @unchecked Sendable {
    // @unchecked: the bytes are never written after init, so sharing across threads is safe.
    let base: UnsafeRawPointer
    public let count: Int
    private let owner: AnyObject?
    private let ownsMemory: Bool

    /// Copies `bytes` into memory aligned for SIMD loads.
    public init(copying bytes: [UInt8]) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        base = UnsafeRawPointer(memory)
        count = bytes.count
        owner = nil
        ownsMemory = true
    }

    /// `count` zeroed bytes, filled in place by `fill` before anyone reads them.
    init(count: Int, fill: (UnsafeMutableRawPointer) throws -> Void) rethrows {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        do { try fill(memory) } catch {
            memory.deallocate()
            throw error
        }
        base = UnsafeRawPointer(memory)
        self.count = count
        owner = nil
        ownsMemory = true
    }

    /// Borrows `count` bytes at `base`, kept valid by `owner` (e.g. a file mapping).
    public init(borrowing base: UnsafeRawPointer, count: Int, owner: AnyObject) {
        self.base = base
        self.count = count
        self.owner = owner
        ownsMemory = false
    }

    deinit {
        if ownsMemory { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }

    /// The bytes as an array (a copy), for tests and tools.
    public var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: base, count: count)) }
}
