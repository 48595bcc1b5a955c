// CostModel.swift — what each piece of a model costs when it is placed on a
// pipeline stage: time per token (prefill or decode) and resident bytes.
// Costs come from a model's configuration and the machine's measured limits
// (flops against the FMA rate, bytes against bandwidth, whichever binds), so
// any configuration — GLM-130B's included — can be planned without running it.

import Foundation

public struct StageItem: Sendable, Equatable {
    public let name: String
    public let seconds: Double
    public let bytes: Double

    public init(name: String, seconds: Double, bytes: Double) {
        self.name = name
        self.seconds = seconds
        self.bytes = bytes
    }
}

public struct MachineRates: Sendable, Codable, Equatable {
    public var flopsPerSecond: Double
    public var bytesPerSecond: Double

    public init(flopsPerSecond: Double, bytesPerSecond: Double) {
        self.flopsPerSecond = flopsPerSecond
        self.bytesPerSecond = bytesPerSecond
    }

    /// The 2-core CI machine's measured figures (bench/results), the default when none are given.
    public static let reference = MachineRates(flopsPerSecond: 100e9, bytesPerSecond: 25e9)

    /// The all-threads FMA rate and read bandwidth of a bench results JSON
    /// (machine.limits[].fma_gflops, read_gbps); `file` names it in errors.
    public init(benchResults data: [UInt8], file: String) throws {
        func fail() -> ModelFileError {
            .badConfig(file: file, reason: "not a bench results file (machine.limits with fma_gflops and read_gbps)")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any],
              let machine = json["machine"] as? [String: Any], let limits = machine["limits"] as? [[String: Any]],
              let all = limits.max(by: { ($0["threads"] as? Int ?? 0) < ($1["threads"] as? Int ?? 0) }),
              let fma = all["fma_gflops"] as? Double, let read = all["read_gbps"] as? Double else { throw fail() }
        guard fma.isFinite, read.isFinite, fma > 0, read > 0, fma < 1e9, read < 1e9 else {
            throw ModelFileError.badConfig(file: file, reason: "fma_gflops \(fma) and read_gbps \(read) must be positive rates")
        }
        self.init(flopsPerSecond: fma * 1e9, bytesPerSecond: read * 1e9)
    }
}

public enum CostModel {
    /// The items of a model in pipeline order: the embedding, every layer, the
    /// output layer (final LayerNorm + output projection). `tokens` per step:
    /// 1 for decode, the prompt length for prefill. Weights are counted at
    /// `bitsPerWeight` (4.5 for INT4 with per-block scales).
    public static func items(_ c: ModelConfig, tokens: Int, bitsPerWeight: Double, rates: MachineRates) -> [StageItem] {
        let h = Double(c.hidden), bytesPerWeight = bitsPerWeight / 8
        let layerWeights = 4 * h * h + Double(c.ffnUpRows) * h + Double(c.ffnInner) * h
        func time(flops: Double, bytes: Double) -> Double { max(flops / rates.flopsPerSecond, bytes / rates.bytesPerSecond) }
        let m = Double(tokens)
        // a layer: its products stream the weights once per step; attention over a context of `tokens`
        let layerFlops = 2 * m * layerWeights + 4 * h * m * m
        let layer = StageItem(name: "layer", seconds: time(flops: layerFlops, bytes: layerWeights * bytesPerWeight),
                              bytes: layerWeights * bytesPerWeight)
        let table = Double(c.vocab) * h
        // the embedding is a row lookup (no flops to speak of) but holds the whole table
        let embedding = StageItem(name: "embedding", seconds: time(flops: 0, bytes: m * h * 4), bytes: table * bytesPerWeight)
        // the output layer projects the last token onto the vocabulary; a tied model keeps its own copy of the table there
        let output = StageItem(name: "output", seconds: time(flops: 2 * table, bytes: table * bytesPerWeight), bytes: table * bytesPerWeight)
        return [embedding] + (0..<c.layers).map { StageItem(name: "layer \($0)", seconds: layer.seconds, bytes: layer.bytes) } + [output]
    }

    /// Items whose times are measured on this machine: the embedding, one layer
    /// (every layer has the same shape) and the output layer each run `repetitions`
    /// times on `tokens` tokens; bytes are the model's own tensor sizes.
    public static func measuredItems(_ model: GLMModel, tokens: Int, repetitions: Int = 3) throws -> [StageItem] {
        let c = model.config
        let ids = (0..<tokens).map { Int32(($0 * 31 + 7) % Int(max(1, c.tokens.mask))) }
        let session = try InferenceSession(model: model, capacity: tokens)
        let layout = PromptLayout(ids: ids, tokens: c.tokens)
        let (positions, blocks) = session.positions(start: 0, count: tokens, layout: layout)
        func best(_ body: () throws -> Void) rethrows -> Double {
            var fastest = Double.infinity
            for _ in 0..<max(1, repetitions) {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            }
            return fastest
        }
        var x: [Float] = []
        let embedTime = try best { x = try session.embed(ids) }
        var y: [Float] = []
        let layerTime = try best {
            y = try session.layers(0..<1, x, tokens: tokens, start: 0, positions: positions, blocks: blocks, bidirectional: layout.bidirectionalLength)
        }
        let outputTime = try best { _ = try session.logits(y, tokens: tokens, all: false) }
        let layerBytes = Double(model.layerWeightBytes)
        let tableBytes = Double(model.tokenEmbedding.byteCount)
        return [StageItem(name: "embedding", seconds: embedTime, bytes: tableBytes)]
            + (0..<c.layers).map { StageItem(name: "layer \($0)", seconds: layerTime, bytes: layerBytes) }
            + [StageItem(name: "output", seconds: outputTime, bytes: Double(model.output.byteCount))]
    }

    /// Bits per weight of a model's layer matrices as stored (4.5 for q4_0, 32 for f32).
    public static func bitsPerWeight(of model: GLMModel) -> Double {
        guard let l = model.layers.first else { return 32 }
        let weights = [l.qkv, l.attentionOutput, l.ffnUp, l.ffnDown].reduce(0) { $0 + $1.rows * $1.cols }
        return weights > 0 ? Double(model.layerWeightBytes) * 8 / Double(weights) : 32
    }

    /// GLM-130B's released configuration (Architectures/GLM130B.swift).
    public static var glm130b: ModelConfig { Architectures.preset("glm-130b")! }

    /// Named configurations for `glm-run pipeline plan`: the architectures' presets.
    public static func named(_ name: String) -> ModelConfig? { Architectures.preset(name) }
}
