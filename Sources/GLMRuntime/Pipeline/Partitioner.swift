// Partitioner.swift — splits a model's items (embedding, layers, output) into
// P contiguous pipeline stages. First it finds the smallest achievable time
// of the slowest stage; then, among partitions whose slowest stage is within
// `tolerance` of it, the one whose largest stage memory is smallest (ties:
// the faster one). Both steps are exact dynamic programs over prefixes.
// `allowed` rules stages out (a memory budget, a stage with no layer):
// both programs consider only stages it accepts.
// Nothing here knows about GLM-130B: its 8-stage plan with one layer fewer on
// the first and last stages comes out of the costs.

public struct PipelinePlan: Sendable, Equatable {
    /// Item index ranges, one per stage.
    public let stages: [Range<Int>]
    public let stageSeconds: [Double]
    public let stageBytes: [Double]
    public var slowestSeconds: Double { stageSeconds.max() ?? 0 }
    public var largestBytes: Double { stageBytes.max() ?? 0 }
    /// Mean stage time over the slowest: 1 is perfect balance.
    public var balance: Double { stageSeconds.isEmpty ? 1 : stageSeconds.reduce(0, +) / Double(stageSeconds.count) / slowestSeconds }
}

public enum Partitioner {
    public static func plan(_ items: [StageItem], stages p: Int, tolerance: Double = 0.01,
                            allowed: (Range<Int>) -> Bool = { _ in true }) -> PipelinePlan? {
        let n = items.count
        guard p >= 1, p <= n else { return nil }
        var timePrefix = [0.0], bytePrefix = [0.0]
        for item in items {
            timePrefix.append(timePrefix.last! + item.seconds)
            bytePrefix.append(bytePrefix.last! + item.bytes)
        }
        func time(_ a: Int, _ b: Int) -> Double { timePrefix[b] - timePrefix[a] }
        func bytes(_ a: Int, _ b: Int) -> Double { bytePrefix[b] - bytePrefix[a] }

        // 1. the smallest possible slowest-stage time
        var best = [[Double]](repeating: [Double](repeating: .infinity, count: n + 1), count: p + 1)
        best[0][0] = 0
        for s in 1...p {
            for i in s...n {
                for j in (s - 1)..<i where best[s - 1][j] < .infinity && allowed(j..<i) {
                    best[s][i] = min(best[s][i], max(best[s - 1][j], time(j, i)))
                }
            }
        }
        let fastest = best[p][n]
        guard fastest < .infinity else { return nil }
        let limit = fastest * (1 + tolerance) + 1e-15

        // 2. among partitions with every stage under the limit: the smallest largest-memory stage,
        //    then the smallest slowest time
        typealias Score = (bytes: Double, seconds: Double)
        func better(_ a: Score, _ b: Score) -> Bool { a.bytes < b.bytes - 1e-9 * max(1, b.bytes) || (abs(a.bytes - b.bytes) <= 1e-9 * max(1, b.bytes) && a.seconds < b.seconds) }
        var score = [[Score?]](repeating: [Score?](repeating: nil, count: n + 1), count: p + 1)
        var cut = [[Int]](repeating: [Int](repeating: -1, count: n + 1), count: p + 1)
        score[0][0] = (0, 0)
        for s in 1...p {
            for i in s...n {
                for j in (s - 1)..<i {
                    guard let previous = score[s - 1][j], time(j, i) <= limit, allowed(j..<i) else { continue }
                    let candidate: Score = (max(previous.bytes, bytes(j, i)), max(previous.seconds, time(j, i)))
                    if score[s][i] == nil || better(candidate, score[s][i]!) {
                        score[s][i] = candidate
                        cut[s][i] = j
                    }
                }
            }
        }
        guard score[p][n] != nil else { return nil }
        var ranges: [Range<Int>] = []
        var end = n
        for s in stride(from: p, to: 0, by: -1) {
            let start = cut[s][end]
            ranges.insert(start..<end, at: 0)
            end = start
        }
        return PipelinePlan(stages: ranges, stageSeconds: ranges.map { time($0.lowerBound, $0.upperBound) },
                            stageBytes: ranges.map { bytes($0.lowerBound, $0.upperBound) })
    }
}
