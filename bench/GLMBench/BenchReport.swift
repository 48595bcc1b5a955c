// BenchReport.swift — everything one bench run measured, in the JSON schema
// documented in bench/README.md.

import Foundation

public struct LimitFigures: Codable, Sendable {
    public let threads: Int
    public let read_gbps: Double
    public let fma_gflops: Double
    public let int8_gops: Double
    /// vpmaddwd chains: the 16-bit-activation (q16) kernels' instruction; nil in older reports.
    public var int16_gops: Double? = nil
}

public struct MachineFigures: Codable, Sendable {
    public let cpu: String
    public let cores: Int
    public let hardware_threads: Int
    public let isa: String
    public let l1d_bytes: Int, l2_bytes: Int, l3_bytes: Int
    public var limits: [LimitFigures]

    func limit(threads: Int) -> LimitFigures {
        limits.first { $0.threads == threads } ?? limits.last!
    }
}

public struct KernelFigure: Codable, Sendable {
    public let op: String
    public let weight_type: String?
    public let m: Int, n: Int, k: Int
    /// Attention: "heads x head_dim, queries q over keys kv"; nil for products.
    public let shape: String?
    public let threads: Int
    public let median_s: Double
    public let spread: Double
    public let bytes: Double
    public let flops: Double
    public let gbps: Double
    public let gflops: Double
    /// "bandwidth", "fma" or "int8" (integer-dot kernels): the limit this kernel's arithmetic intensity puts it against.
    public let limit: String
    public let fraction_of_limit: Double
}

public struct EndToEndFigure: Codable, Sendable {
    public let layers: Int
    public let phase: String          // "prefill" or "decode"
    public let tokens: Int            // prompt tokens (prefill) or generated tokens (decode)
    public let threads: Int
    public let fused: Bool
    public let median_s: Double
    public let spread: Double
    public let tokens_per_s: Double
    /// Decode: the layers' weight bytes / measured bandwidth, over the measured time.
    public let fraction_of_bandwidth_bound: Double?
    /// The activation precision of the products ("f32", "q16", "q8"); nil in older reports.
    public var activations: String? = nil
    /// Prefill: the layers' flops (2 per multiply-accumulate of the products, attention
    /// with every key visible) per second over the FP32 FMA peak, "equivalent flops"
    /// for integer paths; nil for decode.
    public var fraction_of_fma_peak: Double? = nil
}

public struct Extrapolation: Codable, Sendable {
    public let layers: Int
    public let model_bytes: Double
    public let decode_s_per_token: Double
    public let prefill_s_per_token: Double
    public let note: String
}

public struct BenchReport: Codable, Sendable {
    public let schema = 1
    public let date: String
    public let quick: Bool
    /// A label for partial runs ("decode"); empty for a full run.
    public var tag = ""
    public var machine: MachineFigures
    public var kernels: [KernelFigure] = []
    public var end_to_end: [EndToEndFigure] = []
    public var extrapolation: Extrapolation?
    /// Several sequences per decode step (continuous batching); empty when skipped.
    public var batched_decode: [BatchedDecodeFigure] = []
    /// A causal chat's second turn with and without the first turn's KV cache; nil when skipped.
    public var chat_prefix: ChatPrefixFigure?
    /// Peak resident memory of a long generation against weights + KV cache; nil unless --memory.
    public var memory: MemoryFigure?

    enum CodingKeys: String, CodingKey { case schema, date, quick, tag, machine, kernels, end_to_end, extrapolation, batched_decode, chat_prefix, memory }
}
