// PipelineRunner.swift — real pipelined execution on this machine: the layers
// split into stages, each stage a thread whose kernels run on its own group
// of physical cores (hwloc binding), micro-batches (independent prompts)
// handed from stage to stage. Each micro-batch keeps its own KV caches, and
// the kernels give the same bits at any thread count, so the logits equal a
// sequential run's exactly.

import Foundation
import KernelBridge

public struct PipelineMeasurement: Sendable {
    public let stages: [Range<Int>]
    public let microBatches: Int
    /// Wall time of the whole pipelined run.
    public let seconds: Double
    /// Per stage, the median time one micro-batch spent in it.
    public let stageSeconds: [Double]
    /// Last-position logits of every micro-batch.
    public let logits: [[Float]]
}

public enum PipelineRunner {
    /// Prompt passes of `prompts` (one per micro-batch) through `stages` (layer ranges covering the model),
    /// stage s on physical cores s * coresPerStage ..< (s + 1) * coresPerStage.
    public static func run(model: GLMModel, stages: [Range<Int>], prompts: [[Int32]], coresPerStage: Int, fusion: Bool = true) throws -> PipelineMeasurement {
        guard !stages.isEmpty, stages.first?.lowerBound == 0, stages.last?.upperBound == model.layers.count,
              zip(stages, stages.dropFirst()).allSatisfy({ $0.upperBound == $1.lowerBound }) else {
            throw GenerationError.invalidArgument("stages must cover layers 0..<\(model.layers.count) in order")
        }
        let shared = PipelineState(sessions: try prompts.map { try InferenceSession(model: model, capacity: $0.count, fusion: fusion) },
                                   stages: stages.count, microBatches: prompts.count)
        let m = prompts.count, p = stages.count
        let group = DispatchGroup()
        let begin = DispatchTime.now().uptimeNanoseconds
        for s in 0..<p {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    try Threads.configureStage(count: coresPerStage, firstCore: s * coresPerStage)
                    for i in 0..<m {
                        var input: [Float]?
                        if s > 0 {
                            guard let handed = shared.receive(stage: s, microBatch: i) else { return } // another stage failed
                            input = handed
                        }
                        let start = DispatchTime.now().uptimeNanoseconds
                        let session = shared.sessions[i], ids = prompts[i]
                        let x = try input ?? session.embed(ids)
                        let layout = PromptLayout(ids: ids, tokens: model.config.tokens)
                        let (positions, blocks) = session.positions(start: 0, count: ids.count, layout: layout)
                        var out = try session.layers(stages[s], x, tokens: ids.count, start: 0, positions: positions, blocks: blocks,
                                                     bidirectional: layout.bidirectionalLength)
                        if s == p - 1 { out = try session.logits(out, tokens: ids.count, all: false) }
                        shared.send(stage: s + 1, microBatch: i, out, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
                    }
                } catch {
                    shared.fail(error)
                }
            }
            thread.start()
        }
        group.wait()
        if let failure = shared.failure { throw failure }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - begin) * 1e-9
        return PipelineMeasurement(stages: stages, microBatches: m, seconds: seconds,
                                   stageSeconds: shared.durations.map { $0.sorted()[$0.count / 2] },
                                   logits: (0..<m).map { shared.handoff[p][$0]! })
    }

    /// The same prompts one after another through all layers: the reference the pipeline must equal.
    public static func sequential(model: GLMModel, prompts: [[Int32]], fusion: Bool = true) throws -> (seconds: Double, logits: [[Float]]) {
        let begin = DispatchTime.now().uptimeNanoseconds
        let logits = try prompts.map { try InferenceSession(model: model, capacity: $0.count, fusion: fusion).forward($0) }
        return (Double(DispatchTime.now().uptimeNanoseconds - begin) * 1e-9, logits)
    }
}

/// What the stage threads share, guarded by one condition variable. A session
/// is used by one stage at a time: micro-batch i reaches stage s only after
/// stage s - 1 has handed it over.
private final class PipelineState: @unchecked Sendable {
    let sessions: [InferenceSession]
    private let condition = NSCondition()
    var handoff: [[[Float]?]]
    var durations: [[Double]]
    private(set) var failure: Error?

    init(sessions: [InferenceSession], stages: Int, microBatches: Int) {
        self.sessions = sessions
        handoff = [[[Float]?]](repeating: [[Float]?](repeating: nil, count: microBatches), count: stages + 1)
        durations = [[Double]](repeating: [], count: stages)
    }

    func receive(stage: Int, microBatch: Int) -> [Float]? {
        condition.lock()
        defer { condition.unlock() }
        while handoff[stage][microBatch] == nil && failure == nil { condition.wait() }
        let value = handoff[stage][microBatch]
        handoff[stage][microBatch] = nil
        return value
    }

    func send(stage: Int, microBatch: Int, _ value: [Float], seconds: Double) {
        condition.lock()
        handoff[stage][microBatch] = value
        durations[stage - 1].append(seconds)
        condition.broadcast()
        condition.unlock()
    }

    func fail(_ error: Error) {
        condition.lock()
        failure = failure ?? error
        condition.broadcast()
        condition.unlock()
    }
}
