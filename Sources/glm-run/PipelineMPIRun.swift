// PipelineMPIRun.swift — `glm-run pipeline run MODEL --mpi` under mpirun: the
// model's stages are the job's ranks. Three phases, each timed on rank 0 and
// compared with the simulator fed with the per-chunk stage times the ranks
// measured in that phase:
//   0. prefill: every prompt (one per micro-batch) goes in, then all logits come back;
//   1. batched decode: each sequence's next (greedy) token goes in as soon as its
//      logits are back, so with as many sequences as ranks every rank is busy;
//   2. one sequence alone: each token passes every rank in turn, P - 1 of them idle.

import ArgumentParser
import Foundation
import GLMDistributed
import GLMRuntime

extension PipelineRunCommand {
    func runMPI() throws {
        guard (1...4096).contains(microBatches), (3...(1 << 20)).contains(tokens), (1...100_000).contains(decodeSteps) else {
            throw ValidationError("need micro-batches in 1...4096, tokens in 3...2^20 and decode steps in 1...100000")
        }
        try distributed.run(model: model, runtime: runtime, sequences: microBatches, capacity: tokens + 2 * decodeSteps) { pipeline in
            let c = pipeline.model.config
            guard tokens + 2 * decodeSteps <= c.contextLength else {
                throw CLIError("\(tokens) prompt tokens and 2 x \(decodeSteps) decode steps exceed the model's context of \(c.contextLength)")
            }
            let t = c.tokens, textIDs = max(1, Int(t.mask))
            let prompts = (0..<microBatches).map { i in (0..<(tokens - 2)).map { j in Int32((17 + 31 * j + 7 * i) % textIDs) } + [t.gmask, t.sop] }
            let sequences = try (0..<microBatches).map { try MPISequence(pipeline: pipeline, sequence: $0) }
            func greedy(_ logits: [Float]) -> Int32 { Int32(logits.indices.max { logits[$0] < logits[$1] }!) }
            func seconds(_ body: () throws -> Void) rethrows -> Double {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            }
            var logits: [[Float]] = []
            pipeline.phase = 0
            let prefill = try seconds {
                for (sequence, prompt) in zip(sequences, prompts) { try sequence.submit(prompt) }
                logits = try sequences.map { try $0.result() }
            }
            pipeline.phase = 1
            let batched = try seconds {
                for (i, sequence) in sequences.enumerated() { try sequence.submit([greedy(logits[i])]) }
                for step in 0..<decodeSteps {
                    for (i, sequence) in sequences.enumerated() {
                        logits[i] = try sequence.result()
                        if step < decodeSteps - 1 { try sequence.submit([greedy(logits[i])]) }
                    }
                }
            }
            pipeline.phase = 2
            let alone = try seconds {
                for _ in 0..<decodeSteps { logits[0] = try sequences[0].forward([greedy(logits[0])]) }
            }
            let timings = try pipeline.stop()
            let stage = { (phase: Int) in timings.map { $0.median(phase: phase) } }
            let simulated = [
                ScheduleSimulator.simulate(.gpipe, forward: stage(0), backward: stage(0).map { _ in 0 }, microBatches: microBatches).makespan,
                ScheduleSimulator.decode(stageSeconds: stage(1), sequences: microBatches, steps: decodeSteps),
                ScheduleSimulator.decode(stageSeconds: stage(2), sequences: 1, steps: decodeSteps),
            ]
            let measured = [prefill, batched, alone]
            let counts = [microBatches * tokens, microBatches * decodeSteps, decodeSteps]
            report(pipeline, measured: measured, simulated: simulated, tokens: counts, stageSeconds: (0..<3).map(stage))
        }
    }

    private func report(_ pipeline: MPIPipeline, measured: [Double], simulated: [Double], tokens counts: [Int], stageSeconds: [[Double]]) {
        let names = ["prefill", "batched_decode", "single_sequence_decode"]
        if json {
            struct Phase: Encodable { let phase: String; let tokens: Int; let measured_s: Double; let simulated_s: Double
                let measured_over_simulated: Double; let tokens_per_s: Double; let stage_s: [Double] }
            struct Output: Encodable { let ranks: Int; let layers: [[Int]]; let micro_batches: Int; let prompt_tokens: Int
                let decode_steps: Int; let phases: [Phase] }
            let phases = (0..<3).map { i in
                Phase(phase: names[i], tokens: counts[i], measured_s: measured[i], simulated_s: simulated[i], measured_over_simulated: measured[i] / simulated[i],
                      tokens_per_s: Double(counts[i]) / measured[i], stage_s: stageSeconds[i])
            }
            let o = Output(ranks: pipeline.ranks, layers: pipeline.layers.map { [$0.lowerBound, $0.upperBound] }, micro_batches: microBatches,
                           prompt_tokens: tokens, decode_steps: decodeSteps, phases: phases)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return print(String(decoding: (try? encoder.encode(o)) ?? Data(), as: UTF8.self))
        }
        print("ranks (layers): \(pipeline.layers.enumerated().map { "\($0.offset): \($0.element.lowerBound)..<\($0.element.upperBound)" }.joined(separator: ", "))")
        let labels = ["prefill, \(microBatches) micro-batches of \(tokens) tokens", "decode, \(microBatches) sequences pipelined, \(decodeSteps) tokens each",
                      "decode, one sequence alone, \(decodeSteps) tokens (\(pipeline.ranks - 1) of \(pipeline.ranks) ranks idle at any time)"]
        for i in 0..<3 {
            print(String(format: "%@: %.3f s, %.2f tokens/s; simulator from the ranks' stage times (%@ s): %.3f s; measured / simulated %.3f",
                         labels[i], measured[i], Double(counts[i]) / measured[i],
                         stageSeconds[i].map { String(format: "%.4f", $0) }.joined(separator: ", "), simulated[i], measured[i] / simulated[i]))
        }
    }
}
