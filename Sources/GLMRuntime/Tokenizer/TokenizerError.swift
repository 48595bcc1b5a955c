// TokenizerError.swift — what can go wrong reading a tokenizer or its input.

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case malformedModel(file: String, reason: String)
    case unsupported(file: String, feature: String)
    case invalidUTF8(context: String)
    case unknownID(Int32, vocabulary: Int)
    case missing(file: String)

    public var description: String {
        switch self {
        case let .malformedModel(file, reason): return "\(file): malformed SentencePiece model: \(reason)"
        case let .unsupported(file, feature): return "\(file): unsupported tokenizer feature: \(feature)"
        case let .invalidUTF8(context): return "\(context) is not valid UTF-8"
        case let .unknownID(id, vocabulary): return "token id \(id) is outside the vocabulary (\(vocabulary) pieces)"
        case let .missing(file): return "\(file) has no tokenizer"
        }
    }
}
