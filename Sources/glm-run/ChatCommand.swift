// ChatCommand.swift — `glm-run chat [MODEL]`: a conversation on a terminal or
// on piped stdin. Each line is a message; the answer streams back. `clear`
// forgets the history, `stop` (or end of input, Ctrl-D) ends the chat.

import ArgumentParser
import Foundation
import GLMRuntime

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model: one message per line, answers streamed.",
        discussion: """
        Each model gets its own chat template: ChatGLM-6B's [Round i] 问：… 答：…, ChatGLM2's rounds, \
        ChatGLM3's and GLM-4's role tokens (<|user|>, <|assistant|>); GLM-130B has none, so its chat is a \
        plain continuation of the conversation. GLM-130B and ChatGLM-6B run every turn's whole prompt \
        again (they attend bidirectionally over the prompt, so a new turn changes every earlier \
        position's keys); the causal ChatGLM2/3 and GLM-4 keep the KV cache of the earlier turns and run \
        only the new tokens. When the history no longer fits the context, the oldest turns are dropped \
        and the chat says so. \
        Type `clear` to forget the history and `stop` (or Ctrl-D) to leave. On a terminal a prompt is \
        shown; with piped input each answer is written to stdout followed by a newline.
        """
    )

    @Argument(help: "The model file (.gguf); default: the small bilingual model shipped in models/.")
    var model: String?

    @Option(help: "Tokens the conversation's KV cache holds (default: the model's context, at most \(ChatCommand.defaultContext): the kin's contexts of 32K-128K tokens would take gigabytes).")
    var context: Int?

    static let defaultContext = 8192

    @Option(help: "A system message, for the templates that have a system role (ChatGLM3, GLM-4).")
    var system: String?

    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        guard let model = model ?? DefaultModel.path() else {
            throw CLIError("no model file given and no default model found (models/\(DefaultModel.fileName)): glm-run chat <model.gguf>")
        }
        try runtime.apply()
        let (glm, codec) = try loadTokenizer(model)
        if let context, !(1...(1 << 20)).contains(context) { throw ValidationError("--context must be in 1...2^20, got \(context)") }
        let capacity = min(context ?? ChatCommand.defaultContext, glm.config.contextLength)
        if context == nil, glm.config.contextLength > capacity {
            printError("(the chat holds \(capacity) of the model's \(glm.config.contextLength) context tokens; --context raises it)")
        }
        let session = try InferenceSession(model: glm, capacity: capacity, kernels: runtime.kernelSet(for: glm),
                                           fusion: !runtime.noFusion, kvType: runtime.kvType)
        let chat = ChatSession(session: session, codec: codec)
        chat.system = system
        let terminal = isatty(0) != 0
        if terminal { printError("Chatting with \((model as NSString).lastPathComponent). `clear` forgets the history, `stop` or Ctrl-D ends.") }
        var parameters = sampling.parameters
        while true {
            if terminal { FileHandle.standardOutput.write(Data("> ".utf8)) }
            guard let line = readLine(strippingNewline: true) else { break }
            let message = line.trimmingCharacters(in: .whitespaces)
            if message.isEmpty { continue }
            if message == "stop" { break }
            if message == "clear" {
                chat.clear()
                printError("(history cleared)")
                continue
            }
            let reply = try chat.respond(message, parameters: parameters) { FileHandle.standardOutput.write(Data($0.utf8)) }
            FileHandle.standardOutput.write(Data("\n".utf8))
            if reply.droppedTurns > 0 {
                printError("(dropped the \(reply.droppedTurns) oldest turn\(reply.droppedTurns == 1 ? "" : "s"): the history no longer fits the context of \(capacity) tokens)")
            }
            parameters.seed &+= 1 // each turn its own sampling stream, the chat still repeatable
        }
    }
}
