// SentencePieceModel.swift — reads a SentencePiece `.model` file (a ModelProto,
// field numbers from sentencepiece_model.proto) into a TokenizerVocabulary.
// Only what encoding and decoding need is kept; proto2 defaults apply to
// absent fields.

import Foundation

public enum PieceType: Int32, Sendable, Codable {
    // The values of SentencePiece's enum, which GGUF's token_type also uses.
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// Everything a tokenizer is made of, as stored in a `.model` or a model file.
public struct TokenizerVocabulary: Sendable, Equatable {
    public enum Algorithm: String, Sendable { case unigram, bpe }

    public var algorithm: Algorithm
    public var pieces: [String]
    public var scores: [Float]
    public var types: [PieceType]
    /// What text goes through before encoding (normalizer_spec).
    public var normalizer = NormalizerSpec()
    /// What decoded text goes through, when the model has a denormalizer.
    public var denormalizer: NormalizerSpec?
    public var byteFallback = false
    public var unknownID: Int32 = 0
    /// What decoding shows for the unknown piece (SentencePiece: " \u{2047} ").
    public var unknownSurface = " \u{2047} "
}

extension TokenizerVocabulary {
    /// Parses a `.model` file's bytes; `file` names it in errors.
    public init(sentencePieceModel data: [UInt8], file: String) throws {
        var pieces: [String] = [], scores: [Float] = [], types: [PieceType] = []
        var algorithm = Algorithm.unigram
        var byteFallback = false, unknownID: Int32 = 0, unknownSurface = " \u{2047} "
        var normalizer = NormalizerSpec(), denormalizer: NormalizerSpec?
        do {
            var reader = ProtobufReader(data[...])
            while let (number, field) = try reader.next() {
                switch (number, field) {
                case let (1, .bytes(message)):          // pieces
                    var piece = "", score: Float = 0, type = PieceType.normal
                    var sub = ProtobufReader(message)
                    while let (n, f) = try sub.next() {
                        switch (n, f) {
                        case let (1, .bytes(text)):
                            guard let s = String(validating: Array(text), as: UTF8.self) else {
                                throw TokenizerError.malformedModel(file: file, reason: "piece \(pieces.count) is not UTF-8")
                            }
                            piece = s
                        case let (2, .fixed32(bits)): score = Float(bitPattern: bits)
                        case let (3, .varint(v)):
                            guard let raw = Int32(exactly: v), let t = PieceType(rawValue: raw) else {
                                throw TokenizerError.malformedModel(file: file, reason: "piece \(pieces.count) has type \(v)")
                            }
                            type = t
                        default: break
                        }
                    }
                    pieces.append(piece)
                    scores.append(score)
                    types.append(type)
                case let (2, .bytes(message)):          // trainer_spec
                    var sub = ProtobufReader(message)
                    while let (n, f) = try sub.next() {
                        switch (n, f) {
                        case let (3, .varint(v)):
                            switch v {
                            case 1: algorithm = .unigram
                            case 2: algorithm = .bpe
                            default: throw TokenizerError.unsupported(file: file, feature: "model type \(v) (only unigram and BPE)")
                            }
                        case let (35, .varint(v)): byteFallback = v != 0
                        case let (40, .varint(v)):
                            guard let id = Int32(exactly: v) else { throw TokenizerError.malformedModel(file: file, reason: "unknown id \(v)") }
                            unknownID = id
                        case let (44, .bytes(text)): unknownSurface = String(decoding: text, as: UTF8.self)
                        case let (24, .varint(v)) where v != 0:
                            throw TokenizerError.unsupported(file: file, feature: "treat_whitespace_as_suffix")
                        default: break
                        }
                    }
                case let (3, .bytes(message)):          // normalizer_spec
                    normalizer = try Self.normalizerSpec(message, file: file)
                case let (5, .bytes(message)):          // denormalizer_spec, used when it has a map
                    let spec = try Self.normalizerSpec(message, file: file)
                    if spec.charsMap != nil { denormalizer = NormalizerSpec.denormalizer(spec.charsMap!) }
                default: break
                }
            }
        } catch let error as ProtobufReader.Malformed {
            throw TokenizerError.malformedModel(file: file, reason: error.reason)
        }
        guard !pieces.isEmpty else { throw TokenizerError.malformedModel(file: file, reason: "no pieces") }
        if byteFallback == false, let byte = types.firstIndex(of: .byte) {
            // the library refuses such a model too
            throw TokenizerError.malformedModel(file: file, reason: "byte piece \(pieces[byte]) without byte_fallback")
        }
        guard unknownID >= 0, Int(unknownID) < pieces.count else {
            throw TokenizerError.malformedModel(file: file, reason: "unknown id \(unknownID) outside \(pieces.count) pieces")
        }
        self.init(algorithm: algorithm, pieces: pieces, scores: scores, types: types, normalizer: normalizer,
                  denormalizer: denormalizer, byteFallback: byteFallback,
                  unknownID: unknownID, unknownSurface: unknownSurface)
    }

    /// A NormalizerSpec message: the character map (checked) and the whitespace flags (proto2 defaults: on).
    private static func normalizerSpec(_ message: ArraySlice<UInt8>, file: String) throws -> NormalizerSpec {
        var spec = NormalizerSpec()
        var sub = ProtobufReader(message)
        while let (n, f) = try sub.next() {
            switch (n, f) {
            case let (2, .bytes(map)) where !map.isEmpty:
                do { spec.charsMap = try PrecompiledCharsMap(Array(map)) } catch let error as PrecompiledCharsMap.Malformed {
                    throw TokenizerError.malformedModel(file: file, reason: error.reason)
                }
            case let (3, .varint(v)): spec.addDummyPrefix = v != 0
            case let (4, .varint(v)): spec.removeExtraWhitespaces = v != 0
            case let (5, .varint(v)): spec.escapeWhitespaces = v != 0
            default: break
            }
        }
        return spec
    }

    public init(sentencePieceModelAt path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TokenizerError.missing(file: path) }
        try self.init(sentencePieceModel: [UInt8](data), file: (path as NSString).lastPathComponent)
    }
}
