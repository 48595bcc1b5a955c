// Tokenizer+GGUF.swift — the tokenizer inside the model file, in GGUF's own
// tokenizer keys (tokens, scores, token types, which use SentencePiece's type
// values) plus our normalization flags.

extension TokenizerVocabulary {
    static let modelName = "glm-sentencepiece"

    public func write(to writer: inout GGUFWriter) {
        writer.set(TokenizerKeys.model, .string(TokenizerVocabulary.modelName))
        writer.set(TokenizerKeys.algorithm, .string(algorithm.rawValue))
        writer.set(TokenizerKeys.tokens, .array(.string, pieces.map { .string($0) }))
        writer.set(TokenizerKeys.scores, .array(.float32, scores.map { .float32($0) }))
        writer.set(TokenizerKeys.types, .array(.int32, types.map { .int32($0.rawValue) }))
        writer.set(TokenizerKeys.unknownID, .uint32(UInt32(unknownID)))
        writer.set(TokenizerKeys.addDummyPrefix, .bool(normalizer.addDummyPrefix))
        writer.set(TokenizerKeys.removeExtraWhitespaces, .bool(normalizer.removeExtraWhitespaces))
        writer.set(TokenizerKeys.escapeWhitespaces, .bool(normalizer.escapeWhitespaces))
        writer.set(TokenizerKeys.byteFallback, .bool(byteFallback))
        if let map = normalizer.charsMap {
            writer.set(TokenizerKeys.charsMap, .array(.uint8, map.blob.map { .uint8($0) }))
        }
        if let map = denormalizer?.charsMap {
            writer.set(TokenizerKeys.denormalizerCharsMap, .array(.uint8, map.blob.map { .uint8($0) }))
        }
    }

    /// The tokenizer stored in `file`, or nil when it has none.
    public init?(gguf file: GGUFFile) throws {
        let source = file.path.lastPathComponentForErrors
        guard let model = file.metadata[TokenizerKeys.model] else { return nil }
        guard model.stringValue == TokenizerVocabulary.modelName else {
            throw TokenizerError.unsupported(file: source, feature: "tokenizer model '\(model.stringValue ?? "?")'")
        }
        func array(_ key: String) throws -> [GGUFValue] {
            guard let values = file.metadata[key]?.arrayValue else { throw TokenizerError.malformedModel(file: source, reason: "missing \(key)") }
            return values
        }
        guard let algorithm = file.metadata[TokenizerKeys.algorithm]?.stringValue.flatMap(Algorithm.init(rawValue:)) else {
            throw TokenizerError.malformedModel(file: source, reason: "missing or unknown \(TokenizerKeys.algorithm)")
        }
        let pieces = try array(TokenizerKeys.tokens).map { value -> String in
            guard let s = value.stringValue else { throw TokenizerError.malformedModel(file: source, reason: "a token is not a string") }
            return s
        }
        let scores = try array(TokenizerKeys.scores).map { Float($0.floatValue ?? 0) }
        let types = try array(TokenizerKeys.types).map { value -> PieceType in
            guard let raw = value.intValue.flatMap(Int32.init(exactly:)), let t = PieceType(rawValue: raw) else {
                throw TokenizerError.malformedModel(file: source, reason: "bad token type")
            }
            return t
        }
        guard !pieces.isEmpty, scores.count == pieces.count, types.count == pieces.count else {
            throw TokenizerError.malformedModel(file: source, reason: "\(pieces.count) tokens, \(scores.count) scores, \(types.count) types")
        }
        let unknownValue = file.metadata[TokenizerKeys.unknownID]?.intValue ?? 0
        guard unknownValue >= 0, unknownValue < pieces.count else {
            throw TokenizerError.malformedModel(file: source, reason: "unknown token id \(unknownValue) outside the vocabulary")
        }
        let unknown = Int32(unknownValue)
        func flag(_ key: String, _ value: Bool) -> Bool {
            if case let .bool(b)? = file.metadata[key] { return b }
            return value
        }
        func charsMap(_ key: String) throws -> PrecompiledCharsMap? {
            guard let values = file.metadata[key]?.arrayValue else { return nil }
            let bytes = try values.map { value -> UInt8 in
                guard case let .uint8(b) = value else { throw TokenizerError.malformedModel(file: source, reason: "\(key) is not an array of uint8") }
                return b
            }
            do { return try PrecompiledCharsMap(bytes) } catch let error as PrecompiledCharsMap.Malformed {
                throw TokenizerError.malformedModel(file: source, reason: "\(key): \(error.reason)")
            }
        }
        let normalizer = NormalizerSpec(charsMap: try charsMap(TokenizerKeys.charsMap),
                                        addDummyPrefix: flag(TokenizerKeys.addDummyPrefix, true),
                                        removeExtraWhitespaces: flag(TokenizerKeys.removeExtraWhitespaces, true),
                                        escapeWhitespaces: flag(TokenizerKeys.escapeWhitespaces, true))
        self.init(algorithm: algorithm, pieces: pieces, scores: scores, types: types, normalizer: normalizer,
                  denormalizer: try charsMap(TokenizerKeys.denormalizerCharsMap).map(NormalizerSpec.denormalizer),
                  byteFallback: flag(TokenizerKeys.byteFallback, false), unknownID: unknown)
    }
}

/// Tokenizer keys of the model file (GGUF's standard names where they exist).
public enum TokenizerKeys {
    public static let model = "tokenizer.ggml.model"
    public static let tokens = "tokenizer.ggml.tokens"
    public static let scores = "tokenizer.ggml.scores"
    public static let types = "tokenizer.ggml.token_type"
    public static let unknownID = "tokenizer.ggml.unknown_token_id"
    public static let algorithm = "tokenizer.glm.algorithm"
    public static let addDummyPrefix = "tokenizer.ggml.add_space_prefix"
    public static let removeExtraWhitespaces = "tokenizer.ggml.remove_extra_whitespaces"
    public static let escapeWhitespaces = "tokenizer.glm.escape_whitespaces"
    public static let byteFallback = "tokenizer.glm.byte_fallback"
    /// SentencePiece's normalizer_spec.precompiled_charsmap, as bytes (llama.cpp's key).
    public static let charsMap = "tokenizer.ggml.precompiled_charsmap"
    public static let denormalizerCharsMap = "tokenizer.glm.denormalizer_charsmap"
    /// TokenizerLayout: "plain", "chatglm" or "icetk", and its id offset.
    public static let layout = "tokenizer.glm.layout"
    public static let idOffset = "tokenizer.glm.id_offset"
    /// Special tokens beyond the text vocabulary (ChatGLM2/3, GLM-4): spellings and their ids.
    public static let specialTokens = "tokenizer.glm.special_tokens"
    public static let specialTokenIDs = "tokenizer.glm.special_token_ids"
    /// Byte-level BPE: merges ("left right" in GPT-2's byte alphabet, GGUF's key), the merge
    /// rule ("rank": tiktoken, "merges": the list), the pre-tokenizer regex, whole-token lookup.
    public static let merges = "tokenizer.ggml.merges"
    public static let mergeRule = "tokenizer.glm.merge_rule"
    public static let pretokenizer = "tokenizer.glm.pretokenizer_regex"
    public static let wholeTokens = "tokenizer.glm.whole_tokens"
}

/// The special tokens' keys, shared by both tokenizer kinds.
enum SpecialTokenKeys {
    static func write(_ specials: [String: Int32], to writer: inout GGUFWriter) {
        guard !specials.isEmpty else { return }
        let sorted = specials.sorted { $0.value < $1.value }
        writer.set(TokenizerKeys.specialTokens, .array(.string, sorted.map { .string($0.key) }))
        writer.set(TokenizerKeys.specialTokenIDs, .array(.uint32, sorted.map { .uint32(UInt32($0.value)) }))
    }

    static func read(_ file: GGUFFile) throws -> [String: Int32] {
        let source = file.path.lastPathComponentForErrors
        guard let names = file.metadata[TokenizerKeys.specialTokens]?.arrayValue else { return [:] }
        guard let ids = file.metadata[TokenizerKeys.specialTokenIDs]?.arrayValue, ids.count == names.count else {
            throw TokenizerError.malformedModel(file: source, reason: "special tokens and their ids differ in count")
        }
        var out: [String: Int32] = [:]
        for (name, id) in zip(names, ids) {
            guard let n = name.stringValue, let i = id.intValue, i >= 0, i <= Int(Int32.max), out[n] == nil else {
                throw TokenizerError.malformedModel(file: source, reason: "a special token is not a unique string with an id")
            }
            out[n] = Int32(i)
        }
        return out
    }
}

extension ByteLevelBPE {
    static let modelName = "glm-bpe"

    public func write(to writer: inout GGUFWriter) {
        writer.set(TokenizerKeys.model, .string(Self.modelName))
        writer.set(TokenizerKeys.tokens, .array(.string, tokens.map { .string(ByteLevelAlphabet.spelling($0)) }))
        writer.set(TokenizerKeys.mergeRule, .string(rule.rawValue))
        if rule == .mergeList {
            writer.set(TokenizerKeys.merges, .array(.string, merges.map {
                .string(ByteLevelAlphabet.spelling(tokens[Int($0.0)]) + " " + ByteLevelAlphabet.spelling(tokens[Int($0.1)]))
            }))
        }
        writer.set(TokenizerKeys.pretokenizer, .string(pattern))
        writer.set(TokenizerKeys.wholeTokens, .bool(wholeTokens))
        SpecialTokenKeys.write(specialTokens, to: &writer)
    }

    /// The byte-level BPE tokenizer stored in `file`; nil when it holds another kind or none.
    public init?(gguf file: GGUFFile) throws {
        let source = file.path.lastPathComponentForErrors
        guard file.metadata[TokenizerKeys.model]?.stringValue == Self.modelName else { return nil }
        func fail(_ reason: String) -> TokenizerError { .malformedModel(file: source, reason: reason) }
        func bytes(_ spelling: String) throws -> [UInt8] {
            try spelling.unicodeScalars.map { s in
                guard let b = ByteLevelAlphabet.decoding[s] else { throw fail("token '\(spelling)' is not byte-level") }
                return b
            }
        }
        guard let tokenValues = file.metadata[TokenizerKeys.tokens]?.arrayValue else { throw fail("missing \(TokenizerKeys.tokens)") }
        let tokens = try tokenValues.map { v -> [UInt8] in
            guard let s = v.stringValue else { throw fail("a token is not a string") }
            return try bytes(s)
        }
        guard let rule = file.metadata[TokenizerKeys.mergeRule]?.stringValue.flatMap(MergeRule.init(rawValue:)) else {
            throw fail("missing or unknown \(TokenizerKeys.mergeRule)")
        }
        guard let pattern = file.metadata[TokenizerKeys.pretokenizer]?.stringValue else { throw fail("missing \(TokenizerKeys.pretokenizer)") }
        var merges: [(Int32, Int32)] = []
        if rule == .mergeList {
            let index = Dictionary(tokens.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
            for value in file.metadata[TokenizerKeys.merges]?.arrayValue ?? [] {
                let parts = value.stringValue?.split(separator: " ", maxSplits: 1) ?? []
                guard parts.count == 2, let a = index[try bytes(String(parts[0]))], let b = index[try bytes(String(parts[1]))] else {
                    throw fail("a merge is not two known tokens")
                }
                merges.append((a, b))
            }
        }
        var whole = rule == .tokenRank
        if case let .bool(b)? = file.metadata[TokenizerKeys.wholeTokens] { whole = b }
        try self.init(tokens: tokens, rule: rule, pattern: pattern, merges: merges, wholeTokens: whole,
                      specialTokens: try SpecialTokenKeys.read(file), source: source)
    }
}

extension TokenizerLayout {
    public func write(to writer: inout GGUFWriter) {
        writer.set(TokenizerKeys.layout, .string(name))
        writer.set(TokenizerKeys.idOffset, .uint32(UInt32(offset)))
    }

    /// The layout recorded in `file`; plain when it records none (older files).
    public init(gguf file: GGUFFile) throws {
        let source = file.path.lastPathComponentForErrors
        guard let name = file.metadata[TokenizerKeys.layout] else { self = .plain; return }
        let offset = file.metadata[TokenizerKeys.idOffset]?.intValue ?? 0
        guard let name = name.stringValue, offset >= 0, offset <= Int(Int32.max) / 2,
              let layout = TokenizerLayout(name: name, offset: Int32(offset)) else {
            throw TokenizerError.malformedModel(file: source, reason: "\(TokenizerKeys.layout) \(name) with offset \(offset) (known: plain, chatglm, icetk)")
        }
        self = layout
    }
}

extension GLMTokenizer {
    /// The tokenizer stored in `file` with its layout, or nil when it has none.
    public init?(gguf file: GGUFFile) throws {
        guard let vocabulary = try TokenizerVocabulary(gguf: file) else { return nil }
        self.init(Tokenizer(vocabulary), layout: try TokenizerLayout(gguf: file), specialTokens: try SpecialTokenKeys.read(file))
    }
}
