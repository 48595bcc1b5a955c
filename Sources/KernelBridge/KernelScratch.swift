// KernelScratch.swift — the scratch memory kernel calls use: quantized
// activations and the C kernels' workspaces (glm_kernels.h: kernels never
// allocate). Each thread that calls kernels owns one, which grows to the
// largest call it has made and is then reused, so a steady decode step
// allocates nothing. Per thread rather than per Kernels value: a KernelSet is
// a Sendable value that sessions on several threads may share.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class KernelScratch {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0

    /// At least `bytes` of 64-byte aligned memory; the contents are not kept when it grows.
    func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > capacity || base == nil {
            base?.deallocate()
            // grow by half again, so that a run of slightly larger calls does not reallocate each time
            capacity = max(bytes, capacity + capacity / 2, 4096)
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        }
        return base!
    }

    deinit { base?.deallocate() }

    /// The calling thread's scratch.
    static var current: KernelScratch {
        if let p = pthread_getspecific(scratchKey) { return Unmanaged<KernelScratch>.fromOpaque(p).takeUnretainedValue() }
        let scratch = KernelScratch()
        pthread_setspecific(scratchKey, Unmanaged.passRetained(scratch).toOpaque())
        return scratch
    }
}

/// The thread-local slot; a thread's scratch is released when the thread ends.
private let scratchKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { p in
        if let p { Unmanaged<KernelScratch>.fromOpaque(p).release() }
    }
    return key
}()

/// Carves 64-byte aligned pieces out of a scratch block, in order.
struct ScratchLayout {
    private(set) var bytes = 0

    /// Reserves `count` elements of T; returns the piece's byte offset.
    mutating func add<T>(_: T.Type, _ count: Int) -> Int {
        let offset = bytes
        bytes += (count * MemoryLayout<T>.stride + 63) / 64 * 64
        return offset
    }
}
