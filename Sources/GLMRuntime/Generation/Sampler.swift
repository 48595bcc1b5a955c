// Sampler.swift — picks the next token from logits: repetition penalty, then
// greedy (temperature 0) or temperature + top-k + top-p sampling with a
// seeded generator, so a seed reproduces a run exactly.

public struct Sampler {
    public let parameters: GenerateParameters
    private var rng: SplitMix64

    public init(_ parameters: GenerateParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed)
    }

    /// The next token for `logits` (one row of vocabulary size), given the tokens so far.
    public mutating func next(_ logits: [Float], history: [Int32]) -> Int32 {
        var logits = logits
        if parameters.repetitionPenalty != 1 {
            for token in Set(history) where Int(token) < logits.count {
                let l = logits[Int(token)]
                logits[Int(token)] = l > 0 ? l / parameters.repetitionPenalty : l * parameters.repetitionPenalty
            }
        }
        if parameters.temperature == 0 { return Int32(argmax(logits)) }

        // candidates by logit, highest first: the top k in one pass over the vocabulary
        // (sorting all 150k logits every token would dominate a small model's step)
        let order = topIndices(logits, parameters.topK > 0 ? parameters.topK : logits.count)
        let top = logits[order[0]]
        var probabilities = order.map { Double(((logits[$0] - top) / parameters.temperature)).exponential }
        let total = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / total }
        // top-p: the shortest prefix whose mass reaches p
        var kept = 0, mass = 0.0
        while kept < probabilities.count {
            mass += probabilities[kept]
            kept += 1
            if mass >= Double(parameters.topP) { break }
        }
        let draw = rng.nextUnit() * mass
        var cumulative = 0.0
        for i in 0..<kept {
            cumulative += probabilities[i]
            if draw < cumulative { return Int32(order[i]) }
        }
        return Int32(order[kept - 1])
    }
}

/// Indices of the `k` largest values, largest first (ties: lower index first).
func topIndices(_ values: [Float], _ k: Int) -> [Int] {
    func before(_ a: Int, _ b: Int) -> Bool { values[a] > values[b] || (values[a] == values[b] && a < b) }
    guard k < values.count else { return values.indices.sorted(by: before) }
    var best: [Int] = []
    best.reserveCapacity(k + 1)
    for i in values.indices {
        if best.count == k, !before(i, best[k - 1]) { continue }
        // insertion into the sorted short list
        var lo = 0, hi = best.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if before(best[mid], i) { lo = mid + 1 } else { hi = mid }
        }
        best.insert(i, at: lo)
        if best.count > k { best.removeLast() }
    }
    return best
}

func argmax(_ values: [Float]) -> Int {
    var best = 0
    for i in values.indices where values[i] > values[best] { best = i }
    return best
}

/// SplitMix64: small, fast and fully determined by its seed (sampling, tests).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

extension Double {
    fileprivate var exponential: Double { Foundation.exp(self) }
}

import Foundation
