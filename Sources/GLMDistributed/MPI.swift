// MPI.swift — the Swift face of the MPI shim (glm_mpi.h): a process's place in
// the job (rank, size) and typed point-to-point transfers on MPI_COMM_WORLD.
// Every failure is an MPIError with MPI's own text; counts are checked before
// they reach MPI's Int32 arguments.

import MPIShim

public struct MPIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    init(code: Int32, doing what: String) {
        var text = [CChar](repeating: 0, count: 512)
        glm_mpi_error_string(code, &text, Int32(text.count))
        description = "MPI \(what) failed: \(cText(text))"
    }
}

/// The text of a C buffer up to its terminating zero.
func cText(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Message tags: each kind of message its own, so a receive never takes another kind's data.
public enum MPITag: Int32 {
    case setup = 1, header, hidden, result, logits, report
}

public final class MPI {
    public let rank: Int
    public let size: Int

    /// Starts MPI (under mpirun; a lone process is a job of one rank).
    public init() throws {
        var rank: Int32 = 0, size: Int32 = 0
        let rc = glm_mpi_init(&rank, &size)
        guard rc == 0 else { throw MPIError(code: rc, doing: "init") }
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Stops MPI; call once every rank is done (a clean exit).
    public func finalize() { _ = glm_mpi_finalize() }

    /// Ends the whole job: mpirun stops every rank and reports the exit code.
    public func abort(code: Int32 = 1) -> Never {
        glm_mpi_abort(code)
        fatalError("MPI_Abort returned")
    }

    public static var libraryVersion: String {
        var text = [CChar](repeating: 0, count: 512)
        glm_mpi_library_version(&text, Int32(text.count))
        return cText(text)
    }

    private static func count(_ n: Int, _ what: String) throws -> Int32 {
        guard n >= 0, n <= Int(Int32.max) else { throw MPIError("\(what): \(n) values is more than one MPI message carries") }
        return Int32(n)
    }

    public func send(_ values: [Float], to dest: Int, tag: MPITag) throws {
        try send(values, to: dest, tag: tag) { glm_mpi_send_floats($0, $1, $2, $3) }
    }

    public func send(_ values: [Int64], to dest: Int, tag: MPITag) throws {
        try send(values, to: dest, tag: tag) { glm_mpi_send_int64s($0, $1, $2, $3) }
    }

    /// Receives at most `capacity` floats from `source`.
    public func receiveFloats(from source: Int, tag: MPITag, capacity: Int) throws -> [Float] {
        try receive(capacity: capacity, from: source, tag: tag, zero: 0) { glm_mpi_recv_floats($0, $1, $2, $3, $4) }
    }

    /// Receives at most `capacity` int64s from `source`.
    public func receiveInts(from source: Int, tag: MPITag, capacity: Int) throws -> [Int64] {
        try receive(capacity: capacity, from: source, tag: tag, zero: 0) { glm_mpi_recv_int64s($0, $1, $2, $3, $4) }
    }

    private func send<T>(_ values: [T], to dest: Int, tag: MPITag,
                         _ call: (UnsafePointer<T>?, Int32, Int32, Int32) -> Int32) throws {
        let n = try MPI.count(values.count, "send")
        let rc = values.withUnsafeBufferPointer { call($0.baseAddress, n, Int32(dest), tag.rawValue) }
        guard rc == 0 else { throw MPIError(code: rc, doing: "send to rank \(dest)") }
    }

    private func receive<T>(capacity: Int, from source: Int, tag: MPITag, zero: T,
                            _ call: (UnsafeMutablePointer<T>?, Int32, Int32, Int32, UnsafeMutablePointer<Int32>) -> Int32) throws -> [T] {
        let n = try MPI.count(capacity, "receive")
        var received: Int32 = 0
        var values = [T](repeating: zero, count: capacity)
        let rc = values.withUnsafeMutableBufferPointer { call($0.baseAddress, n, Int32(source), tag.rawValue, &received) }
        guard rc == 0 else { throw MPIError(code: rc, doing: "receive from rank \(source)") }
        values.removeLast(capacity - Int(received))
        return values
    }
}

/// Sends to one neighbour that return at once: the values are copied into a buffer
/// owned here until MPI is done with it. At most one send per kind is in flight;
/// the next one waits for it, so a stage runs at most one micro-batch ahead of a
/// busy neighbour (the pipeline's one-deep buffer between stages).
public final class OutgoingChannel {
    private let dest: Int
    private var floats = PendingSend<Float>()
    private var ints = PendingSend<Int64>()

    public init(to dest: Int) { self.dest = dest }

    deinit { try? finish() }

    public func send(_ header: [Int64], _ payload: [Float]? = nil, headerTag: MPITag, payloadTag: MPITag) throws {
        try ints.start(header, dest: dest, tag: headerTag) { glm_mpi_isend_int64s($0, $1, $2, $3, $4) }
        if let payload {
            try floats.start(payload, dest: dest, tag: payloadTag) { glm_mpi_isend_floats($0, $1, $2, $3, $4) }
        }
    }

    /// Waits for everything in flight to arrive.
    public func finish() throws {
        try ints.wait()
        try floats.wait()
    }
}

private struct PendingSend<Element> {
    private var buffer: UnsafeMutableBufferPointer<Element>?
    private var request: OpaquePointer?
    private var dest = 0

    mutating func start(_ values: [Element], dest: Int, tag: MPITag,
                        _ isend: (UnsafePointer<Element>?, Int32, Int32, Int32, UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws {
        try wait()
        guard values.count <= Int(Int32.max) else { throw MPIError("send: \(values.count) values is more than one MPI message carries") }
        let copy = UnsafeMutableBufferPointer<Element>.allocate(capacity: max(values.count, 1))
        _ = copy.initialize(from: values)
        buffer = copy
        self.dest = dest
        var pending: OpaquePointer?
        let rc = isend(UnsafePointer(copy.baseAddress), Int32(values.count), Int32(dest), tag.rawValue, &pending)
        guard rc == 0 else {
            release()
            throw MPIError(code: rc, doing: "send to rank \(dest)")
        }
        request = pending
    }

    mutating func wait() throws {
        guard let pending = request else { return release() }
        request = nil
        let rc = glm_mpi_wait(pending, nil)
        release()
        guard rc == 0 else { throw MPIError(code: rc, doing: "send to rank \(dest)") }
    }

    private mutating func release() {
        buffer?.deallocate()
        buffer = nil
    }
}

/// A receive posted ahead of need: MPI may fill the buffer (owned here) at any time
/// until wait() returns the values that came.
public final class PostedReceive<Element> {
    private let buffer: UnsafeMutableBufferPointer<Element>
    private var request: OpaquePointer?
    private let source: Int

    private init(capacity: Int, source: Int, tag: MPITag, zero: Element,
                 _ irecv: (UnsafeMutablePointer<Element>?, Int32, Int32, Int32, UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws {
        guard capacity >= 0, capacity <= Int(Int32.max) else { throw MPIError("receive: \(capacity) values is more than one MPI message carries") }
        buffer = .allocate(capacity: max(capacity, 1))
        buffer.initialize(repeating: zero)
        self.source = source
        var pending: OpaquePointer?
        let rc = irecv(buffer.baseAddress, Int32(capacity), Int32(source), tag.rawValue, &pending)
        guard rc == 0 else {
            buffer.deallocate()
            throw MPIError(code: rc, doing: "receive from rank \(source)")
        }
        request = pending
    }

    /// Waits for the message and returns its values.
    public func wait() throws -> [Element] {
        guard let pending = request else { throw MPIError("receive from rank \(source) already taken") }
        request = nil
        var received: Int32 = 0
        let rc = glm_mpi_wait(pending, &received)
        guard rc == 0 else { throw MPIError(code: rc, doing: "receive from rank \(source)") }
        return Array(buffer.prefix(Int(received)))
    }

    deinit {
        // a receive still posted may yet be written by MPI: its buffer is left to the process's end
        if request == nil { buffer.deallocate() }
    }
}

extension PostedReceive where Element == Float {
    public convenience init(capacity: Int, from source: Int, tag: MPITag) throws {
        try self.init(capacity: capacity, source: source, tag: tag, zero: 0) { glm_mpi_irecv_floats($0, $1, $2, $3, $4) }
    }
}

extension PostedReceive where Element == Int64 {
    public convenience init(capacity: Int, from source: Int, tag: MPITag) throws {
        try self.init(capacity: capacity, source: source, tag: tag, zero: 0) { glm_mpi_irecv_int64s($0, $1, $2, $3, $4) }
    }
}
