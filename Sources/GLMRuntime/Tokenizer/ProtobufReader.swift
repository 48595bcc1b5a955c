// ProtobufReader.swift — the protocol-buffers wire format, just enough to read
// a SentencePiece model (varints, 32-bit floats, length-delimited fields).
// Every read is bounds-checked; a malformed message throws.

struct ProtobufReader {
    enum Field {
        case varint(UInt64)
        case fixed32(UInt32)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
    }

    struct Malformed: Error { let reason: String }

    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var isAtEnd: Bool { position >= bytes.endIndex }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw Malformed(reason: "truncated varint") }
            guard shift < 64 else { throw Malformed(reason: "varint longer than 10 bytes") }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.endIndex - position else { throw Malformed(reason: "field runs past the end") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    /// The next (field number, value), or nil at the end.
    mutating func next() throws -> (Int, Field)? {
        guard !isAtEnd else { return nil }
        let key = try varint()
        let number = Int(key >> 3)
        switch key & 7 {
        case 0: return (number, .varint(try varint()))
        case 1:
            let b = try take(8)
            return (number, .fixed64(b.reversed().reduce(0) { $0 << 8 | UInt64($1) }))
        case 2:
            let length = try varint()
            guard length <= UInt64(Int.max) else { throw Malformed(reason: "length overflow") }
            return (number, .bytes(try take(Int(length))))
        case 5:
            let b = try take(4)
            return (number, .fixed32(b.reversed().reduce(0) { $0 << 8 | UInt32($1) }))
        default:
            throw Malformed(reason: "unsupported wire type \(key & 7) for field \(number)")
        }
    }
}
