// ModelWorker.swift — the model and the requests that use it. The model
// loads on the worker's own thread (the server answers /health with 503
// meanwhile); then the worker runs continuous batching there: up to
// `parallel` sequences decode together, one token each per step through
// BatchDecoder (the weights stream once per step for all of them), a new
// request joins at the next step, a finished or abandoned one leaves at once,
// and a new prompt prefills a slice of layers between two decode steps so
// that a long prompt does not stall the others. Generation is CPU work: it
// never runs on the server's event loops. Requests beyond `parallel` wait in
// a bounded queue (full: 503).
//
// Blank filling (a [MASK] completion, which may fill several blanks in turn)
// runs alone between two steps: its prompt changes between blanks.

import Foundation
import GLMRuntime
import KernelBridge

/// What a job reports as it runs.
enum JobEvent: Sendable {
    case delta(String)
    case finished(reason: String, promptTokens: Int, completionTokens: Int)
    case failed(APIError)
}

/// One request's generation.
final class Job: @unchecked Sendable {
    // @unchecked: `cancelled` is read and written under the lock; the rest is immutable.
    enum Kind: Sendable { case chat, completion, fill }
    let kind: Kind
    let prompt: [Int32]
    let parameters: GenerateParameters
    let stop: [String]
    let continuation: AsyncStream<JobEvent>.Continuation
    let created = ContinuousClock.now
    private let lock = NSLock()
    private var _cancelled = false

    init(kind: Kind, prompt: [Int32], parameters: GenerateParameters, stop: [String], continuation: AsyncStream<JobEvent>.Continuation) {
        (self.kind, self.prompt, self.parameters, self.stop, self.continuation) = (kind, prompt, parameters, stop, continuation)
    }

    var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return _cancelled }
    func cancel() { lock.lock(); _cancelled = true; lock.unlock() }
}

/// The loaded model as requests see it.
public struct LoadedModel: Sendable {
    public let name: String
    public let model: GLMModel
    public let codec: PromptBuilder
    /// The kernels the sequences run on (nil: the built-ins), the fused plan or not, the KV cache type.
    public let kernels: (any KernelSet)?
    public let fusion: Bool
    public let kvType: KVCacheType

    public init(name: String, model: GLMModel, codec: PromptBuilder, kernels: (any KernelSet)? = nil, fusion: Bool = true,
                kvType: KVCacheType = .f32) {
        (self.name, self.model, self.codec) = (name, model, codec)
        (self.kernels, self.fusion, self.kvType) = (kernels, fusion, kvType)
    }
}

public final class ModelWorker: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`; the batch itself lives on the worker thread.
    public enum State: Sendable { case loading, ready(LoadedModel), failed(String) }

    private let lock = NSLock()
    private var _state = State.loading
    private var queue: [Job] = []
    private let jobsAvailable = DispatchSemaphore(value: 0)
    /// Requests that may wait for the model at once (the running ones not counted).
    public let queueLimit: Int
    /// Sequences that decode together.
    public let parallel: Int
    /// Tokens each sequence's KV cache holds (nil: the model's context).
    public let contextPerSequence: Int?
    let metrics: ServerMetrics

    /// Starts loading the model with `load` on the worker thread.
    public init(queueLimit: Int, parallel: Int = 8, contextPerSequence: Int? = nil, metrics: ServerMetrics,
                load: @escaping @Sendable () throws -> LoadedModel) {
        self.queueLimit = queueLimit
        self.parallel = max(1, parallel)
        self.contextPerSequence = contextPerSequence
        self.metrics = metrics
        let thread = Thread { [self] in self.run(load) }
        thread.name = "glm-model-worker"
        thread.stackSize = 8 << 20
        thread.start()
    }

    public var state: State { lock.lock(); defer { lock.unlock() }; return _state }

    public var loaded: LoadedModel? { if case let .ready(m) = state { return m }; return nil }

    /// Queues `job`; a full queue or a model not loaded yet is a 503.
    func submit(_ job: Job) throws {
        lock.lock()
        defer { lock.unlock() }
        guard case .ready = _state else { throw APIError(503, "the model is still loading", type: "server_error") }
        guard queue.count < queueLimit else {
            throw APIError(503, "the server is busy: \(queue.count) requests are waiting (--queue \(queueLimit))", type: "server_error")
        }
        queue.append(job)
        metrics.setQueueDepth(queue.count)
        jobsAvailable.signal()
    }

    /// The next queued job: waits for one when `wait`, else returns nil at once when there is none.
    private func nextJob(wait: Bool) -> Job? {
        if wait { jobsAvailable.wait() } else if jobsAvailable.wait(timeout: .now()) == .timedOut { return nil }
        lock.lock()
        defer { lock.unlock() }
        let job = queue.removeFirst()
        metrics.setQueueDepth(queue.count)
        return job
    }

    private func run(_ load: () throws -> LoadedModel) {
        let model: LoadedModel, batch: Batch
        do {
            model = try load()
            batch = try Batch(model: model, parallel: parallel, context: contextPerSequence, metrics: metrics)
            lock.lock(); _state = .ready(model); lock.unlock()
        } catch {
            lock.lock(); _state = .failed("\(error)"); lock.unlock()
            return
        }
        while true {
            // admit: a new prompt starts when nothing else is prefilling and a sequence is free
            if !batch.isPrefilling, batch.hasRoom, let job = nextJob(wait: batch.isIdle) {
                if job.kind == .fill { batch.runAlone(job) } else { batch.start(job) }
            }
            batch.step()
        }
    }
}

/// The running sequences (on the worker thread only).
private final class Batch {
    private let model: LoadedModel
    private let decoder: BatchDecoder
    private let metrics: ServerMetrics
    private var free: [BatchDecoder.Sequence]
    private var active: [Running] = []
    private var prefilling: Running?
    /// Caches of the sequences' size, for blank filling (which runs alone).
    private let context: Int

    /// One request's sequence and what it has produced.
    final class Running {
        let job: Job
        let sequence: BatchDecoder.Sequence
        var generator: SequenceGenerator
        var text: ResponseText
        var stops: StopFilter
        var next: Int32 = 0
        var completionTokens = 0
        var lastToken = ContinuousClock.now

        init(job: Job, sequence: BatchDecoder.Sequence, generator: SequenceGenerator, text: ResponseText) {
            (self.job, self.sequence, self.generator, self.text) = (job, sequence, generator, text)
            stops = StopFilter(job.stop)
        }
    }

    init(model: LoadedModel, parallel: Int, context: Int?, metrics: ServerMetrics) throws {
        self.model = model
        self.metrics = metrics
        decoder = try BatchDecoder(model: model.model, maxSequences: parallel, kernels: model.kernels, fusion: model.fusion)
        let capacity = min(context ?? model.model.config.contextLength, model.model.config.contextLength)
        self.context = capacity
        let perSequence = model.kvType.bytes(config: model.model.config, capacity: capacity)
        let (total, overflow) = perSequence.multipliedReportingOverflow(by: parallel)
        try BatchDecoder.requireMemory(overflow ? Int.max : total,
                                       for: "--parallel \(parallel) \(model.kvType.rawValue) KV caches of \(capacity) tokens (--context)")
        // every sequence's KV cache, allocated once and reused by the requests that follow
        free = try (0..<parallel).map { [decoder] _ in try decoder.makeSequence(capacity: capacity, kvType: model.kvType) }
    }

    var isPrefilling: Bool { prefilling != nil }
    var hasRoom: Bool { !free.isEmpty }
    var isIdle: Bool { active.isEmpty && prefilling == nil }

    /// Starts a request's prefill.
    func start(_ job: Job) {
        guard !job.isCancelled else { return job.continuation.finish() }
        do {
            let generator = try SequenceGenerator(codec: model.codec, prompt: job.prompt, parameters: job.parameters,
                                                  endTokens: model.codec.stopTokens)
            // a causal model's free sequence that holds the longest start of this prompt (a chat
            // sent again with one more turn) keeps that part of its cache; any free one otherwise
            let causal = !model.model.config.bidirectionalPrefix
            let best = free.indices.max { free[$0].reusable(for: job.prompt, causal: causal) < free[$1].reusable(for: job.prompt, causal: causal) }!
            let sequence = free.remove(at: best)
            let running = Running(job: job, sequence: sequence, generator: generator,
                                  text: ResponseText(architecture: job.kind == .chat ? model.model.config.architectureType : nil))
            do {
                let kept = try decoder.beginPrefill(sequence, prompt: job.prompt)
                metrics.promptTokensReused(kept)
            } catch {
                free.append(sequence)
                throw error
            }
            prefilling = running
        } catch {
            fail(job, error)
        }
    }

    /// One round: a slice of the pending prefill, then one decode step of every running sequence.
    func step() {
        if let p = prefilling { prefillSlice(p) }
        guard !active.isEmpty else { return }
        active.removeAll { r in
            guard r.job.isCancelled else { return false }
            release(r)
            return true
        }
        guard !active.isEmpty else { return metrics.setActive(0) }
        metrics.setActive(active.count)
        metrics.observeBatchSize(active.count)
        let logits: [Float]
        do {
            logits = try decoder.decode(active.map(\.sequence), tokens: active.map(\.next))
        } catch {
            for r in active { fail(r.job, error); free.append(r.sequence) }
            active.removeAll()
            return metrics.setActive(0)
        }
        let vocab = model.model.config.vocab
        var finished: [Int] = []
        for (row, r) in active.enumerated() where !accept(r, Array(logits[(row * vocab)..<((row + 1) * vocab)])) {
            finished.append(row)
        }
        for row in finished.reversed() { active.remove(at: row) }
        metrics.setActive(active.count)
    }

    /// Runs the pending prompt through its next slice of layers: about 64 prompt
    /// tokens' worth of every layer, so that a decode step waits at most that long;
    /// all layers at once when no sequence is waiting.
    private func prefillSlice(_ p: Running) {
        if p.job.isCancelled {
            decoder.cancelPrefill()
            prefilling = nil
            return release(p)
        }
        let layers = model.model.config.layers
        let slice = active.isEmpty ? layers : max(1, layers * 64 / max(1, p.job.prompt.count))
        do {
            guard let logits = try decoder.continuePrefill(layers: slice) else { return }
            prefilling = nil
            if accept(p, logits) { active.append(p) }
        } catch {
            prefilling = nil
            free.append(p.sequence)
            fail(p.job, error)
        }
    }

    /// Samples a sequence's next token and streams its text. Returns false when the
    /// sequence has finished (its sequence is then free again).
    private func accept(_ r: Running, _ logits: [Float]) -> Bool {
        do {
            guard let token = try r.generator.next(logits) else {
                finish(r, reason: "stop")
                return false
            }
            let now = ContinuousClock.now
            if r.completionTokens == 0 {
                metrics.observeTimeToFirstToken((now - r.job.created).seconds)
            } else {
                metrics.observeTokenLatency((now - r.lastToken).seconds)
            }
            r.lastToken = now
            r.completionTokens += 1
            if r.job.isCancelled {
                release(r)
                return false
            }
            let (visible, stopped) = r.stops.append(r.text.append(token.text))
            if !visible.isEmpty { r.job.continuation.yield(.delta(visible)) }
            if stopped {
                finish(r, reason: "stop", flush: false)
                return false
            }
            if r.generator.reachedLimit || r.sequence.length >= r.sequence.capacity {
                finish(r, reason: "length")
                return false
            }
            r.next = token.id
            return true
        } catch {
            fail(r.job, error)
            free.append(r.sequence)
            return false
        }
    }

    private func finish(_ r: Running, reason: String, flush: Bool = true) {
        if flush {
            let (visible, _) = r.stops.append(r.text.finish(), final: true)
            if !visible.isEmpty { r.job.continuation.yield(.delta(visible)) }
        }
        metrics.countTokens(prompt: r.job.prompt.count, completion: r.completionTokens)
        r.job.continuation.yield(.finished(reason: reason, promptTokens: r.job.prompt.count, completionTokens: r.completionTokens))
        release(r)
    }

    /// Ends the job's stream and frees its sequence.
    private func release(_ r: Running) {
        r.job.continuation.finish()
        free.append(r.sequence)
    }

    private func fail(_ job: Job, _ error: Error) {
        let apiError = error as? APIError ?? APIError(500, "generation failed: \(error)", type: "server_error")
        job.continuation.yield(.failed(apiError))
        job.continuation.finish()
    }

    /// A blank-filling request, run to its end on a session of its own.
    func runAlone(_ job: Job) {
        defer { job.continuation.finish() }
        guard !job.isCancelled else { return }
        do {
            let session = try InferenceSession(model: model.model, capacity: context, kernels: model.kernels, fusion: model.fusion,
                                               kvType: model.kvType)
            let filler = try BlankFiller(session: session, codec: model.codec, prompt: job.prompt, parameters: job.parameters)
            var first = true
            _ = try filler.fillAll { text in
                if first { self.metrics.observeTimeToFirstToken((ContinuousClock.now - job.created).seconds); first = false }
                job.continuation.yield(.delta(text))
            }
            metrics.countTokens(prompt: job.prompt.count, completion: filler.stats.generatedTokens)
            job.continuation.yield(.finished(reason: "stop", promptTokens: job.prompt.count, completionTokens: filler.stats.generatedTokens))
        } catch {
            let apiError = error as? APIError ?? APIError(500, "generation failed: \(error)", type: "server_error")
            job.continuation.yield(.failed(apiError))
        }
    }
}

/// Cuts the text at the first stop string, holding back a tail that could
/// still become one, so that a stop string is never shown.
struct StopFilter {
    let stops: [String]
    private var text = ""
    private var emitted = 0

    init(_ stops: [String]) { self.stops = stops }

    /// The newly visible text, and whether a stop string was reached.
    mutating func append(_ piece: String, final: Bool = false) -> (String, Bool) {
        text += piece
        if let cut = stops.compactMap({ text.range(of: $0, options: .literal)?.lowerBound }).min() {
            let visible = String(text[..<cut])
            let fresh = String(visible.dropFirst(emitted))
            emitted = visible.count
            return (fresh, true)
        }
        var keep = 0
        if !final {
            // the longest tail of text that is a proper prefix of a stop string
            for stop in stops {
                for k in stride(from: min(stop.count - 1, text.count), to: 0, by: -1) where stop.hasPrefix(text.suffix(k)) {
                    keep = max(keep, k)
                    break
                }
            }
        }
        let visibleCount = text.count - keep
        guard visibleCount > emitted else { return ("", false) }
        let fresh = String(text.dropFirst(emitted).prefix(visibleCount - emitted))
        emitted = visibleCount
        return (fresh, false)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
