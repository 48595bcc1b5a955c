// MappedFile.swift — a read-only memory mapping of a whole file. One of the few
// places above the kernels that holds a raw pointer: everything it hands out
// is bounds-checked bytes or a ByteStorage that keeps the mapping alive.

import Foundation
import KernelBridge
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and immutable after init.
    public let path: String
    public let count: Int
    private let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ModelFileError.unreadable(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ModelFileError.unreadable(file: path, reason: String(cString: strerror(errno))) }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let address = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw ModelFileError.unreadable(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(address)
    }

    private var owned = false

    /// An in-memory "file" holding a copy of `bytes` (for tests and fuzzing).
    public init(bytes: [UInt8], name: String) {
        path = name
        count = bytes.count
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { if let src = $0.baseAddress { memory.copyMemory(from: src, byteCount: $0.count) } }
        base = UnsafeRawPointer(memory)
        owned = true
    }

    deinit {
        guard let base else { return }
        if owned { UnsafeMutableRawPointer(mutating: base).deallocate() } else { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// A copy of bytes [offset, offset + length), or nil when outside the file.
    func bytes(at offset: Int, count length: Int) -> [UInt8]? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        guard length > 0, let base else { return [] }
        return Array(UnsafeRawBufferPointer(start: base + offset, count: length))
    }

    func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size, let base else { return nil }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Tells the kernel the pages of [offset, offset + length) are no longer needed, so a
    /// conversion streaming through a file larger than memory keeps a bounded resident size.
    func release(offset: Int, count length: Int) {
        guard !owned, let base, length > 0, offset >= 0, offset + length <= count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page, end = (offset + length) / page * page
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// Bytes [offset, offset + length) without copying, kept alive by this mapping.
    func storage(at offset: Int, count length: Int) -> ByteStorage? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset, let base else { return nil }
        return ByteStorage(borrowing: base + offset, count: length, owner: self)
    }
}
