// PipelineTests.swift — the partitioner against brute force, GLM-130B's
// 8-stage plan arrived at from costs, and the schedule simulator against the
// bubble formula (P - 1) / (m + P - 1).

import GLMRuntime
import KernelBridge
import Testing

/// Every contiguous split of `n` items into `p` stages.
private func allPartitions(_ n: Int, _ p: Int) -> [[Range<Int>]] {
    if p == 1 { return [[0..<n]] }
    var out: [[Range<Int>]] = []
    for first in 1...(n - p + 1) {
        for rest in allPartitions(n - first, p - 1) {
            out.append([0..<first] + rest.map { ($0.lowerBound + first)..<($0.upperBound + first) })
        }
    }
    return out
}

@Suite("Pipeline")
struct PipelineTests {
    @Test("the partitioner finds the brute-force optimum on small cases")
    func partitioner_matchesBruteForce() {
        var state: UInt64 = 7
        func random() -> Double { state = state &* 6364136223846793005 &+ 1442695040888963407; return Double(state >> 40) / Double(1 << 24) }
        for trial in 0..<60 {
            let n = 3 + trial % 8, p = 1 + trial % min(4, n)
            let items = (0..<n).map { StageItem(name: "\($0)", seconds: 0.1 + random(), bytes: 0.1 + random()) }
            let plan = Partitioner.plan(items, stages: p, tolerance: 0.05)!
            // (slowest stage seconds, largest stage bytes) of every partition
            var scored: [(seconds: Double, bytes: Double)] = []
            for parts in allPartitions(n, p) {
                let seconds = parts.map { r in items[r].reduce(0.0) { $0 + $1.seconds } }.max()!
                let bytes = parts.map { r in items[r].reduce(0.0) { $0 + $1.bytes } }.max()!
                scored.append((seconds, bytes))
            }
            let fastest = scored.map { $0.seconds }.min()!
            let eligible = scored.filter { $0.seconds <= fastest * 1.05 + 1e-12 }
            let bestMemory = eligible.map { $0.bytes }.min()!
            let bestTime = eligible.filter { abs($0.bytes - bestMemory) < 1e-9 }.map { $0.seconds }.min()!
            #expect(abs(plan.slowestSeconds - bestTime) < 1e-9, "trial \(trial): n \(n) p \(p)")
            #expect(abs(plan.largestBytes - bestMemory) < 1e-9, "trial \(trial)")
            #expect(plan.stages.count == p && plan.stages.first!.lowerBound == 0 && plan.stages.last!.upperBound == n)
        }
    }

    @Test("GLM-130B on 8 stages: the first and last hold one layer fewer (9 x 8 - 2 = 70), from costs alone",
          arguments: [1, 512])
    func glm130b_eightStages_matchPaper(tokens: Int) throws {
        let items = CostModel.items(CostModel.glm130b, tokens: tokens, bitsPerWeight: 4.5, rates: .reference)
        let plan = try #require(Partitioner.plan(items, stages: 8))
        let layers = plan.stages.map { r in r.filter { items[$0].name.hasPrefix("layer") }.count }
        #expect(layers == [8, 9, 9, 9, 9, 9, 9, 8], "\(layers)")
        #expect(items[plan.stages[0]].first?.name == "embedding" && items[plan.stages[7]].last?.name == "output")
    }

    @Test("simulated bubble fraction equals (P - 1) / (m + P - 1) for equal stages", arguments: Schedule.allCases)
    func simulator_matchesBubbleFormula(schedule: Schedule) {
        for p in [1, 2, 4, 8] {
            for m in [1, 2, 4, 8, 16, 32] {
                let r = ScheduleSimulator.simulate(schedule, forward: [Double](repeating: 1, count: p), backward: [Double](repeating: 2, count: p), microBatches: m)
                #expect(abs(r.bubbleFraction - r.formulaBubble) < 1e-9, "\(schedule) P \(p) m \(m): \(r.bubbleFraction) vs \(r.formulaBubble)")
            }
        }
    }

    @Test("1F1B holds at most P - s micro-batches per stage; GPipe holds all m")
    func simulator_peakActivations() {
        let (p, m) = (4, 12)
        let ones = [Double](repeating: 1, count: p), twos = [Double](repeating: 2, count: p)
        let gpipe = ScheduleSimulator.simulate(.gpipe, forward: ones, backward: twos, microBatches: m)
        let onef1b = ScheduleSimulator.simulate(.onef1b, forward: ones, backward: twos, microBatches: m)
        #expect(gpipe.peakActivations == [Int](repeating: m, count: p))
        #expect(onef1b.peakActivations == (0..<p).map { p - $0 })
        #expect(abs(gpipe.makespan - onef1b.makespan) < 1e-9, "same bubble, same makespan for equal stages")
    }
}

@Suite("Pipelined execution", .serialized)
struct PipelinedExecutionTests {
    @Test("pipelined stages on their own cores give exactly the sequential logits")
    func pipelinedOutput_equalsSequential() throws {
        let model = try ConvertedModels.model("glm-130b-tiny", .f32)
        let t = model.config.tokens
        var prompts: [[Int32]] = []
        for i in 0..<5 {
            var ids: [Int32] = []
            for j in 0..<(6 + i) { ids.append(Int32(10 + (j * 37 + i * 11) % 1000)) }
            prompts.append(ids + [t.gmask, t.sop])
        }
        let sequential = try PipelineRunner.sequential(model: model, prompts: prompts)
        for stages in [[0..<2], [0..<1, 1..<2]] {
            let piped = try PipelineRunner.run(model: model, stages: stages, prompts: prompts, coresPerStage: 1)
            #expect(piped.logits == sequential.logits, "\(stages.count) stage(s)")
            #expect(piped.stageSeconds.count == stages.count && piped.stageSeconds.allSatisfy { $0 > 0 })
        }
        #expect(throws: GenerationError.self) { try PipelineRunner.run(model: model, stages: [0..<1], prompts: prompts, coresPerStage: 1) }
        try Threads.configure()
    }
}
