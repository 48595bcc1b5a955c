// TokenizeCommand.swift — `glm-run tokenize <model.gguf> "text" [--json]`.

import ArgumentParser
import Foundation
import GLMRuntime

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Show the token ids of a text.")

    @Argument(help: "The model file (.gguf).") var model: String
    @Argument(help: "The text.") var text: String
    @Flag(help: "Print {\"ids\": [...], \"pieces\": [...]}.") var json = false

    func run() throws {
        let glm = try loadModel(model)
        guard let vocabulary = try TokenizerVocabulary(gguf: glm.file!) else { throw CLIError("\(model) has no tokenizer") }
        let tokenizer = Tokenizer(vocabulary)
        let codec = PromptBuilder(tokenizer: tokenizer, config: glm.config)
        let ids = codec.encode(text)
        let pieces = ids.map(codec.pieceName)
        if json {
            struct Output: Encodable { let ids: [Int32]; let pieces: [String] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(Output(ids: ids, pieces: pieces)), as: UTF8.self))
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
