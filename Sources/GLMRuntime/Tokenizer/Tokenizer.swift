// Tokenizer.swift — SentencePiece encoding and decoding in Swift, matching the
// `sentencepiece` library: its normalizer (Normalizer.swift), the
// unigram (Viterbi) and BPE (ranked merges) algorithms, user-defined symbols
// kept whole (GLM's [MASK], [gMASK], <sop>, ...), byte fallback for
// characters outside the vocabulary, and its decoding rules.

public struct Tokenizer: Sendable {
    public let vocabulary: TokenizerVocabulary
    /// Normal, user-defined and unused pieces by their UTF-8 bytes (the pieces
    /// SentencePiece lets text match; control, unknown and byte pieces are reserved).
    let matchable: ByteTrie
    let pieceIDs: [[UInt8]: Int32]
    let userDefined: ByteTrie
    let byteIDs: [Int32?]
    let maxNormalScore: Float
    let minNormalScore: Float

    static let space: [UInt8] = Array("\u{2581}".utf8) // ▁

    public init(_ vocabulary: TokenizerVocabulary) {
        self.vocabulary = vocabulary
        var matchable = ByteTrie(), userDefined = ByteTrie()
        var ids: [[UInt8]: Int32] = [:]
        var byteIDs = [Int32?](repeating: nil, count: 256)
        var maxScore = Float.leastNormalMagnitude, minScore = Float.greatestFiniteMagnitude
        for (i, piece) in vocabulary.pieces.enumerated() {
            let id = Int32(i), bytes = Array(piece.utf8)
            switch vocabulary.types[i] {
            case .normal, .userDefined, .unused:
                if ids[bytes] == nil { ids[bytes] = id; matchable.insert(bytes, id: id) }
                if vocabulary.types[i] == .userDefined { userDefined.insert(bytes, id: id) }
                if vocabulary.types[i] == .normal {
                    // SentencePiece starts max at FLT_MIN, so with log-prob scores it stays ~0
                    maxScore = max(maxScore, vocabulary.scores[i])
                    minScore = min(minScore, vocabulary.scores[i])
                }
            case .byte:
                if let value = Tokenizer.byteValue(piece) { byteIDs[Int(value)] = id }
            case .control, .unknown:
                break
            }
        }
        self.matchable = matchable
        self.userDefined = userDefined
        pieceIDs = ids
        self.byteIDs = byteIDs
        maxNormalScore = maxScore
        minNormalScore = minScore == .greatestFiniteMagnitude ? 0 : minScore
    }

    public var count: Int { vocabulary.pieces.count }

    public func piece(_ id: Int32) throws -> String {
        guard id >= 0, Int(id) < count else { throw TokenizerError.unknownID(id, vocabulary: count) }
        return vocabulary.pieces[Int(id)]
    }

    /// The id of an exact piece (e.g. "[gMASK]"), if the vocabulary has it.
    public func id(ofPiece piece: String) -> Int32? {
        vocabulary.pieces.firstIndex(of: piece).map(Int32.init)
    }

    // MARK: - Encoding

    /// Token ids of `text`.
    public func encode(_ text: String) -> [Int32] {
        let normalized = normalize(Array(text.utf8))
        guard !normalized.isEmpty else { return [] }
        var segments: [(Range<Int>, Int32)] = []
        for (range, id) in vocabulary.algorithm == .unigram ? encodeUnigram(normalized) : encodeBPE(normalized) {
            // the library merges a run of unknown characters into one unknown piece
            if id == vocabulary.unknownID, let last = segments.last, last.1 == id, last.0.upperBound == range.lowerBound {
                segments[segments.count - 1].0 = last.0.lowerBound..<range.upperBound
            } else {
                segments.append((range, id))
            }
        }
        var ids: [Int32] = []
        ids.reserveCapacity(segments.count)
        for (range, id) in segments {
            if id == vocabulary.unknownID, vocabulary.byteFallback {
                // byte fallback: one <0xXX> piece per UTF-8 byte of the unknown text
                for byte in normalized[range] { ids.append(byteIDs[Int(byte)] ?? vocabulary.unknownID) }
            } else {
                ids.append(id)
            }
        }
        return ids
    }

    /// The text as the encoder sees it (Normalizer.swift).
    func normalize(_ input: [UInt8]) -> [UInt8] {
        Tokenizer.normalize(input, spec: vocabulary.normalizer, userDefined: userDefined)
    }

    /// Bytes in the UTF-8 character starting with `lead` (1 for a stray continuation byte).
    static func characterLength(_ lead: UInt8) -> Int {
        switch lead {
        case 0xF0...0xF7: return 4
        case 0xE0...0xEF: return 3
        case 0xC0...0xDF: return 2
        default: return 1
        }
    }

    static func byteValue(_ piece: String) -> UInt8? {
        guard piece.count == 6, piece.hasPrefix("<0x"), piece.hasSuffix(">") else { return nil }
        return UInt8(piece.dropFirst(3).dropLast(), radix: 16)
    }

    // MARK: - Decoding

    /// The text of `ids`. Byte pieces are joined and read as UTF-8 (invalid bytes
    /// become U+FFFD), ▁ becomes a space, the dummy-prefix space is dropped,
    /// control pieces vanish and the unknown piece shows as " ⁇ ".
    public func decode(_ ids: [Int32]) throws -> String {
        var text: [UInt8] = []
        var pendingBytes: [UInt8] = []
        var first = true
        func flush() {
            guard !pendingBytes.isEmpty else { return }
            text += Array(String(decoding: pendingBytes, as: UTF8.self).utf8)
            pendingBytes.removeAll()
            first = false
        }
        for id in ids {
            guard id >= 0, Int(id) < count else { throw TokenizerError.unknownID(id, vocabulary: count) }
            let piece = vocabulary.pieces[Int(id)]
            switch vocabulary.types[Int(id)] {
            case .byte:
                if let value = Tokenizer.byteValue(piece) { pendingBytes.append(value) }
            case .control:
                flush()
            case .unknown:
                flush()
                text += Array(vocabulary.unknownSurface.utf8)
                first = false
            case .normal, .userDefined, .unused:
                flush()
                var bytes = Array(piece.utf8)
                // the library drops the first piece's ▁ when either flag could have made it
                if first, vocabulary.normalizer.addDummyPrefix || vocabulary.normalizer.removeExtraWhitespaces,
                   bytes.starts(with: Tokenizer.space) {
                    bytes.removeFirst(Tokenizer.space.count)
                }
                text += bytes
                first = false
            }
        }
        flush()
        let decoded = String(decoding: text, as: UTF8.self).replacingSpaceSymbol()
        guard let denormalizer = vocabulary.denormalizer else { return decoded }
        return String(decoding: Tokenizer.normalize(Array(decoded.utf8), spec: denormalizer, userDefined: nil), as: UTF8.self)
    }
}

extension String {
    fileprivate func replacingSpaceSymbol() -> String {
        String(unicodeScalars.map { $0 == "\u{2581}" ? " " : Character($0) })
    }
}

// MARK: - A byte trie for prefix matching

struct ByteTrie: Sendable {
    private var children: [[UInt8: Int32]] = [[:]]
    private var ids: [Int32] = [-1]

    mutating func insert(_ key: [UInt8], id: Int32) {
        var node = 0
        for byte in key {
            if let next = children[node][byte] {
                node = Int(next)
            } else {
                children.append([:])
                ids.append(-1)
                children[node][byte] = Int32(children.count - 1)
                node = children.count - 1
            }
        }
        if ids[node] < 0 { ids[node] = id }
    }

    /// Every (length, id) of keys that are prefixes of bytes[start...], shortest first.
    func prefixes(_ bytes: [UInt8], from start: Int, _ body: (Int, Int32) -> Void) {
        var node = 0, i = start
        while i < bytes.count, let next = children[node][bytes[i]] {
            node = Int(next)
            i += 1
            if ids[node] >= 0 { body(i - start, ids[node]) }
        }
    }

    func longestMatch(_ bytes: [UInt8], from start: Int) -> (length: Int, id: Int32)? {
        var best: (Int, Int32)?
        prefixes(bytes, from: start) { best = ($0, $1) }
        return best
    }
}
