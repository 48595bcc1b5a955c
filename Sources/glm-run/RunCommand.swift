// RunCommand.swift — `glm-run <model.gguf> -p "prompt"`: generate text,
// streaming tokens to stdout as they are produced, speeds at the end.

import ArgumentParser
import Foundation
import GLMDistributed
import GLMRuntime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Generate text from a prompt (the default command).",
        discussion: """
        Without --mask the model continues the prompt ([gMASK] is appended). With --mask it fills \
        every blank written as [MASK] (or [sMASK] for a sentence) inside the prompt, left to right, \
        each fill seeing the earlier ones, and prints the filled text; --max-tokens applies to each \
        blank. Speeds go to stderr at the end.
        """
    )

    @Argument(help: "The model file (.gguf); default: the small bilingual model shipped in models/.")
    var model: String?

    @Option(name: .shortAndLong, help: "The prompt.")
    var prompt: String?

    @Option(name: .customLong("prompt-file"), help: "Read the prompt from a UTF-8 text file.")
    var promptFile: String?

    @Flag(help: "Fill the blanks marked [MASK] or [sMASK] in the prompt instead of continuing it.")
    var mask = false

    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var distributed: MPIOptions

    func validate() throws {
        // the default command takes the model path first: a subcommand's name there
        // means options were put before it (glm-run --plugin X plugins)
        if let model, let sub = GLMRun.configuration.subcommands.first(where: { $0.configuration.commandName == model }) {
            throw ValidationError("'\(model)' is a subcommand, not a model file: put its options after it (glm-run \(model) ...; see glm-run \(sub.configuration.commandName ?? model) --help)")
        }
    }

    func run() throws {
        guard let model = model ?? DefaultModel.path() else {
            throw CLIError("no model file given and no default model found (models/\(DefaultModel.fileName)): glm-run <model.gguf> -p \"prompt\"")
        }
        let prompt = try readPrompt()
        guard distributed.mpi else {
            try runtime.apply()
            let glm = try loadModel(model)
            let (codec, ids) = try encode(prompt, glm, model)
            // blank filling grows the sequence by each span: room for every blank's tokens
            // (both counts are bounded: max tokens by validate(), blanks by the context)
            let blanks = mask ? max(1, ids.filter { [glm.config.tokens.mask, glm.config.tokens.smask].contains($0) }.count) : 1
            let capacity = min(glm.config.contextLength, ids.count + 1 + sampling.maxTokens * blanks)
            let session = try InferenceSession(model: glm, capacity: capacity, kernels: runtime.kernelSet(for: glm), fusion: !runtime.noFusion,
                                               kvType: runtime.kvType)
            return try generate(session: session, codec: codec, ids: ids)
        }
        // the ranks' caches hold the whole context: their size is agreed before rank 0 reads the prompt
        try distributed.run(model: model, runtime: runtime, capacity: nil) { pipeline in
            let (codec, ids) = try encode(prompt, pipeline.model, model)
            try generate(session: try MPISequence(pipeline: pipeline), codec: codec, ids: ids)
        }
    }

    private func encode(_ prompt: String, _ glm: GLMModel, _ path: String) throws -> (PromptBuilder, [Int32]) {
        guard let tokenizer = try TextTokenizers.load(gguf: glm.file!) else {
            throw CLIError("\(path) has no tokenizer; run token ids through it with glm-run logits --ids")
        }
        let codec = PromptBuilder(tokenizer: tokenizer, config: glm.config)
        return (codec, try codec.build(prompt, mode: mask ? .fillBlank : .continueText))
    }

    /// Streams the generated text to stdout, the speeds to stderr.
    private func generate(session: any SequenceForwarding, codec: PromptBuilder, ids: [Int32]) throws {
        let parameters = sampling.parameters
        let s: GenerationStats
        if mask {
            let filler = try BlankFiller(session: session, codec: codec, prompt: ids, parameters: parameters)
            _ = try filler.fillAll { FileHandle.standardOutput.write(Data($0.utf8)) }
            FileHandle.standardOutput.write(Data("\n".utf8))
            s = filler.stats
        } else {
            let stream = try TokenStream(session: session, codec: codec, prompt: ids, parameters: parameters)
            for token in stream {
                FileHandle.standardOutput.write(Data(token.text.utf8))
            }
            // through the same unbuffered handle as the tokens, so it lands before the stats on stderr
            FileHandle.standardOutput.write(Data("\n".utf8))
            if let error = stream.error { throw error }
            s = stream.stats
        }
        printError(String(format: "prompt: %d tokens, %.1f tokens/s; generation: %d tokens, %.1f tokens/s; peak memory %@",
                          s.promptTokens, s.promptTokensPerSecond, s.generatedTokens, s.generatedTokensPerSecond, peakResidentMemory()))
    }

    /// The prompt from -p or --prompt-file; a file must be valid UTF-8.
    private func readPrompt() throws -> String {
        if let prompt { return prompt }
        guard let promptFile else { throw CLIError("no prompt given: use -p \"prompt\" or --prompt-file FILE") }
        guard let data = FileManager.default.contents(atPath: promptFile) else { throw CLIError("\(promptFile): cannot read") }
        guard let text = String(validating: [UInt8](data), as: UTF8.self) else {
            throw CLIError("\(promptFile): the prompt is not valid UTF-8")
        }
        return text
    }
}

/// The model `glm-run` runs when none is named: models/<fileName> in the
/// repository, found from the working directory or from the binary's location
/// (.build/<config>/glm-run), or GLM_DEFAULT_MODEL.
enum DefaultModel {
    static let fileName = "glm-small-bilingual-q4.gguf"

    static func path() -> String? {
        if let path = ProcessInfo.processInfo.environment["GLM_DEFAULT_MODEL"] { return path }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("models/" + fileName),
            binary.appendingPathComponent("../../../models/" + fileName).standardized,
            binary.appendingPathComponent("../../models/" + fileName).standardized,
        ]
        return candidates.map(\.path).first { FileManager.default.fileExists(atPath: $0) }
    }
}
