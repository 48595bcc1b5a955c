// ConvertCommand.swift — `glm-run convert <checkpoint-dir> -o model.gguf --type T`.

import ArgumentParser
import Foundation
import GLMRuntime

extension ConversionType: ExpressibleByArgument {}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint folder (config.json + *.safetensors) into a GGUF model file.",
        discussion: """
        Reads GLM-130B (SwissArmyTransformer names, its own config.json) and ChatGLM-6B (Hugging Face \
        config) checkpoints, single-file or sharded (model.safetensors.index.json). A tokenizer.model \
        beside them goes into the file. q4_row is GLM-130B's per-row INT4, stored losslessly as Q4_0 \
        blocks; matrices whose width is not a multiple of 32 fall back to f16 for the block types.
        """
    )

    @Argument(help: "The checkpoint folder.") var checkpoint: String
    @Option(name: .shortAndLong, help: "The model file to write.") var output: String
    @Option(help: "Weight type: \(ConversionType.allCases.map(\.rawValue).joined(separator: ", ")).") var type: ConversionType = .q4_row

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIError("\(checkpoint): not a folder")
        }
        let start = Date()
        let tty = isatty(2) != 0
        let converter = ModelConverter(type: type) { done, total, name in
            let width = 30, filled = width * done / total
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            let line = "converting [\(bar)] \(done)/\(total) \(name)"
            if tty { printErrorInline("\r\u{1B}[K" + line + (done == total ? "\n" : "")) } else if done == total || done % 10 == 0 { printError(line) }
        }
        let report = try converter.convert(folder: checkpoint, to: output)
        for note in report.fallbacks { printError("note: \(note)") }
        print(String(format: "wrote %@: %d tensors, %.1f MB of weights (%@) in %.1f s", output, report.tensors,
                     Double(report.bytes) / 1e6, type.rawValue, Date().timeIntervalSince(start)))
    }
}

func printErrorInline(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
