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
        self.init(Tokenizer(vocabulary), layout: try TokenizerLayout(gguf: file))
    }
}
