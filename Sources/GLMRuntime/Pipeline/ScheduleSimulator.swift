// ScheduleSimulator.swift — replays a pipeline schedule over P stages and m
// micro-batches with given per-stage forward and backward times, and reports
// the makespan, each stage's busy time, the bubble fraction and the peak
// number of micro-batches whose activations a stage holds.
//  - GPipe: every stage runs all m forwards, then all m backwards.
//  - 1F1B (PipeDream-Flush): stage s runs P - s - 1 warm-up forwards, then
//    alternates one forward and one backward, then drains the backwards.
// Dependencies: F(s, i) after F(s - 1, i); B(s, i) after B(s + 1, i) and F(s, i).
// For equal stages the bubble fraction of both is (P - 1) / (m + P - 1).

public enum Schedule: String, Sendable, CaseIterable, Codable { case gpipe, onef1b = "1f1b" }

public struct ScheduledOp: Sendable, Codable, Equatable {
    public let stage: Int
    public let microBatch: Int
    public let backward: Bool
    public let start: Double
    public let end: Double
}

public struct SimulationResult: Sendable, Codable {
    public let schedule: Schedule
    public let stages: Int
    public let microBatches: Int
    public let makespan: Double
    public let ops: [ScheduledOp]
    /// Idle time over total stage time: 1 - sum(busy) / (P * makespan).
    public let bubbleFraction: Double
    /// Per stage: most micro-batches forwarded and not yet backwarded.
    public let peakActivations: [Int]
    /// The formula for equal stages, for comparison.
    public var formulaBubble: Double { Double(stages - 1) / Double(microBatches + stages - 1) }
}

public enum ScheduleSimulator {
    /// `forward[s]`, `backward[s]`: seconds per micro-batch on stage s (backward 0 for inference).
    public static func simulate(_ schedule: Schedule, forward: [Double], backward: [Double], microBatches m: Int) -> SimulationResult {
        let p = forward.count
        precondition(p > 0 && backward.count == p && m > 0, "simulate needs stages and micro-batches")
        let order: [[(Int, Bool)]] = (0..<p).map { s in
            switch schedule {
            case .gpipe:
                return (0..<m).map { ($0, false) } + (0..<m).reversed().map { ($0, true) }
            case .onef1b:
                let warmup = min(p - s - 1, m)
                var ops = (0..<warmup).map { ($0, false) }
                var nextF = warmup, nextB = 0
                while nextB < m {
                    if nextF < m { ops.append((nextF, false)); nextF += 1 }
                    ops.append((nextB, true)); nextB += 1
                }
                return ops
            }
        }
        var fEnd = [[Double]](repeating: [Double](repeating: -1, count: m), count: p)
        var bEnd = fEnd
        var position = [Int](repeating: 0, count: p), free = [Double](repeating: 0, count: p)
        var ops: [ScheduledOp] = []
        // run, stage by stage, every next op whose inputs are done, until none is left;
        // each stage keeps its own order, so start times do not depend on this sweep's order
        var progressed = true
        while progressed {
            progressed = false
            for s in 0..<p {
                while position[s] < order[s].count {
                    let (i, isBackward) = order[s][position[s]]
                    var ready = free[s]
                    if isBackward {
                        guard fEnd[s][i] >= 0, s == p - 1 || bEnd[s + 1][i] >= 0 else { break }
                        ready = max(ready, fEnd[s][i], s == p - 1 ? 0 : bEnd[s + 1][i])
                    } else {
                        guard s == 0 || fEnd[s - 1][i] >= 0 else { break }
                        ready = max(ready, s == 0 ? 0 : fEnd[s - 1][i])
                    }
                    let finish = ready + (isBackward ? backward[s] : forward[s])
                    ops.append(ScheduledOp(stage: s, microBatch: i, backward: isBackward, start: ready, end: finish))
                    if isBackward { bEnd[s][i] = finish } else { fEnd[s][i] = finish }
                    free[s] = finish
                    position[s] += 1
                    progressed = true
                }
            }
        }
        precondition(position.enumerated().allSatisfy { $0.element == order[$0.offset].count }, "schedule deadlocked")
        let makespan = ops.map(\.end).max() ?? 0
        let busy = (0..<p).map { s in Double(m) * (forward[s] + backward[s]) }
        let bubble = makespan > 0 ? 1 - busy.reduce(0, +) / (Double(p) * makespan) : 0
        // activations held: +1 when a forward starts, -1 when its backward ends
        let peaks = (0..<p).map { s -> Int in
            var events: [(Double, Int)] = []
            for op in ops where op.stage == s { events.append(op.backward ? (op.end, -1) : (op.start, 1)) }
            events.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            var live = 0, peak = 0
            for (_, delta) in events { live += delta; peak = max(peak, live) }
            return peak
        }
        return SimulationResult(schedule: schedule, stages: p, microBatches: m, makespan: makespan, ops: ops,
                                bubbleFraction: bubble, peakActivations: peaks)
    }

    /// Makespan of pipelined decode: `sequences` sequences, `steps` tokens each, over stages
    /// taking `stageSeconds[s]` per token. A sequence's next token enters stage 0 once its
    /// previous one has left the last stage (it is sampled from those logits); the first
    /// stage takes them round robin and every stage in arrival order, as the MPI pipeline
    /// does. One sequence leaves P - 1 stages idle at any time; P or more keep all busy.
    public static func decode(stageSeconds: [Double], sequences: Int, steps: Int) -> Double {
        precondition(!stageSeconds.isEmpty && sequences > 0 && steps >= 0, "decode needs stages and sequences")
        var free = [Double](repeating: 0, count: stageSeconds.count)
        var done = [Double](repeating: 0, count: sequences)
        for _ in 0..<steps {
            for i in 0..<sequences {
                var t = done[i]
                for (s, seconds) in stageSeconds.enumerated() {
                    t = max(t, free[s]) + seconds
                    free[s] = t
                }
                done[i] = t
            }
        }
        return done.max() ?? 0
    }
}
