// ServerMetrics.swift — the server's counters, gauges and histograms, and
// their exposition in Prometheus's text format (version 0.0.4): requests by
// route and status, prompt and completion tokens, time to first token and
// time per output token, queue depth, sequences running, batch size.

import Foundation

public final class ServerMetrics: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var requests: [String: Int] = [:]   // "route\u{0}status"
    private var promptTokens = 0, completionTokens = 0, reusedPromptTokens = 0
    private var queueDepth = 0, active = 0, lastBatch = 0
    private var batchSizes = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64])
    private var ttft = Histogram(bounds: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
    private var tokenLatency = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])

    public init() {}

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0, count = 0
        init(bounds: [Double]) { self.bounds = bounds; counts = [Int](repeating: 0, count: bounds.count) }
        mutating func observe(_ v: Double) {
            for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            count += 1
        }
    }

    func countRequest(route: String, status: Int) { locked { requests[route + "\u{0}" + String(status), default: 0] += 1 } }
    func countTokens(prompt: Int, completion: Int) { locked { promptTokens += prompt; completionTokens += completion } }
    /// Prompt tokens whose keys and values a sequence's cache kept from an earlier request (causal models).
    func promptTokensReused(_ n: Int) { locked { reusedPromptTokens += n } }
    var promptTokensReusedTotal: Int { lock.lock(); defer { lock.unlock() }; return reusedPromptTokens }
    func setQueueDepth(_ n: Int) { locked { queueDepth = n } }
    func setActive(_ n: Int) { locked { active = n } }
    /// One decode step of `n` sequences.
    func observeBatchSize(_ n: Int) { locked { lastBatch = n; batchSizes.observe(Double(n)) } }
    func observeTimeToFirstToken(_ seconds: Double) { locked { ttft.observe(seconds) } }
    func observeTokenLatency(_ seconds: Double) { locked { tokenLatency.observe(seconds) } }

    private func locked(_ body: () -> Void) { lock.lock(); body(); lock.unlock() }

    /// Decode steps so far that ran more than `n` sequences.
    func decodeSteps(withMoreThan n: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let atMost = batchSizes.bounds.lastIndex { $0 <= Double(n) }.map { batchSizes.counts[$0] } ?? 0
        return batchSizes.count - atMost
    }

    /// The text exposition of every metric.
    public func prometheusText() -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        metric("glm_requests_total", "counter", "HTTP requests by route and status.")
        for key in requests.keys.sorted() {
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false)
            out += "glm_requests_total{route=\"\(parts[0])\",status=\"\(parts[1])\"} \(requests[key]!)\n"
        }
        metric("glm_prompt_tokens_total", "counter", "Prompt tokens of finished requests.")
        out += "glm_prompt_tokens_total \(promptTokens)\n"
        metric("glm_prompt_tokens_reused_total", "counter", "Prompt tokens whose KV cache was kept from an earlier request (causal models).")
        out += "glm_prompt_tokens_reused_total \(reusedPromptTokens)\n"
        metric("glm_completion_tokens_total", "counter", "Generated tokens of finished requests.")
        out += "glm_completion_tokens_total \(completionTokens)\n"
        metric("glm_queue_depth", "gauge", "Requests waiting for the model.")
        out += "glm_queue_depth \(queueDepth)\n"
        metric("glm_active_sequences", "gauge", "Sequences generating now.")
        out += "glm_active_sequences \(active)\n"
        metric("glm_batch_size", "gauge", "Sequences in the last decode step.")
        out += "glm_batch_size \(lastBatch)\n"
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            metric(name, "histogram", help)
            for (b, c) in zip(h.bounds, h.counts) { out += "\(name)_bucket{le=\"\(b)\"} \(c)\n" }
            out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n\(name)_sum \(h.sum)\n\(name)_count \(h.count)\n"
        }
        histogram("glm_time_to_first_token_seconds", "From a request's arrival to its first token (queueing included).", ttft)
        histogram("glm_time_per_output_token_seconds", "Between two tokens of one sequence.", tokenLatency)
        histogram("glm_decode_batch_size", "Sequences per decode step (the count is the number of steps).", batchSizes)
        return out
    }
}
