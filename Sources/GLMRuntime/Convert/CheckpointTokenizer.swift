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
