// MemoryBench.swift — what a long generation holds in memory: a ChatGLM-6B-shaped
// model (28 layers, hidden 4096, 32 heads, GeLU inner 16384, vocabulary 130528;
// synthetic q4_0 weights built in memory, as a mapped file's pages would be once
// read) generating 512 tokens in a session of context 2048, its peak resident
// memory (VmHWM, reset first) against the weights plus the KV cache.

import Foundation
import GLMRuntime
import KernelBridge

public struct MemoryFigure: Codable, Sendable {
    public let layers: Int
    public let context: Int
    public let generated_tokens: Int
    public let weight_bytes: Int
    public let kv_cache_bytes: Int
    /// Peak resident bytes while building the model and generating, over the process's resident bytes before.
    public let peak_bytes: Int
    /// peak / (weights + KV cache).
    public var ratio: Double { Double(peak_bytes) / Double(weight_bytes + kv_cache_bytes) }
}

struct MemoryBench {
    let quick: Bool
    let log: (String) -> Void

    /// VmRSS or VmHWM of this process in bytes (Linux), nil elsewhere.
    static func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
        }
        return nil
    }

    func run(threads: Int) throws -> MemoryFigure? {
        try Threads.configure(count: threads)
        guard let before = Self.status("VmRSS") else { log("memory: no /proc/self/status here; skipped"); return nil }
        // "5" resets the peak resident size to the current one (proc(5), clear_refs)
        let reset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        var c = Architectures.preset("chatglm-6b")!
        if quick { (c.layers, c.hidden, c.heads, c.kvHeads, c.headDim, c.ffnInner, c.vocab) = (2, 256, 4, 4, 64, 1024, 4096) }
        let (context, generate) = quick ? (256, 64) : (2048, 512)
        log("building a ChatGLM-6B-shaped model (\(c.layers) layers, q4_0) to generate \(generate) tokens at context \(context) ...")
        let model = try SyntheticModel.build(c, type: .q4_0)
        let session = try InferenceSession(model: model, capacity: context)
        var token = c.tokens.sop
        _ = try session.forward((0..<32).map { Int32(100 + $0) } + [c.tokens.gmask, c.tokens.sop])
        let start = ContinuousClock.now
        for step in 0..<generate {
            let logits = try session.forward([token])
            token = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
            if step % 128 == 127 { log("  \(step + 1) tokens, resident \((Self.status("VmRSS") ?? 0) >> 20) MB") }
        }
        let seconds = Double((ContinuousClock.now - start).components.seconds)
        guard let peak = Self.status("VmHWM") else { return nil }
        // norms and biases are FP32 arrays beside the matrices; the KV cache is allocated whole
        let vectors = c.layers * 4 * (c.hidden + c.qkvWidth + c.ffnUpRows) * 4
        let figure = MemoryFigure(layers: c.layers, context: context, generated_tokens: generate,
                                  weight_bytes: model.weightBytes + vectors, kv_cache_bytes: KVCacheType.f32.bytes(config: c, capacity: context),
                                  peak_bytes: peak - (reset ? before : 0))
        log(String(format: "memory: weights %.2f GB + KV cache %.2f GB; peak resident %.2f GB over the process's %.2f GB before (%.3fx)%@, %d tokens in %.0f s",
                   Double(figure.weight_bytes) / 1e9, Double(figure.kv_cache_bytes) / 1e9, Double(figure.peak_bytes) / 1e9,
                   Double(before) / 1e9, figure.ratio, reset ? "" : " (peak not reset: includes earlier sections)", generate, seconds))
        return figure
    }
}
