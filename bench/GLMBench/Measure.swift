// Measure.swift — timing: warm-up, repetitions, median and spread.

import Foundation

public struct Timing: Codable, Sendable {
    public let median: Double
    public let min: Double
    public let max: Double
    public let repetitions: Int

    /// (max - min) / median, the relative spread of the repetitions.
    public var spread: Double { median > 0 ? (max - min) / median : 0 }
}

/// Runs `body` `warmup` times untimed, then `repetitions` times timed.
func measure(warmup: Int = 1, repetitions: Int, _ body: () throws -> Void) rethrows -> Timing {
    for _ in 0..<warmup { try body() }
    var times: [Double] = []
    for _ in 0..<max(1, repetitions) {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
    }
    times.sort()
    let mid = times.count / 2
    let median = times.count % 2 == 1 ? times[mid] : (times[mid - 1] + times[mid]) / 2
    return Timing(median: median, min: times.first!, max: times.last!, repetitions: times.count)
}

/// As measure, with `setup` run untimed before every run of `body` (state a run consumes).
func measure(warmup: Int = 1, repetitions: Int, setup: () throws -> Void, _ body: () throws -> Void) rethrows -> Timing {
    var times: [Double] = []
    for run in 0..<(warmup + max(1, repetitions)) {
        try setup()
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        if run >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9) }
    }
    times.sort()
    let mid = times.count / 2
    let median = times.count % 2 == 1 ? times[mid] : (times[mid - 1] + times[mid]) / 2
    return Timing(median: median, min: times.first!, max: times.last!, repetitions: times.count)
}
