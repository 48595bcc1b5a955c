// Architecture.swift — what differs between GLM-family architectures, behind
// one protocol: the layer's traits (RoPE form, feed-forward), how a checkpoint's
// config.json maps to ModelConfig, how token ids lay out into position ids,
// the tokenizer and chat conventions, and the released models' dimensions.
// Nothing outside Architectures/ tests an architecture's name: the model-file
// reader, the prompt builder, the cost model and the bench ask these traits.
// Adding an architecture is one file and one line in `all`.

import Foundation
import KernelBridge

public protocol GLMArchitecture: Sendable {
    /// `general.architecture` in the model file.
    static var name: String { get }
    /// RoPE over the whole head (1D), or half by position and half by block position (2D).
    static var rope: RoPEShape.Form { get }
    /// The feed-forward's activation: GeGLU with erf GeLU, GeLU in its tanh form, or SwiGLU.
    static var feedForward: ModelConfig.FeedForward { get }
    /// LayerNorm or RMSNorm.
    static var norm: ModelConfig.Norm { get }
    /// DeepNorm post-LN, pre-norm, or pre-norm with branch-output norms.
    static var residual: ModelConfig.Residual { get }
    /// Which checkpoint tensors fill which model-file tensors, with their shapes.
    static func checkpointTensors(_ config: ModelConfig) -> [CheckpointNames.Entry]
    /// Released models' configurations by lowercase name (`glm-run pipeline plan NAME`, the bench).
    static var presets: [String: ModelConfig] { get }
    /// Checkpoint configs (config.json contents) of released models whose checkpoints carry none (`convert --preset`).
    static var checkpointPresets: [String: [String: Any]] { get }
    /// Whether a checkpoint folder's config.json describes this architecture.
    static func recognises(checkpointConfig: [String: Any]) -> Bool
    /// The hyperparameters from a checkpoint's config.json.
    static func config(fromCheckpoint json: [String: Any], source: String) throws -> ModelConfig
    /// Position ids of token index t, given the prompt's layout (see PromptLayout).
    static func positions(at t: Int, layout: PromptLayout) -> (position: Int32, block: Int32)
    /// The rules THUDM's code reads ice_text.model with, ids shifted by `offset`.
    static func iceTextLayout(offset: Int32) -> TokenizerLayout
    /// Whether a blank-filling prompt gets eos after text that does not end in a mask.
    static var eosAfterBlankText: Bool { get }
    /// What the authors' chat code does to a finished answer before showing it.
    static func postprocessResponse(_ text: String) -> String
    /// The prompt text of a chat turn: the earlier turns and the new query
    /// (the prompt builder then adds [gMASK] <sop>).
    static func chatPrompt(history: [ChatTurn], query: String) -> String
    /// The prompt of a chat turn as special tokens and text, for the architectures whose
    /// template uses role tokens (user text then never becomes a special token); nil:
    /// chatPrompt's text.
    static func chatPieces(format: ChatFormat?, system: String?, history: [ChatTurn], query: String) -> [PromptPiece]?
}

/// How a chat's turns become a prompt (the model file's `<arch>.chat_format`).
public enum ChatFormat: String, Sendable, Codable {
    /// ChatGLM2: "[Round i]\n\n问：q\n\n答：a\n\n" after [gMASK] sop.
    case rounds = "chatglm2"
    /// ChatGLM3 and GLM-4: [gMASK] sop, each message its role token, metadata, a line break and its text.
    case roles
}

/// A part of a prompt: a special token by spelling, or text for the tokenizer.
public enum PromptPiece: Sendable, Equatable {
    case special(String)
    case text(String)
}

/// One finished exchange of a chat.
public struct ChatTurn: Sendable, Equatable {
    public let query: String
    public let answer: String
    public init(query: String, answer: String) { (self.query, self.answer) = (query, answer) }
}

extension GLMArchitecture {
    public static var norm: ModelConfig.Norm { .layerNorm }
    public static var residual: ModelConfig.Residual { .deepNorm }
    public static func checkpointTensors(_ config: ModelConfig) -> [CheckpointNames.Entry] { CheckpointNames.plan(config) }
    public static var presets: [String: ModelConfig] { [:] }
    public static var checkpointPresets: [String: [String: Any]] { [:] }

    public static func postprocessResponse(_ text: String) -> String { text }
    // The causal kin's: position ids 0 ..< L (their position_ids are arange), no ice_text
    // rules, no blanks to fill. GLM-130B and ChatGLM-6B define their own.
    public static func positions(at t: Int, layout: PromptLayout) -> (position: Int32, block: Int32) { (Int32(t), 0) }
    public static func iceTextLayout(offset: Int32) -> TokenizerLayout { .plain }
    public static var eosAfterBlankText: Bool { false }
    public static func chatPieces(format: ChatFormat?, system: String?, history: [ChatTurn], query: String) -> [PromptPiece]? { nil }

    /// No chat format: the conversation so far, one line per query and answer, continued.
    public static func chatPrompt(history: [ChatTurn], query: String) -> String {
        (history.flatMap { [$0.query, $0.answer] } + [query]).joined(separator: "\n")
    }
}

extension ModelConfig {
    /// The architecture this config names (the model file was checked against the registry when read).
    public var architectureType: (any GLMArchitecture.Type)? { Architectures.named(architecture) }
}

public enum Architectures {
    /// Every architecture this runtime runs, keyed by its model-file name.
    public static let all: [any GLMArchitecture.Type] = [GLM130B.self, ChatGLM6B.self, ChatGLM2.self, GLM4.self, GLM4_0414.self]

    public static func named(_ name: String) -> (any GLMArchitecture.Type)? { all.first { $0.name == name } }
    public static var names: [String] { all.map { $0.name } }

    /// A released model's configuration by name, from whichever architecture names it.
    public static func preset(_ name: String) -> ModelConfig? {
        for arch in all { if let c = arch.presets[name.lowercased()] { return c } }
        return nil
    }

    /// Every preset name, sorted.
    public static var presetNames: [String] { all.flatMap { $0.presets.keys }.sorted() }
}

/// Where the prompt's special tokens sit; the reference code derives the
/// attention mask and the position ids from these alone.
public struct PromptLayout: Sendable, Equatable {
    /// Index of the first start-of-piece token; the tokens before it form the
    /// bidirectional context. Equal to the prompt length when there is no sop.
    public let sopIndex: Int
    /// Index of [gMASK] when present, otherwise of [MASK]; nil when neither is.
    public let maskIndex: Int?
    /// True when the mask is [gMASK] (continue the text) rather than [MASK] (fill a blank).
    public let isGMask: Bool

    public init(sopIndex: Int, maskIndex: Int?, isGMask: Bool) {
        (self.sopIndex, self.maskIndex, self.isGMask) = (sopIndex, maskIndex, isGMask)
    }

    public init(ids: [Int32], tokens: SpecialTokens) {
        sopIndex = ids.firstIndex(of: tokens.sop) ?? ids.count
        if let g = ids.firstIndex(of: tokens.gmask) {
            maskIndex = g
            isGMask = true
        } else {
            maskIndex = ids.firstIndex(of: tokens.mask)
            isGMask = false
        }
    }

    /// Keys every query sees: everything before sop (the reference's context).
    public var bidirectionalLength: Int { sopIndex }
}

// MARK: - Reading config.json values

/// Whether a JSONSerialization value is true or false. Foundation hands out
/// JSON numbers as NSNumber, for which `is Bool` also holds when they are 0 or
/// 1; its booleans have their own class.
public func isJSONBool(_ value: Any) -> Bool {
    type(of: value) == Bool.self || String(describing: type(of: value)).hasSuffix("Boolean")
}

struct ConfigReader {
    let json: [String: Any]
    let source: String

    /// The largest size any config field may take; real GLM models are far below it.
    static let sizeLimit = 1 << 24

    /// An integer field (the first of `keys` present), which must lie in `range`.
    func int(_ keys: String..., in range: ClosedRange<Int> = 0...ConfigReader.sizeLimit) throws -> Int {
        for key in keys {
            guard let raw = json[key] else { continue }
            return try Self.integer(raw, key: key, in: range, source: source)
        }
        throw ModelFileError.badConfig(file: source, reason: "missing integer '\(keys.joined(separator: "' or '"))'")
    }

    func optionalInt(_ key: String, in range: ClosedRange<Int> = 0...ConfigReader.sizeLimit) throws -> Int? {
        guard let raw = json[key], !(raw is NSNull) else { return nil }
        return try Self.integer(raw, key: key, in: range, source: source)
    }

    /// A token id field: an integer in [0, 2^31).
    func tokenID(_ key: String) throws -> Int32 { Int32(try int(key, in: 0...Int(Int32.max))) }

    func optionalTokenID(_ key: String) throws -> Int32? { try optionalInt(key, in: 0...Int(Int32.max)).map(Int32.init) }

    /// A JSON number that is an integer in `range` (a whole Double such as 2.0 counts).
    static func integer(_ raw: Any, key: String, in range: ClosedRange<Int>, source: String) throws -> Int {
        var value: Int?
        if let v = raw as? Int { value = v } else if let v = raw as? Double { value = Int(exactly: v) }
        guard let v = value, !isJSONBool(raw), range.contains(v) else {
            throw ModelFileError.badConfig(file: source, reason: "'\(key)' is \(raw), expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    func float(_ key: String, default value: Float) throws -> Float {
        guard let raw = json[key] else { return value }
        guard let v = (raw as? Double) ?? (raw as? Int).map(Double.init), v.isFinite, abs(v) < 1e30 else {
            throw ModelFileError.badConfig(file: source, reason: "'\(key)' is \(raw), expected a finite number")
        }
        return Float(v)
    }

    func bool(_ key: String, default value: Bool) -> Bool { json[key] as? Bool ?? value }

    /// The end-of-text id: an integer, or the first of a list (transformers' GLM-4 configs).
    func eosTokenID() throws -> Int32 {
        if let list = json["eos_token_id"] as? [Any] {
            guard let first = list.first else { throw ModelFileError.badConfig(file: source, reason: "'eos_token_id' is an empty list") }
            return Int32(try Self.integer(first, key: "eos_token_id", in: 0...Int(Int32.max), source: source))
        }
        return try tokenID("eos_token_id")
    }

    /// Throws unless `key` is absent or equal to `expected`: a variant this runtime does not run.
    func require(_ key: String, is expected: Bool, _ what: String) throws {
        guard let raw = json[key] else { return }
        guard let value = raw as? Bool, value == expected else {
            throw ModelFileError.badConfig(file: source, reason: "'\(key)' is \(raw): \(what) is not supported")
        }
    }
}
