// TokenizerLayout.swift — how a model's token ids relate to its SentencePiece
// ids and which text rules wrap the SentencePiece encoder. Facts from THUDM's
// tokenization_chatglm.py (SPTokenizer) and icetk (IceTokenizer):
//  - plain:   model id = SentencePiece id; no text rules (the shipped model).
//  - chatglm: encode maps "\n" -> <n>, "\t" -> <|tab|>, runs of N spaces
//             (N = 80 down to 2, longest first) -> <|blank_N|>, then adds the
//             offset (num_image_tokens: 20000 in the original ChatGLM-6B, 0 in
//             the re-release). Decode subtracts it, drops negative ids (image
//             tokens), and maps the pieces back.
//  - icetk:   GLM-130B: the offset (20000) only; encode leaves line breaks
//             alone, decode maps <n> to "\n".

public enum TokenizerLayout: Sendable, Equatable {
    case plain
    case chatglm(offset: Int32)
    case icetk(offset: Int32)

    /// The longest run of spaces that has a <|blank_N|> piece.
    public static let maxBlankLength = 80

    /// Added to a SentencePiece id to make a model id.
    public var offset: Int32 {
        switch self {
        case .plain: return 0
        case let .chatglm(offset), let .icetk(offset): return offset
        }
    }

    /// The name recorded in the model file (tokenizer.glm.layout).
    public var name: String {
        switch self {
        case .plain: return "plain"
        case .chatglm: return "chatglm"
        case .icetk: return "icetk"
        }
    }

    public init?(name: String, offset: Int32) {
        switch name {
        case "plain" where offset == 0: self = .plain
        case "chatglm": self = .chatglm(offset: offset)
        case "icetk": self = .icetk(offset: offset)
        default: return nil
        }
    }
}

/// Model ids <-> text: the SentencePiece tokenizer inside its layout's rules.
public struct GLMTokenizer: Sendable {
    public let sentencePiece: Tokenizer
    public let layout: TokenizerLayout
    /// Special tokens numbered after the SentencePiece vocabulary (ChatGLM2/3's [MASK] ...
    /// <|observation|>), by spelling; empty for the v1 layouts, whose specials are pieces.
    public let specialTokens: [String: Int32]

    public init(_ sentencePiece: Tokenizer, layout: TokenizerLayout = .plain, specialTokens: [String: Int32] = [:]) {
        self.sentencePiece = sentencePiece
        self.layout = layout
        self.specialTokens = specialTokens
    }

    /// Model ids the text model covers: [offset, offset + pieces).
    public var idRange: Range<Int> { Int(layout.offset)..<(Int(layout.offset) + sentencePiece.count) }

    /// Model ids of `text`. `addDummyPrefix: false` is SPTokenizer.encode's
    /// option of that name (text that continues a word): "<n>" goes in front
    /// and the first two tokens (▁ and <n>) are dropped.
    public func encode(_ text: String, addDummyPrefix: Bool = true) -> [Int32] {
        let offset = layout.offset
        switch layout {
        case .plain, .icetk:
            return sentencePiece.encode(text).map { $0 + offset }
        case .chatglm:
            let prepared = Self.chatGLMText(text)
            let ids = sentencePiece.encode(addDummyPrefix ? prepared : "<n>" + prepared).map { $0 + offset }
            return addDummyPrefix ? ids : Array(ids.dropFirst(2))
        }
    }

    /// The text of model ids, by the layout's rules. Ids below the offset
    /// (image tokens) are dropped, as the reference drops them.
    public func decode(_ ids: [Int32]) throws -> String {
        if case .plain = layout, let bad = ids.first(where: { $0 < 0 }) {
            throw TokenizerError.unknownID(bad, vocabulary: sentencePiece.count)
        }
        // compared before subtracting: an id near Int32.min minus the offset would overflow
        let local = ids.filter { $0 >= layout.offset }.map { $0 - layout.offset }
        let text = try sentencePiece.decode(local)
        switch layout {
        case .plain: return text
        case .icetk: return Self.expandPieces(text, tabsAndBlanks: false)
        case .chatglm: return Self.expandPieces(text, tabsAndBlanks: true)
        }
    }

    /// The SentencePiece piece of a model id, if the text model has it.
    public func piece(_ id: Int32) -> String? {
        guard idRange.contains(Int(id)) else { return nil }
        return try? sentencePiece.piece(id - layout.offset)
    }

    // MARK: - ChatGLM's text rules

    /// "\n" -> <n>, "\t" -> <|tab|>, runs of spaces -> <|blank_N|>. Replacing
    /// N = 80...2 in turn, as the reference does, gives each maximal run of L
    /// spaces L/80 pieces of 80, then one piece for the rest (a lone space stays).
    static func chatGLMText(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var spaces = 0
        func flushSpaces() {
            while spaces >= TokenizerLayout.maxBlankLength {
                out += "<|blank_\(TokenizerLayout.maxBlankLength)|>"
                spaces -= TokenizerLayout.maxBlankLength
            }
            if spaces >= 2 { out += "<|blank_\(spaces)|>" } else if spaces == 1 { out += " " }
            spaces = 0
        }
        for scalar in text.unicodeScalars {
            if scalar == " " { spaces += 1; continue }
            flushSpaces()
            switch scalar {
            case "\n": out += "<n>"
            case "\t": out += "<|tab|>"
            default: out.unicodeScalars.append(scalar)
            }
        }
        flushSpaces()
        return out
    }

    /// <n> -> "\n", and with `tabsAndBlanks` <|tab|> -> "\t" and <|blank_N|> -> N
    /// spaces (SPTokenizer.postprocess). One pass over the bytes equals the
    /// reference's replacements in turn: no replacement makes a new match.
    static func expandPieces(_ text: String, tabsAndBlanks: Bool) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "<")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        func matches(_ pattern: String, at i: Int) -> Bool {
            let p = Array(pattern.utf8)
            return i + p.count <= bytes.count && bytes[i..<(i + p.count)].elementsEqual(p)
        }
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "<") {
                if matches("<n>", at: i) { out.append(0x0A); i += 3; continue }
                if tabsAndBlanks, matches("<|tab|>", at: i) { out.append(0x09); i += 7; continue }
                if tabsAndBlanks, matches("<|blank_", at: i), let n = blankLength(bytes, at: i + 8) {
                    out += [UInt8](repeating: 0x20, count: n.spaces)
                    i = n.end
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// N of "N|>" at bytes[i...] when 2 <= N <= 80 (written without leading zeros), and the index after it.
    private static func blankLength(_ bytes: [UInt8], at i: Int) -> (spaces: Int, end: Int)? {
        var j = i, n = 0
        while j < bytes.count, j - i < 2, (0x30...0x39).contains(bytes[j]) { n = n * 10 + Int(bytes[j] - 0x30); j += 1 }
        guard j > i, bytes[i] != 0x30, (2...TokenizerLayout.maxBlankLength).contains(n),
              j + 2 <= bytes.count, bytes[j] == UInt8(ascii: "|"), bytes[j + 1] == UInt8(ascii: ">") else { return nil }
        return (n, j + 2)
    }
}
