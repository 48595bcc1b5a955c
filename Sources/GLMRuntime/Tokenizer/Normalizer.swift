// Normalizer.swift — SentencePiece's text normalizer, as the library applies
// it before encoding (and, as the denormalizer, after decoding):
//  - a precompiled character map (normalizer_spec.precompiled_charsmap): a
//    darts-clone double-array trie over UTF-8 bytes whose values index a blob
//    of NUL-terminated replacement strings; the longest matching prefix wins.
//    Every rule the library ships (nmt_nfkc, nfkc, *_cf) and user rule files
//    are such maps, so one lookup serves them all;
//  - then the whitespace flags: drop leading, trailing and repeated spaces,
//    put a space in front (the dummy prefix), spaces become ▁.
// User-defined pieces (GLM's [MASK], <n>, ...) pass through unnormalized,
// as the library's prefix matcher makes them.

/// A normalizer: its character map (nil: identity) and whitespace flags.
public struct NormalizerSpec: Sendable, Equatable {
    public var charsMap: PrecompiledCharsMap?
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    public init(charsMap: PrecompiledCharsMap? = nil, addDummyPrefix: Bool = true, removeExtraWhitespaces: Bool = true,
                escapeWhitespaces: Bool = true) {
        (self.charsMap, self.addDummyPrefix, self.removeExtraWhitespaces, self.escapeWhitespaces)
            = (charsMap, addDummyPrefix, removeExtraWhitespaces, escapeWhitespaces)
    }

    /// The trainer writes the denormalizer with every whitespace flag off.
    static func denormalizer(_ map: PrecompiledCharsMap) -> NormalizerSpec {
        NormalizerSpec(charsMap: map, addDummyPrefix: false, removeExtraWhitespaces: false, escapeWhitespaces: false)
    }
}

/// A precompiled character map, checked when it is read: the blob is
/// `uint32 trie_bytes (little-endian) | trie units | replacement strings`.
public struct PrecompiledCharsMap: Sendable, Equatable {
    /// The blob as stored, for writing it back to a model file.
    public let blob: [UInt8]
    private let units: [UInt32]
    private let strings: [UInt8]

    public struct Malformed: Error { public let reason: String }

    public init(_ blob: [UInt8]) throws {
        guard blob.count > 4 else { throw Malformed(reason: "character map of \(blob.count) bytes") }
        let trieBytes = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieBytes < blob.count - 4, trieBytes % 4 == 0, trieBytes >= 4 else {
            throw Malformed(reason: "character-map trie of \(trieBytes) bytes in a blob of \(blob.count)")
        }
        var units = [UInt32](repeating: 0, count: trieBytes / 4)
        for i in units.indices {
            let b = 4 + 4 * i
            units[i] = UInt32(blob[b]) | UInt32(blob[b + 1]) << 8 | UInt32(blob[b + 2]) << 16 | UInt32(blob[b + 3]) << 24
        }
        let strings = Array(blob[(4 + trieBytes)...])
        // darts-clone marks value units with bit 31: each must start a
        // NUL-terminated string inside the blob.
        guard let lastNUL = strings.lastIndex(of: 0) else { throw Malformed(reason: "replacement strings are not NUL-terminated") }
        for unit in units where unit & 0x8000_0000 != 0 {
            guard Int(unit & 0x7FFF_FFFF) <= lastNUL else {
                throw Malformed(reason: "a rule points at byte \(unit & 0x7FFF_FFFF) of \(strings.count) replacement bytes")
            }
        }
        self.blob = blob
        self.units = units
        self.strings = strings
    }

    /// The longest rule matching bytes[start...]: (bytes consumed, replacement).
    /// Like the library, only the first 32 matches of the prefix search count.
    func longestMatch(_ bytes: [UInt8], from start: Int) -> (length: Int, replacement: ArraySlice<UInt8>)? {
        var best: (Int, Int)?
        var found = 0
        var node = Int(Self.offset(units[0]))
        var i = start
        while i < bytes.count, found < 32 {
            let label = bytes[i]
            node ^= Int(label)
            guard node < units.count else { break }
            let unit = units[node]
            guard unit & 0x8000_00FF == UInt32(label) else { break }
            node ^= Int(Self.offset(unit))
            guard node < units.count else { break }
            i += 1
            if (unit >> 8) & 1 == 1 {
                found += 1
                best = (i - start, Int(units[node] & 0x7FFF_FFFF))
            }
        }
        guard let (length, value) = best, value < strings.count else { return nil }
        let end = strings[value...].firstIndex(of: 0) ?? strings.endIndex
        return (length, strings[value..<end])
    }

    private static func offset(_ unit: UInt32) -> UInt32 { (unit >> 10) << ((unit & (1 << 9)) >> 6) }
}

extension Tokenizer {
    /// SentencePiece's Normalizer::Normalize: the input as the encoder sees it.
    static func normalize(_ input: [UInt8], spec: NormalizerSpec, userDefined: ByteTrie?) -> [UInt8] {
        let space: [UInt8] = spec.escapeWhitespaces ? Tokenizer.space : [0x20]
        var i = 0
        // one normalized piece of the input at i: (replacement, bytes consumed)
        func prefix(_ i: Int) -> (ArraySlice<UInt8>, Int) {
            if let length = userDefined?.longestMatch(input, from: i)?.length { return (input[i..<(i + length)], length) }
            if let match = spec.charsMap?.longestMatch(input, from: i) { return (match.replacement, match.length) }
            let length = min(Tokenizer.characterLength(input[i]), input.count - i)
            return (input[i..<(i + length)], length)
        }
        if spec.removeExtraWhitespaces {
            while i < input.count {
                let (piece, consumed) = prefix(i)
                guard piece.elementsEqual([0x20]) else { break }
                i += consumed
            }
        }
        guard i < input.count else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(input.count + 8)
        if spec.addDummyPrefix { out += space }
        var previousSpace = spec.removeExtraWhitespaces
        while i < input.count {
            var (piece, consumed) = prefix(i)
            while previousSpace, piece.first == 0x20 { piece = piece.dropFirst() }
            if !piece.isEmpty {
                for byte in piece {
                    if spec.escapeWhitespaces && byte == 0x20 { out += Tokenizer.space } else { out.append(byte) }
                }
                previousSpace = piece.last == 0x20
            }
            i += consumed
            if !spec.removeExtraWhitespaces { previousSpace = false }
        }
        if spec.removeExtraWhitespaces {
            while out.count >= space.count, out.suffix(space.count).elementsEqual(space) { out.removeLast(space.count) }
        }
        return out
    }
}
