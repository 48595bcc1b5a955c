// BatchedDecodeBench.swift — continuous batching's point: B sequences decode
// together through L GLM-130B-shaped layers (q4_row, 16-bit activations, the
// runtime's default), each step streaming the weights once for all of them.
// Aggregate tokens/s at B = 1, 2, 4, 8, 16, next to the bound of reading the
// weights once per step at the measured bandwidth (B x bandwidth / bytes).

import GLMRuntime
import KernelBridge

public struct BatchedDecodeFigure: Codable, Sendable {
    public let layers: Int
    public let sequences: Int
    public let threads: Int
    /// Median seconds of one decode step (one token of every sequence).
    public let median_step_s: Double
    public let spread: Double
    /// sequences / median step.
    public let tokens_per_s: Double
    /// tokens/s over the one-sequence figure of the same run.
    public let speedup_vs_one: Double
    /// sequences x read bandwidth / the layers' weight bytes: the step time if it only streamed the weights.
    public let bandwidth_bound_tokens_per_s: Double
    /// 2 x weights x sequences per step over the int16 dot peak: the step's integer
    /// products at the rate of the instruction they run on (the compute bound).
    public var fraction_of_int16_peak: Double? = nil
    public var `default` = true
}

struct BatchedDecodeBench {
    let machine: MachineFigures
    let quick: Bool
    let repetitions: Int
    let log: (String) -> Void

    func run(layers: Int, threads: Int, batches: [Int] = [1, 2, 4, 8, 16]) throws -> [BatchedDecodeFigure] {
        try Threads.configure(count: threads)
        let e2e = EndToEndBench(machine: machine, quick: quick, repetitions: repetitions, log: log)
        log("building \(layers) GLM-130B-shaped layer(s) for batched decode ...")
        let glm = try e2e.model(layers: layers)
        let promptLength = quick ? 8 : 32, steps = quick ? 4 : max(8, repetitions * 2)
        let decoder = try BatchDecoder(model: glm, maxSequences: batches.max() ?? 1)
        let bytes = Double(glm.layerWeightBytes * layers)
        let c = glm.config
        let weights = Double(layers * c.hidden * (3 * c.hidden + c.hidden + c.ffnUpRows + c.ffnInner))
        let bandwidth = machine.limit(threads: threads).read_gbps * 1e9
        var out: [BatchedDecodeFigure] = []
        for b in batches {
            let sequences = try (0..<b).map { _ in try decoder.makeSequence(capacity: promptLength + steps + 2) }
            for (i, s) in sequences.enumerated() {
                try decoder.beginPrefill(s, prompt: (0..<promptLength).map { Int32(10 + (i * 31 + $0) % 1000) })
                while try decoder.continuePrefill(layers: layers) == nil {}
            }
            let tokens = (0..<b).map { Int32(20 + $0) }
            _ = try decoder.decode(sequences, tokens: tokens) // warm: the step's scratch at its size
            // each step is one sample (every cache grows by one token, negligible at these lengths)
            let t = try measure(warmup: 0, repetitions: steps) { _ = try decoder.decode(sequences, tokens: tokens) }
            let one = out.first?.tokens_per_s ?? Double(b) / t.median
            var f = BatchedDecodeFigure(layers: layers, sequences: b, threads: threads, median_step_s: t.median, spread: t.spread,
                                        tokens_per_s: Double(b) / t.median, speedup_vs_one: Double(b) / t.median / one,
                                        bandwidth_bound_tokens_per_s: Double(b) * bandwidth / bytes)
            if let peak = machine.limit(threads: threads).int16_gops {
                f.fraction_of_int16_peak = 2 * weights * Double(b) / t.median / (peak * 1e9)
            }
            log(Table.batchedDecodeRow(f))
            out.append(f)
        }
        return out
    }
}
