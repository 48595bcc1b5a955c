// EvalCommand.swift — `glm-run eval <model> --text <file>`: per-token
// log-likelihood and perplexity of a text, with a progress bar.

import ArgumentParser
import Foundation
import GLMRuntime

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Per-token log-likelihood and perplexity of a text file.",
        discussion: """
        Documents are separated by lines holding only "%" (the fortune format); a file without them \
        is one document. Each is scored as [gMASK] <sop> text, truncated to the model's context.
        """
    )

    @Argument(help: "The model file (.gguf).") var model: String
    @Option(help: "The UTF-8 text file.") var text: String
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let glm = try loadModel(model)
        guard let tokenizer = try TextTokenizers.load(gguf: glm.file!) else { throw CLIError("\(model) has no tokenizer") }
        guard let data = FileManager.default.contents(atPath: text) else { throw CLIError("\(text): cannot read") }
        guard let content = String(validating: [UInt8](data), as: UTF8.self) else { throw CLIError("\(text): not valid UTF-8") }
        let documents = Perplexity.documents(content)
        guard !documents.isEmpty else { throw CLIError("\(text): no text to evaluate") }
        let tty = isatty(2) != 0
        let result = try Perplexity.evaluate(model: glm, codec: PromptBuilder(tokenizer: tokenizer, config: glm.config),
                                             documents: documents, kernels: runtime.kernelSet(for: glm)) { done, total in
            guard tty || done == total else { return }
            let width = 30, filled = width * done / total
            printErrorInline("\r\u{1B}[Kevaluating [" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                             + "] \(done)/\(total) documents" + (done == total ? "\n" : ""))
        }
        if json {
            struct Output: Encodable { let documents: Int; let tokens: Int; let nll_per_token: Double; let perplexity: Double }
            let o = Output(documents: result.documents, tokens: result.tokens, nll_per_token: result.meanNLL, perplexity: result.perplexity)
            print(String(decoding: try JSONEncoder().encode(o), as: UTF8.self))
        } else {
            print(String(format: "%d documents, %d tokens: %.4f nats/token, perplexity %.3f", result.documents, result.tokens,
                         result.meanNLL, result.perplexity))
        }
    }
}
