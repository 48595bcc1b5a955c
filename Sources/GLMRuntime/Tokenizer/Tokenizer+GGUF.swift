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
        writer.set(TokenizerKeys.addDummyPrefix, .bool(addDummyPrefix))
        writer.set(TokenizerKeys.removeExtraWhitespaces, .bool(removeExtraWhitespaces))
        writer.set(TokenizerKeys.escapeWhitespaces, .bool(escapeWhitespaces))
        writer.set(TokenizerKeys.byteFallback, .bool(byteFallback))
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
            guard let raw = value.intValue, let t = PieceType(rawValue: Int32(raw)) else {
                throw TokenizerError.malformedModel(file: source, reason: "bad token type")
            }
            return t
        }
        guard !pieces.isEmpty, scores.count == pieces.count, types.count == pieces.count else {
            throw TokenizerError.malformedModel(file: source, reason: "\(pieces.count) tokens, \(scores.count) scores, \(types.count) types")
        }
        let unknown = Int32(file.metadata[TokenizerKeys.unknownID]?.intValue ?? 0)
        guard unknown >= 0, Int(unknown) < pieces.count else {
            throw TokenizerError.malformedModel(file: source, reason: "unknown token id \(unknown) outside the vocabulary")
        }
        func flag(_ key: String, _ value: Bool) -> Bool {
            if case let .bool(b)? = file.metadata[key] { return b }
            return value
        }
        self.init(algorithm: algorithm, pieces: pieces, scores: scores, types: types,
                  addDummyPrefix: flag(TokenizerKeys.addDummyPrefix, true),
                  removeExtraWhitespaces: flag(TokenizerKeys.removeExtraWhitespaces, true),
                  escapeWhitespaces: flag(TokenizerKeys.escapeWhitespaces, true),
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
}
