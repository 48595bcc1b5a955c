// InfoCommand.swift — `glm-run info <model.gguf>`: architecture, sizes, tensor types, bytes.

import ArgumentParser
import Foundation
import GLMRuntime

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe a model file.")

    @Argument(help: "The model file (.gguf).") var model: String

    func run() throws {
        let glm = try loadModel(model)
        let c = glm.config
        let file = glm.file!
        print("file:          \(model) (GGUF v\(file.version), \(file.tensors.count) tensors)")
        print("architecture:  \(c.architecture)")
        print("layers:        \(c.layers)")
        print("hidden:        \(c.hidden) (\(c.heads) heads x \(c.headDim))")
        print("feed-forward:  \(c.feedForward.rawValue), inner \(c.ffnInner)")
        print("vocabulary:    \(c.vocab)")
        print("context:       \(c.contextLength)")
        print("RoPE:          \(c.rope.codedName), \(c.rotaryDim) of \(c.headDim) values per head, base \(c.ropeBase)")
        print("attention:     \(c.heads) query heads, \(c.kvHeads) key/value heads, \(c.bidirectionalPrefix ? "bidirectional before sop" : "causal")")
        print("layer:         \(c.residual.rawValue), \(c.norm.rawValue)\(c.residual == .deepNorm ? ", residual alpha \(c.alpha)" : "")")
        if let format = c.chatFormat { print("chat format:   \(format.rawValue)") }
        print("output:        \(c.tiedOutput ? "tied to the token embedding" : "separate lm_head")")
        if let bpe = try ByteLevelBPE(gguf: file) {
            print("tokenizer:     byte-level BPE (\(bpe.rule == .tokenRank ? "tiktoken ranks" : "merge list")), \(bpe.tokens.count) tokens, \(bpe.specialTokens.count) special")
        } else if let tokenizer = try GLMTokenizer(gguf: file) {
            let v = tokenizer.sentencePiece.vocabulary
            let layout = tokenizer.layout == .plain ? "" : ", \(tokenizer.layout.name) layout (ids from \(tokenizer.layout.offset))"
            let normalizer = v.normalizer.charsMap == nil ? "identity" : "character map"
            let specials = tokenizer.specialTokens.isEmpty ? "" : ", \(tokenizer.specialTokens.count) special tokens after them"
            print("tokenizer:     SentencePiece \(v.algorithm.rawValue), \(v.pieces.count) pieces\(layout), \(normalizer) normalizer\(specials)")
        } else {
            print("tokenizer:     none")
        }
        var byType: [String: (count: Int, bytes: Int)] = [:]
        for t in file.tensors { byType[t.type.name, default: (0, 0)].count += 1; byType[t.type.name, default: (0, 0)].bytes += t.byteCount }
        for (type, v) in byType.sorted(by: { $0.key < $1.key }) {
            print(String(format: "tensors %-6@ %4d, %10.2f MB", type, v.count, Double(v.bytes) / 1e6))
        }
        print(String(format: "weights:       %.2f MB", Double(glm.weightBytes) / 1e6))
    }
}
