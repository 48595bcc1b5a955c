// TokenizeCommand.swift — `glm-run tokenize MODEL "text" [--json]` and
// `glm-run detokenize MODEL --ids 1,2,3`: the model's tokenizer with its
// layout's rules (ChatGLM's line-break, tab and blank pieces and id offset,
// icetk's offset), as THUDM's code gives them.

import ArgumentParser
import Foundation
import GLMRuntime

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Show the token ids of a text.",
        discussion: """
        The ids are the model's: for ChatGLM and GLM-130B tokenizers the SentencePiece ids plus the \
        image-token offset. Special tokens written in the text ([MASK], [gMASK], [sMASK], <sop>, <eop>) \
        become their ids. --json also prints each id's piece.
        """)

    @Argument(help: "The model file (.gguf).") var model: String
    @Argument(help: "The text.") var text: String
    @Flag(help: "Print {\"ids\": [...], \"pieces\": [...]}.") var json = false

    func run() throws {
        let (_, codec) = try loadTokenizer(model)
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

struct DetokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detokenize", abstract: "Show the text of token ids.",
        discussion: """
        Decodes as THUDM's tokenizer code does for the model's layout: ids below the image-token offset \
        are dropped, control pieces vanish, and ChatGLM's <n>, <|tab|> and <|blank_N|> pieces become \
        line breaks, tabs and spaces. Prints the text and a newline.
        """)

    @Argument(help: "The model file (.gguf).") var model: String
    @Option(help: "Comma-separated token ids, e.g. 20005,20100,150001.") var ids: String

    func run() throws {
        let (glm, codec) = try loadTokenizer(model)
        let values = try parseIDs(ids)
        if let bad = values.first(where: { $0 < 0 || Int($0) >= glm.config.vocab }) {
            throw CLIError("token id \(bad) is outside the model's vocabulary [0, \(glm.config.vocab))")
        }
        let known = codec.tokenizer.idRange
        print(try codec.tokenizer.decode(values.filter { $0 < known.upperBound }))
    }
}

/// The model's config and its tokenizer inside a prompt builder; a clear error when it has none.
func loadTokenizer(_ model: String) throws -> (GLMModel, PromptBuilder) {
    let glm = try loadModel(model)
    guard let tokenizer = try TextTokenizers.load(gguf: glm.file!) else { throw CLIError("\(model) has no tokenizer") }
    return (glm, PromptBuilder(tokenizer: tokenizer, config: glm.config))
}
