// LogitsCommand.swift — `glm-run logits <model.gguf> --ids 1,2,3 [--json]`: one
// forward pass over ids laid out exactly as given (positions and mask derived
// from the [gMASK]/[MASK] and sop tokens in them) and the logits of every position.

import ArgumentParser
import Foundation
import GLMRuntime

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logits", abstract: "Print the logits of one forward pass over token ids.")

    @Argument(help: "The model file (.gguf).") var model: String
    @Option(help: "Comma-separated token ids.") var ids: String
    @Flag(help: "Print {\"ids\": [...], \"positions\": [...], \"logits\": [[...], ...]}.") var json = false
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        let parsed = try parseIDs(ids)
        try runtime.apply()
        let glm = try loadModel(model)
        guard parsed.count <= glm.config.contextLength else {
            throw CLIError("\(parsed.count) ids exceed the model's context of \(glm.config.contextLength)")
        }
        let session = try InferenceSession(model: glm, capacity: parsed.count, kernels: runtime.kernelSet(for: glm), fusion: !runtime.noFusion,
                                           kvType: runtime.kvType)
        let logits = try session.forward(parsed, allLogits: true)
        let layout = PromptLayout(ids: parsed, tokens: glm.config.tokens)
        let (positions, blocks) = session.positions(start: 0, count: parsed.count, layout: layout)
        let vocab = glm.config.vocab
        let rows = (0..<parsed.count).map { Array(logits[($0 * vocab)..<(($0 + 1) * vocab)]) }
        if json {
            // block_positions only for 2D-RoPE models (ChatGLM); absent otherwise
            struct Output: Encodable {
                let ids: [Int32]; let positions: [Int32]; let block_positions: [Int32]?; let logits: [[Float]]
            }
            let output = Output(ids: parsed, positions: positions, block_positions: glm.config.rope == .twoD ? blocks : nil, logits: rows)
            print(String(decoding: try JSONEncoder().encode(output), as: UTF8.self))
        } else {
            for (i, row) in rows.enumerated() {
                let best = row.indices.max { row[$0] < row[$1] }!
                print("position \(positions[i]): argmax \(best) (\(row[best])), " + row.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: " ") + " ...")
            }
        }
    }
}
