// PipelineStageTests.swift — what the MPI ranks compute, in one process: a
// chain of PipelineStages (the first embeds, the last makes the logits, either
// may hold no layer) gives bit for bit what one InferenceSession does, for a
// prompt's logits and for greedy steps over the KV caches; the placement of
// layers on ranks within a memory budget; the pipelined-decode simulator.

import GLMRuntime
import KernelBridge
import Testing

@Suite("Pipeline stages and rank placement")
struct PipelineStageTests {
    /// Runs `ids` through stages holding `split` (layer ranges covering the model): the ranks' path.
    private func chained(_ stages: [PipelineStage], _ ids: [Int32], start: Int, layout: PromptLayout, all: Bool) throws -> [Float] {
        let chunk = StageChunk(model: stages[0].model, sequence: 0, start: start, count: ids.count, layout: layout)
        var x = try stages[0].embed(ids)
        for stage in stages { x = try stage.run(x, chunk) }
        return try stages.last!.logits(x, chunk, all: all)
    }

    @Test("a chain of stages equals one session bit for bit (prompt, then greedy steps)",
          arguments: ["glm-130b-tiny", "chatglm-6b-tiny", "glm4-tiny"])
    func stageChain_equalsSession(arch: String) throws {
        let golden = try Golden(arch)
        let model = try ConvertedModels.model(arch, .q4_row)
        let n = model.layers.count
        // the splits 3 ranks get for 2 layers, and the one with the embedding alone
        for split in [[0..<1, 1..<n, n..<n], [0..<0, 0..<n], [0..<n]] {
            let stages = try split.enumerated().map { i, layers in
                try PipelineStage(model: model, layers: layers, first: i == 0, last: i == split.count - 1, sequences: 1,
                                  capacity: 128, kernels: Kernels())
            }
            for c in golden.cases {
                let session = try InferenceSession(model: model, capacity: 128)
                let layout = PromptLayout(ids: c.inputIDs, tokens: model.config.tokens)
                var reference = try session.forward(c.inputIDs, allLogits: true)
                var piped = try chained(stages, c.inputIDs, start: 0, layout: layout, all: true)
                #expect(piped == reference, "\(arch) \(c.name) split \(split): prompt logits differ")
                var length = c.inputIDs.count
                for _ in 0..<4 {
                    let token = argmax(reference.suffix(model.config.vocab)[...])
                    reference = try session.forward([token])
                    piped = try chained(stages, [token], start: length, layout: layout, all: false)
                    length += 1
                    #expect(piped == reference, "\(arch) \(c.name) split \(split): a decode step differs")
                }
            }
        }
    }

    @Test("a stage's KV cache holds only its own layers, and runs them")
    func stageCache_holdsItsLayers() throws {
        let model = try ConvertedModels.model("glm-130b-tiny", .q4_row)
        let c = model.config
        let all = KVCacheType.f32.bytes(config: c, capacity: 100)
        #expect(KVCacheType.f32.bytes(config: c, capacity: 100, layers: 1) * c.layers == all)
        // a stage's session runs its layer against a cache that holds only that layer
        let stage = try PipelineStage(model: model, layers: 1..<2, first: false, last: true, sequences: 1, capacity: 8, kernels: Kernels())
        let chunk = StageChunk(sequence: 0, start: 0, positions: [0, 1], blocks: [0, 0], bidirectionalLength: 2)
        #expect(try stage.run([Float](repeating: 0.5, count: 2 * c.hidden), chunk).count == 2 * c.hidden)
    }

    @Test("stages refuse ranges that are not theirs")
    func stage_refusesBadRanges() throws {
        let model = try ConvertedModels.model("glm-130b-tiny", .q4_row)
        let n = model.layers.count
        #expect(throws: GenerationError.self) { try PipelineStage(model: model, layers: 1..<1, first: false, last: false, sequences: 1, capacity: 8, kernels: Kernels()) }
        #expect(throws: GenerationError.self) { try PipelineStage(model: model, layers: 1..<n, first: true, last: true, sequences: 1, capacity: 8, kernels: Kernels()) }
        #expect(throws: GenerationError.self) { try PipelineStage(model: model, layers: 0..<(n + 1), first: true, last: true, sequences: 1, capacity: 8, kernels: Kernels()) }
    }

    @Test("GLM-130B on 4 ranks of 22 GiB: contiguous, every rank within its budget, the plan balanced")
    func glm130b_fourRanks() throws {
        let c = CostModel.glm130b
        let items = CostModel.items(c, tokens: 1, bitsPerWeight: 4.5, rates: .reference)
        let kv = Double(KVCacheType.f16.bytes(config: c, capacity: c.contextLength, layers: 1))
        let budget = 22.0 * 1_073_741_824
        let p = try RankPlacement.place(items: items, layerCount: c.layers, ranks: 4, kvBytesPerLayer: kv, memoryPerRank: budget)
        #expect(p.layers.first!.lowerBound == 0 && p.layers.last!.upperBound == c.layers)
        #expect(zip(p.layers, p.layers.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(p.bytes.allSatisfy { $0 <= budget })
        #expect(p.plan.balance > 0.95, "balance \(p.plan.balance)")
        // three such machines cannot hold it: a clear error, not a plan over budget
        #expect(throws: PlacementError.self) { try RankPlacement.place(items: items, layerCount: c.layers, ranks: 3, kvBytesPerLayer: kv, memoryPerRank: budget) }
    }

    @Test("a budget moves layers off the rank that would exceed it")
    func budget_movesLayers() throws {
        // 6 equal layers; the embedding is as big as two of them but costs no time
        let items = [StageItem(name: "embedding", seconds: 0, bytes: 2)] + (0..<6).map { StageItem(name: "layer \($0)", seconds: 1, bytes: 1) }
            + [StageItem(name: "output", seconds: 0.01, bytes: 0.1)]
        let free = try RankPlacement.place(items: items, layerCount: 6, ranks: 2, kvBytesPerLayer: 0, memoryPerRank: nil)
        #expect(free.layers == [0..<3, 3..<6])
        let tight = try RankPlacement.place(items: items, layerCount: 6, ranks: 2, kvBytesPerLayer: 0, memoryPerRank: 4.5)
        #expect(tight.layers == [0..<2, 2..<6])
        #expect(tight.bytes.allSatisfy { $0 <= 4.5 })
        // KV caches count with their layers
        #expect(throws: PlacementError.self) { try RankPlacement.place(items: items, layerCount: 6, ranks: 2, kvBytesPerLayer: 1, memoryPerRank: 4.5) }
    }

    @Test("ranks: at most the layers plus the embedding and output layer")
    func ranks_bounded() throws {
        let items = [StageItem(name: "embedding", seconds: 0, bytes: 1), StageItem(name: "layer 0", seconds: 1, bytes: 1),
                     StageItem(name: "layer 1", seconds: 1, bytes: 1), StageItem(name: "output", seconds: 1, bytes: 1)]
        let four = try RankPlacement.place(items: items, layerCount: 2, ranks: 4, kvBytesPerLayer: 0, memoryPerRank: nil)
        #expect(four.layers == [0..<0, 0..<1, 1..<2, 2..<2])
        #expect(throws: PlacementError.self) { try RankPlacement.place(items: items, layerCount: 2, ranks: 5, kvBytesPerLayer: 0, memoryPerRank: nil) }
    }

    @Test("memory sizes parse with their units; nonsense does not")
    func sizes_parse() {
        #expect(RankPlacement.parseBytes("22GiB") == 22.0 * 1_073_741_824)
        #expect(RankPlacement.parseBytes("20GB") == 20e9)
        #expect(RankPlacement.parseBytes("512 MiB") == 512.0 * 1_048_576)
        for bad in ["22", "GiB", "-1GB", "0GB", "nanGB", "22XB", ""] { #expect(RankPlacement.parseBytes(bad) == nil, "\(bad)") }
    }

    @Test("pipelined decode: one sequence takes the sum of the stages per token, P or more take the slowest")
    func decodeSimulator_limits() {
        let stages = [0.1, 0.3, 0.2]
        let one = ScheduleSimulator.decode(stageSeconds: stages, sequences: 1, steps: 10)
        #expect(abs(one - 10 * 0.6) < 1e-9)
        // with as many sequences as stages the slowest stage is always busy after the first token fills it
        let many = ScheduleSimulator.decode(stageSeconds: stages, sequences: 3, steps: 50)
        #expect(many >= 150 * 0.3 && many <= 150 * 0.3 + 0.6 + 1e-9, "\(many)")
        // fewer sequences than stages: each round is one trip around, bound by the sum
        let two = ScheduleSimulator.decode(stageSeconds: [0.2, 0.2, 0.2], sequences: 2, steps: 20)
        #expect(abs(two - (20 * 0.6 + 0.2)) < 1e-9, "\(two)")
    }
}
