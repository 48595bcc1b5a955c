// ConvertCommand.swift — `glm-run convert <checkpoint-dir> -o model.gguf --type T`.

import ArgumentParser
import Foundation
import GLMRuntime

extension ConversionType: ExpressibleByArgument {}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint folder into a GGUF model file.",
        discussion: """
        Reads safetensors (single or sharded), PyTorch .bin shards (as ChatGLM-6B is published) and \
        SwissArmyTransformer folders with tensor-parallel mp_rank_XX files (as GLM-130B is released; \
        ranks are merged), with GLM-130B's or ChatGLM-6B's parameter names. Pickles are read as data \
        and never executed. Tensors stream through one at a time. The tokenizer beside them goes into \
        the file: tokenizer.model as it is, or ice_text.model with ChatGLM's or icetk's text rules and \
        the id offset of tokenizer_config.json's num_image_tokens, checked against config.json. q4_row is GLM-130B's per-row INT4, stored losslessly as Q4_0 \
        blocks; matrices whose width is not a multiple of 32 fall back to f16 for the block types.
        """
    )

    @Argument(help: "The checkpoint folder.") var checkpoint: String
    @Option(name: .shortAndLong, help: "The model file to write.") var output: String
    @Option(help: "Weight type: \(ConversionType.allCases.map(\.rawValue).joined(separator: ", ")).") var type: ConversionType = .q4_row
    @Option(help: "config.json for a SAT checkpoint (default: one beside or above the folder).") var config: String?
    @Option(help: "A named configuration for a SAT checkpoint without config.json: glm-130b.") var preset: String?

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIError("\(checkpoint): not a folder")
        }
        let start = Date()
        let tty = isatty(2) != 0
        let converter = ModelConverter(type: type) { p in
            let fraction = Double(p.parametersDone) / Double(max(p.parameters, 1))
            let width = 30, filled = Int(Double(width) * fraction)
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            let elapsed = Date().timeIntervalSince(start)
            let eta = fraction > 0 ? elapsed / fraction - elapsed : 0
            let line = String(format: "converting [%@] %3.0f%% %.2f/%.2f G parameters, ETA %.0f s, %@", bar, fraction * 100,
                              Double(p.parametersDone) / 1e9, Double(p.parameters) / 1e9, eta, p.tensor)
            let last = p.tensorsDone == p.tensors
            if tty { printErrorInline("\r\u{1B}[K" + line + (last ? "\n" : "")) } else if last || p.tensorsDone % 10 == 0 { printError(line) }
        }
        let report = try converter.convert(folder: checkpoint, to: output, configPath: config, preset: preset)
        for note in report.fallbacks { printError("note: \(note)") }
        print(String(format: "wrote %@: %d tensors, %.1f MB of weights (%@) in %.1f s", output, report.tensors,
                     Double(report.bytes) / 1e6, type.rawValue, Date().timeIntervalSince(start)))
    }
}

func printErrorInline(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
