// ModelWorker.swift — the model and the queue of requests that use it. The
// model loads on the worker's own thread (the server answers /health with 503
// meanwhile); then the worker takes one job at a time from a bounded queue and
// streams its tokens back as events. Generation is CPU work: it runs on this
// thread, never on the server's event loops. A job whose client has gone is
// cancelled between two tokens.
//
// This round runs one sequence at a time: requests wait their turn in the
// queue (full: 503). Batching concurrent sequences into one decode step is
// the next step (docs/serving.md).

import Foundation
import GLMRuntime

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

    public init(name: String, model: GLMModel, codec: PromptBuilder) { (self.name, self.model, self.codec) = (name, model, codec) }
}

public final class ModelWorker: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.
    public enum State: Sendable { case loading, ready(LoadedModel), failed(String) }

    private let lock = NSLock()
    private var _state = State.loading
    private var queue: [Job] = []
    private let jobsAvailable = DispatchSemaphore(value: 0)
    /// Requests that may wait for the model at once (the one running not counted).
    public let queueLimit: Int
    let metrics: ServerMetrics

    /// Starts loading the model with `load` on the worker thread.
    public init(queueLimit: Int, metrics: ServerMetrics, load: @escaping @Sendable () throws -> LoadedModel) {
        self.queueLimit = queueLimit
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

    private func run(_ load: () throws -> LoadedModel) {
        do {
            let model = try load()
            lock.lock(); _state = .ready(model); lock.unlock()
        } catch {
            lock.lock(); _state = .failed("\(error)"); lock.unlock()
            return
        }
        guard let model = loaded, let session = try? InferenceSession(model: model.model, capacity: model.model.config.contextLength) else {
            lock.lock(); _state = .failed("cannot allocate the KV cache"); lock.unlock()
            return
        }
        while true {
            jobsAvailable.wait()
            lock.lock()
            let job = queue.removeFirst()
            metrics.setQueueDepth(queue.count)
            lock.unlock()
            metrics.setActive(1)
            run(job, model: model, session: session)
            metrics.setActive(0)
        }
    }

    private func run(_ job: Job, model: LoadedModel, session: InferenceSession) {
        var firstToken = true
        var lastToken = ContinuousClock.now
        var completionTokens = 0
        func onToken() {
            let now = ContinuousClock.now
            if firstToken {
                metrics.observeTimeToFirstToken((now - job.created).seconds)
                firstToken = false
            } else {
                metrics.observeTokenLatency((now - lastToken).seconds)
            }
            lastToken = now
            completionTokens += 1
        }
        defer { job.continuation.finish() }
        guard !job.isCancelled else { return }
        do {
            switch job.kind {
            case .fill:
                let filler = try BlankFiller(session: session, codec: model.codec, prompt: job.prompt, parameters: job.parameters)
                _ = try filler.fillAll { text in job.continuation.yield(.delta(text)) }
                completionTokens = filler.stats.generatedTokens
                finish(job, reason: "stop", completionTokens: completionTokens)
            case .chat, .completion:
                let stream = try TokenStream(session: session, codec: model.codec, prompt: job.prompt, parameters: job.parameters)
                var text = ResponseText(architecture: job.kind == .chat ? model.model.config.architectureType : nil)
                var stops = StopFilter(job.stop)
                var reason = "length"
                for token in stream {
                    onToken()
                    if job.isCancelled { return }
                    let (visible, stopped) = stops.append(text.append(token.text))
                    if !visible.isEmpty { job.continuation.yield(.delta(visible)) }
                    if stopped { reason = "stop"; break }
                }
                if let error = stream.error { throw error }
                if reason != "stop" {
                    // the stream ended on an end token (stop) or on max_tokens / the context (length)
                    if completionTokens < job.parameters.maxTokens && session.length < session.capacity { reason = "stop" }
                    let (visible, _) = stops.append(text.finish(), final: true)
                    if !visible.isEmpty { job.continuation.yield(.delta(visible)) }
                }
                finish(job, reason: reason, completionTokens: completionTokens)
            }
        } catch let error as APIError {
            job.continuation.yield(.failed(error))
        } catch {
            job.continuation.yield(.failed(APIError(500, "generation failed: \(error)", type: "server_error")))
        }
    }

    private func finish(_ job: Job, reason: String, completionTokens: Int) {
        metrics.countTokens(prompt: job.prompt.count, completion: completionTokens)
        job.continuation.yield(.finished(reason: reason, promptTokens: job.prompt.count, completionTokens: completionTokens))
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
