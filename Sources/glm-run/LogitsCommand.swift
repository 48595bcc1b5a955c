// LogitsCommand.swift — `glm-run logits <model.gguf> --ids 1,2,3 [--json]`: one
// forward pass over ids laid out exactly as given (positions and mask derived
// from the [gMASK]/[MASK] and sop tokens in them) and the logits of every position.

import ArgumentParser
import Foundation
import GLMDistributed
import GLMRuntime

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logits", abstract: "Print the logits of one forward pass over token ids.")

    @Argument(help: "The model file (.gguf).") var model: String
    @Option(help: "Comma-separated token ids.") var ids: String
    @Flag(help: "Print {\"ids\": [...], \"positions\": [...], \"logits\": [[...], ...]}.") var json = false
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var distributed: MPIOptions

    func run() throws {
        let parsed = try parseIDs(ids)
        guard distributed.mpi else {
            try runtime.apply()
            let glm = try loadModel(model)
            try checkContext(parsed, glm)
            let session = try InferenceSession(model: glm, capacity: parsed.count, kernels: runtime.kernelSet(for: glm), fusion: !runtime.noFusion,
                                               kvType: runtime.kvType)
            return try printLogits(try session.forward(parsed, allLogits: true), of: parsed, glm)
        }
        // every rank holds its own layers; rank 0 prints exactly what the line above would
        try distributed.run(model: model, runtime: runtime, capacity: parsed.count) { pipeline in
            try checkContext(parsed, pipeline.model)
            try printLogits(try MPISequence(pipeline: pipeline).forward(parsed, allLogits: true), of: parsed, pipeline.model)
        }
    }

    private func checkContext(_ parsed: [Int32], _ glm: GLMModel) throws {
        guard parsed.count <= glm.config.contextLength else {
            throw CLIError("\(parsed.count) ids exceed the model's context of \(glm.config.contextLength)")
        }
    }

    private func printLogits(_ logits: [Float], of parsed: [Int32], _ glm: GLMModel) throws {
        let layout = PromptLayout(ids: parsed, tokens: glm.config.tokens)
        let (positions, blocks) = (0..<parsed.count).map { glm.architecture.positions(at: $0, layout: layout) }
            .reduce(into: ([Int32](), [Int32]())) { $0.0.append($1.0); $0.1.append($1.1) }
        let vocab = glm.config.vocab
        let rows = (0..<parsed.count).map { Array(logits[($0 * vocab)..<(($0 + 1) * vocab)]) }
        if json {
            // block_positions only for 2D-RoPE models (ChatGLM); absent otherwise
            struct Output: Encodable {
                let ids: [Int32]; let positions: [Int32]; let block_positions: [Int32]?; let logits: [[Float]]
            }
            let output = Output(ids: parsed, positions: positions, block_positions: glm.config.rope == .twoD ? blocks : nil, logits: rows)
            // sorted keys: the same bytes from every run (rank 0 of an MPI job prints what one process does)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            for (i, row) in rows.enumerated() {
                let best = row.indices.max { row[$0] < row[$1] }!
                print("position \(positions[i]): argmax \(best) (\(row[best])), " + row.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: " ") + " ...")
            }
        }
    }
}
