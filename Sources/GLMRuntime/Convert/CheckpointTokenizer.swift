// CheckpointTokenizer.swift — the tokenizer beside a checkpoint and the layout
// its ids follow, chosen from the folder's files with no flags:
//  - tokenizer.model: a plain SentencePiece model, model id = piece id;
//  - ice_text.model: THUDM's text model, read through the architecture's
//    rules (ChatGLM's SPTokenizer, or GLM-130B's icetk) with an id offset of
//    tokenizer_config.json's num_image_tokens; without that file the offset
//    is where config.json puts [MASK].
// The layout is checked against config.json: every special id must be the
// offset plus the piece of that name, and the vocabulary must hold every
// text id. An inconsistent folder is refused, naming both numbers.
//
// The pre-norm kin (KinTokenizer below) bring their own: ChatGLM2/3's
// SentencePiece with GLM's and the chat roles' tokens numbered after it,
// GLM-4-9B's tiktoken file, GLM-4-0414's tokenizer.json.

import Foundation

struct CheckpointTokenizer {
    let vocabulary: TokenizerVocabulary
    let layout: TokenizerLayout

    /// The tokenizer in `folder`, or nil when it has none.
    static func find(in folder: String, config: ModelConfig, architecture: any GLMArchitecture.Type) throws -> CheckpointTokenizer? {
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        let files = FileManager.default
        if files.fileExists(atPath: path("tokenizer.model")) {
            let vocabulary = try TokenizerVocabulary(sentencePieceModelAt: path("tokenizer.model"))
            let tokenizer = CheckpointTokenizer(vocabulary: vocabulary, layout: .plain)
            try tokenizer.check(config, source: folder)
            return tokenizer
        }
        guard files.fileExists(atPath: path("ice_text.model")) else { return nil }
        let vocabulary = try TokenizerVocabulary(sentencePieceModelAt: path("ice_text.model"))
        let offset = try imageTokens(path("tokenizer_config.json")) ?? inferredOffset(vocabulary, config: config, source: folder)
        let tokenizer = CheckpointTokenizer(vocabulary: vocabulary, layout: architecture.iceTextLayout(offset: offset))
        try tokenizer.check(config, source: folder)
        return tokenizer
    }

    /// tokenizer_config.json's num_image_tokens, when the file and the key are there.
    private static func imageTokens(_ path: String) throws -> Int32? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelFileError.badConfig(file: path, reason: "not a JSON object")
        }
        guard let value = json["num_image_tokens"] else { return nil }
        guard let n = value as? Int, n >= 0, n <= 1 << 24 else {
            throw ModelFileError.badConfig(file: path, reason: "num_image_tokens \(value) is not an integer in [0, 2^24]")
        }
        return Int32(n)
    }

    /// The offset that puts ice_text's [MASK] at config.json's mask id.
    private static func inferredOffset(_ vocabulary: TokenizerVocabulary, config: ModelConfig, source: String) throws -> Int32 {
        guard let mask = vocabulary.pieces.firstIndex(of: "[MASK]") else {
            throw ModelFileError.badConfig(file: "\(source)/ice_text.model", reason: "no [MASK] piece")
        }
        let offset = Int(config.tokens.mask) - mask
        guard offset >= 0 else {
            throw ModelFileError.badConfig(file: source, reason: "config.json puts [MASK] at \(config.tokens.mask), below ice_text.model's piece \(mask)")
        }
        return Int32(offset)
    }

    /// Every special id of the config is offset + the piece of its name; the vocabulary holds every text id.
    func check(_ config: ModelConfig, source: String) throws {
        let offset = Int(layout.offset)
        guard offset + vocabulary.pieces.count <= config.vocab else {
            throw ModelFileError.badConfig(file: source, reason: "the tokenizer's \(vocabulary.pieces.count) pieces from id \(offset) do not fit the model's vocabulary of \(config.vocab)")
        }
        guard layout != .plain else { return }
        let t = config.tokens
        var expected: [(String, Int32)] = [("[MASK]", t.mask), ("[gMASK]", t.gmask), ("<sop>", t.sop), ("<eop>", t.eop)]
        if let smask = t.smask { expected.append(("[sMASK]", smask)) }
        for (piece, id) in expected {
            guard let index = vocabulary.pieces.firstIndex(of: piece) else {
                throw ModelFileError.badConfig(file: source, reason: "the tokenizer has no \(piece) piece")
            }
            guard offset + index == Int(id) else {
                throw ModelFileError.badConfig(file: source, reason: "config.json says \(piece) is \(id), but the tokenizer (offset \(offset) + piece \(index)) makes it \(offset + index): num_image_tokens and the config disagree")
            }
        }
    }
}

/// A kin checkpoint's tokenizer, and the GLM token ids it fixes in the config.
enum KinTokenizer {
    case sentencePiece(TokenizerVocabulary, specials: [String: Int32])
    case bpe(ByteLevelBPE)

    /// ChatGLM2/3's SPTokenizer special tokens, numbered after the SentencePiece pieces in this order.
    static let chatGLM2Specials = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]

    /// The tokenizer in `folder`: tokenizer.json, else tokenizer.model (tiktoken or SentencePiece); nil when none.
    static func find(in folder: String) throws -> KinTokenizer? {
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        let files = FileManager.default
        if let data = files.contents(atPath: path("tokenizer.json")) {
            return .bpe(try ByteLevelBPE(tokenizerJSON: data, source: "\(folder)/tokenizer.json"))
        }
        guard let data = files.contents(atPath: path("tokenizer.model")) else { return nil }
        if ByteLevelBPE.isTiktoken(data) {
            return .bpe(try ByteLevelBPE(tiktoken: data, specialTokens: try configuredSpecials(path("tokenizer_config.json")),
                                         source: "\(folder)/tokenizer.model"))
        }
        let vocabulary = try TokenizerVocabulary(sentencePieceModel: [UInt8](data), file: "\(folder)/tokenizer.model")
        let specials = Dictionary(uniqueKeysWithValues: chatGLM2Specials.enumerated().map { ($1, Int32(vocabulary.pieces.count + $0)) })
        return .sentencePiece(vocabulary, specials: specials)
    }

    /// tokenizer_config.json's added_tokens_decoder ({"id": {"content": ...}}) beyond the ranks, when the file has it.
    private static func configuredSpecials(_ path: String) throws -> [String: Int32]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelFileError.badConfig(file: path, reason: "not a JSON object")
        }
        guard let added = json["added_tokens_decoder"] as? [String: Any], !added.isEmpty else { return nil }
        var out: [String: Int32] = [:]
        for (key, value) in added {
            guard let id = Int32(key), id >= 0, let content = (value as? [String: Any])?["content"] as? String else {
                throw ModelFileError.badConfig(file: path, reason: "added_tokens_decoder entry \(key) has no id and content")
            }
            out[content] = id
        }
        return out
    }

    var specials: [String: Int32] {
        switch self {
        case let .sentencePiece(_, specials): return specials
        case let .bpe(bpe): return bpe.specialTokens
        }
    }

    var textTokens: Int {
        switch self {
        case let .sentencePiece(v, _): return v.pieces.count
        case let .bpe(bpe): return bpe.tokens.count
        }
    }

    /// The config with its GLM token ids from the tokenizer ([MASK], [gMASK], sop, eop by
    /// either spelling), checked to fit the model's vocabulary.
    func configure(_ config: ModelConfig, source: String) throws -> ModelConfig {
        var c = config
        let s = specials
        guard let gmask = s["[gMASK]"], let sop = s["<sop>"] ?? s["sop"] else {
            throw ModelFileError.badConfig(file: source, reason: "the tokenizer has no [gMASK] and sop tokens")
        }
        c.tokens.gmask = gmask
        c.tokens.sop = sop
        c.tokens.mask = s["[MASK]"] ?? gmask
        c.tokens.smask = s["[sMASK]"]
        c.tokens.eop = s["<eop>"] ?? s["eop"] ?? c.tokens.eos
        let largest = max(textTokens - 1, s.values.max().map(Int.init) ?? 0)
        guard largest < c.vocab else {
            throw ModelFileError.badConfig(file: source, reason: "the tokenizer's ids reach \(largest), beyond the model's vocabulary of \(c.vocab)")
        }
        return c
    }

    func write(to writer: inout GGUFWriter) {
        switch self {
        case let .sentencePiece(vocabulary, specials):
            vocabulary.write(to: &writer)
            TokenizerLayout.plain.write(to: &writer)
            SpecialTokenKeys.write(specials, to: &writer)
        case let .bpe(bpe):
            bpe.write(to: &writer)
        }
    }
}
