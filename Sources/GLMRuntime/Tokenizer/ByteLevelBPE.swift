// ByteLevelBPE.swift — byte-level BPE as GLM-4's tokenizers define it: the text
// is split by a regular expression (the pre-tokenizer), each piece's UTF-8
// bytes start as one token per byte, and adjacent tokens merge, the
// best-ranked pair first (leftmost on a tie), until no pair merges.
//  - tiktoken (GLM-4-9B's tokenizer.model): a token's rank is its id, and a
//    pair merges when its concatenation is a token; a piece that is a token
//    whole is taken whole.
//  - Hugging Face BPE (GLM-4-0414's tokenizer.json): a pair merges when it is
//    in the merges list, ranked by its place there; with ignore_merges a piece
//    that is a token whole is taken whole.
// Special tokens are never made from text; the prompt templates emit them.

import Foundation

public struct ByteLevelBPE: TextTokenizer, @unchecked Sendable { // Regex is immutable once built
    public enum MergeRule: String, Sendable {
        /// tiktoken: the pair whose concatenation has the lowest id merges.
        case tokenRank = "rank"
        /// Hugging Face: the pair earliest in the merges list merges.
        case mergeList = "merges"
    }

    /// Token id -> its bytes, for the text vocabulary [0, count).
    public let tokens: [[UInt8]]
    public let rule: MergeRule
    /// The pre-tokenizer's pattern (Swift Regex syntax, which takes the PCRE-style patterns these files use).
    public let pattern: String
    /// Merges in rank order as (left id, right id), for the merge-list rule.
    public let merges: [(Int32, Int32)]
    /// Pieces that are a token whole skip the merges (tiktoken always; tokenizer.json's ignore_merges).
    public let wholeTokens: Bool
    public let specialTokens: [String: Int32]

    private let ids: [[UInt8]: Int32]
    private let mergeRanks: [UInt64: Int32]
    private let byteTokens: [Int32]
    private let splitter: Regex<AnyRegexOutput>

    public init(tokens: [[UInt8]], rule: MergeRule, pattern: String, merges: [(Int32, Int32)] = [], wholeTokens: Bool,
                specialTokens: [String: Int32], source: String) throws {
        func fail(_ reason: String) -> TokenizerError { .malformedModel(file: source, reason: reason) }
        guard !tokens.isEmpty, tokens.count <= 1 << 22 else { throw fail("\(tokens.count) tokens") }
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, bytes) in tokens.enumerated() {
            guard !bytes.isEmpty else { throw fail("token \(i) is empty") }
            guard ids[bytes] == nil else { throw fail("token \(i) repeats token \(ids[bytes]!)") }
            ids[bytes] = Int32(i)
        }
        // every byte must be a token, or some text could not be encoded at all
        var byteTokens: [Int32] = []
        for b in 0...255 {
            guard let id = ids[[UInt8(b)]] else { throw fail("no token for byte \(b)") }
            byteTokens.append(id)
        }
        var ranks: [UInt64: Int32] = [:]
        for (rank, (a, b)) in merges.enumerated() {
            guard tokens.indices.contains(Int(a)), tokens.indices.contains(Int(b)) else { throw fail("merge \(rank) names an unknown token") }
            guard ids[tokens[Int(a)] + tokens[Int(b)]] != nil else { throw fail("merge \(rank) makes a token the vocabulary lacks") }
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if ranks[key] == nil { ranks[key] = Int32(rank) }
        }
        for (spelling, id) in specialTokens where id < tokens.count || spelling.isEmpty {
            throw fail("special token '\(spelling)' (\(id)) is inside the text vocabulary")
        }
        // a pattern from a file runs on every prompt and a hostile one can backtrack for ever
        // (the regex engine has no time limit): only the pre-tokenizers of the models known run
        guard Self.knownPatterns.contains(pattern) else {
            throw TokenizerError.unsupported(file: source, feature: "a pre-tokenizer regex other than GLM-4's or GPT-2's (\(pattern.prefix(80)))")
        }
        do { splitter = try Regex(pattern) } catch { throw fail("pre-tokenizer pattern does not compile: \(error)") }
        (self.tokens, self.rule, self.pattern, self.merges, self.wholeTokens) = (tokens, rule, pattern, merges, wholeTokens)
        (self.specialTokens, self.ids, mergeRanks, self.byteTokens) = (specialTokens, ids, ranks, byteTokens)
    }

    public var idRange: Range<Int> { 0..<tokens.count }

    public func piece(_ id: Int32) -> String? {
        guard idRange.contains(Int(id)) else { return nil }
        return String(decoding: tokens[Int(id)], as: UTF8.self)
    }

    public func encode(_ text: String) -> [Int32] {
        var out: [Int32] = []
        var last = text.startIndex
        for match in text.matches(of: splitter) where !match.range.isEmpty {
            // text between matches (none with GLM-4's patterns, which cover every character) is a piece too
            if match.range.lowerBound > last { encodePiece(Array(text[last..<match.range.lowerBound].utf8), into: &out) }
            encodePiece(Array(text[match.range].utf8), into: &out)
            last = match.range.upperBound
        }
        if last < text.endIndex { encodePiece(Array(text[last...].utf8), into: &out) }
        return out
    }

    private func rank(_ left: Int32, _ right: Int32) -> Int32? {
        switch rule {
        case .tokenRank: return ids[tokens[Int(left)] + tokens[Int(right)]]
        case .mergeList: return mergeRanks[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))]
        }
    }

    private func encodePiece(_ bytes: [UInt8], into out: inout [Int32]) {
        if wholeTokens, let id = ids[bytes] { out.append(id); return }
        var parts = bytes.map { byteTokens[Int($0)] }
        while parts.count > 1 {
            var best: (rank: Int32, at: Int)?
            for i in 0..<(parts.count - 1) {
                if let r = rank(parts[i], parts[i + 1]), best == nil || r < best!.rank { best = (r, i) }
            }
            guard let (_, i) = best else { break }
            parts[i] = ids[tokens[Int(parts[i])] + tokens[Int(parts[i + 1])]]!
            parts.remove(at: i + 1)
        }
        out += parts
    }

    /// The UTF-8 text of the ids' bytes; a character cut short decodes as U+FFFD.
    public func decode(_ ids: [Int32]) throws -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard idRange.contains(Int(id)) else { throw TokenizerError.unknownID(id, vocabulary: tokens.count) }
            bytes += tokens[Int(id)]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

// MARK: - Reading the checkpoints' files

extension ByteLevelBPE {
    /// GLM-4-9B's pre-tokenizer (tokenization_chatglm.py's pat_str, GPT-4's).
    public static let glm4Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// GPT-2's pre-tokenizer (a ByteLevel pre-tokenizer with use_regex).
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// The pre-tokenizer patterns a tokenizer may name.
    public static let knownPatterns: Set<String> = [glm4Pattern, gpt2Pattern]

    /// GLM-4-9B's special tokens, numbered from the end of the ranks (tokenization_chatglm.py).
    public static let glm4SpecialTokens = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
                                           "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>",
                                           "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>"]

    /// Whether `data` is a tiktoken rank file (lines of base64 token and rank) rather than a SentencePiece model.
    static func isTiktoken(_ data: Data) -> Bool {
        guard let head = String(data: data.prefix(256), encoding: .utf8), let line = head.split(separator: "\n").first else { return false }
        let fields = line.split(separator: " ")
        return fields.count == 2 && Int(fields[1]) != nil && Data(base64Encoded: String(fields[0])) != nil
    }

    /// A tiktoken file: line i is "base64(token) i". `special` lists the special tokens
    /// numbered from the end of the ranks (or given ids from tokenizer_config.json).
    public init(tiktoken data: Data, specialTokens special: [String: Int32]?, source: String) throws {
        guard let text = String(data: data, encoding: .utf8) else { throw TokenizerError.invalidUTF8(context: source) }
        var tokens: [[UInt8]] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let bytes = Data(base64Encoded: String(fields[0])), let rank = Int(fields[1]) else {
                throw TokenizerError.malformedModel(file: source, reason: "line \(index + 1) is not 'base64 rank'")
            }
            guard rank == index else { throw TokenizerError.malformedModel(file: source, reason: "line \(index + 1) has rank \(rank): ranks must count up from 0") }
            tokens.append([UInt8](bytes))
        }
        let specials = special ?? Dictionary(uniqueKeysWithValues: Self.glm4SpecialTokens.enumerated().map { ($1, Int32(tokens.count + $0)) })
        try self.init(tokens: tokens, rule: .tokenRank, pattern: Self.glm4Pattern, wholeTokens: true, specialTokens: specials, source: source)
    }

    /// A Hugging Face tokenizer.json with a byte-level BPE model: a Split pre-tokenizer
    /// (its regex) followed by ByteLevel without its own regex, no normalizer.
    public init(tokenizerJSON data: Data, source: String) throws {
        func fail(_ reason: String) -> TokenizerError { .unsupported(file: source, feature: reason) }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError.malformedModel(file: source, reason: "not a JSON object")
        }
        guard let model = root["model"] as? [String: Any], model["type"] as? String == "BPE" else { throw fail("a model other than BPE") }
        if let normalizer = root["normalizer"], !(normalizer is NSNull) { throw fail("a normalizer (\(normalizer))") }
        guard model["byte_fallback"] as? Bool != true else { throw fail("byte_fallback") }
        // the pre-tokenizer: Split(regex, Isolated) then ByteLevel(use_regex: false), or ByteLevel with GPT-2's regex alone
        var pattern: String?
        var steps = [root["pre_tokenizer"] as? [String: Any]].compactMap { $0 }
        if let seq = steps.first, seq["type"] as? String == "Sequence" { steps = seq["pretokenizers"] as? [[String: Any]] ?? [] }
        for step in steps {
            switch step["type"] as? String {
            case "Split":
                guard let p = (step["pattern"] as? [String: Any])?["Regex"] as? String, pattern == nil,
                      step["behavior"] as? String == "Isolated", step["invert"] as? Bool != true else { throw fail("a Split pre-tokenizer other than one Isolated regex") }
                pattern = p
            case "ByteLevel":
                guard step["add_prefix_space"] as? Bool != true else { throw fail("ByteLevel add_prefix_space") }
                if step["use_regex"] as? Bool != false {
                    guard pattern == nil else { throw fail("two pre-tokenizer regexes") }
                    pattern = Self.gpt2Pattern
                }
            default: throw fail("pre-tokenizer \(step["type"] ?? "?")")
            }
        }
        guard let pattern else { throw fail("no pre-tokenizer regex") }
        guard let vocab = model["vocab"] as? [String: Any] else { throw TokenizerError.malformedModel(file: source, reason: "no model.vocab") }
        let decode = ByteLevelAlphabet.decoding
        var tokens = [[UInt8]?](repeating: nil, count: vocab.count)
        for (spelling, value) in vocab {
            guard let id = value as? Int, tokens.indices.contains(id), tokens[id] == nil else {
                throw TokenizerError.malformedModel(file: source, reason: "vocab ids must be 0 ..< \(vocab.count), each once ('\(spelling)')")
            }
            var bytes: [UInt8] = []
            for scalar in spelling.unicodeScalars {
                guard let b = decode[scalar] else { throw TokenizerError.malformedModel(file: source, reason: "'\(spelling)' is not byte-level") }
                bytes.append(b)
            }
            tokens[id] = bytes
        }
        let dense = tokens.compactMap { $0 }
        var merges: [(Int32, Int32)] = []
        let index = Dictionary(dense.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        func id(_ spelling: Substring) throws -> Int32 {
            var bytes: [UInt8] = []
            for scalar in spelling.unicodeScalars {
                guard let b = decode[scalar] else { throw TokenizerError.malformedModel(file: source, reason: "merge '\(spelling)' is not byte-level") }
                bytes.append(b)
            }
            guard let i = index[bytes] else { throw TokenizerError.malformedModel(file: source, reason: "merge names '\(spelling)', not in the vocabulary") }
            return i
        }
        for entry in model["merges"] as? [Any] ?? [] {
            // "a b" (older files) or ["a", "b"]
            let pair: [Substring] = (entry as? String).map { $0.split(separator: " ", maxSplits: 1) } ?? ((entry as? [String])?.map { Substring($0) } ?? [])
            guard pair.count == 2 else { throw TokenizerError.malformedModel(file: source, reason: "merge \(entry) is not a pair") }
            merges.append((try id(pair[0]), try id(pair[1])))
        }
        var specials: [String: Int32] = [:]
        for case let added as [String: Any] in root["added_tokens"] as? [Any] ?? [] {
            guard let content = added["content"] as? String, let i = added["id"] as? Int, i >= 0, i <= Int(Int32.max) else {
                throw TokenizerError.malformedModel(file: source, reason: "an added token without content and id")
            }
            if i >= dense.count { specials[content] = Int32(i) }
        }
        try self.init(tokens: dense, rule: .mergeList, pattern: pattern, merges: merges,
                      wholeTokens: model["ignore_merges"] as? Bool == true, specialTokens: specials, source: source)
    }
}

/// GPT-2's byte-level alphabet: each byte as a printable character, so that byte
/// strings are JSON text (bytes_to_unicode in the reference code).
enum ByteLevelAlphabet {
    static let encoding: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable { table[b] = Character(Unicode.Scalar(UInt32(b))!) } else { table[b] = Character(Unicode.Scalar(next)!); next += 1 }
        }
        return table
    }()

    static let decoding: [Unicode.Scalar: UInt8] = Dictionary(uniqueKeysWithValues: encoding.enumerated().map { ($1.unicodeScalars.first!, UInt8($0)) })

    static func spelling(_ bytes: [UInt8]) -> String { String(bytes.map { encoding[Int($0)] }) }
}
