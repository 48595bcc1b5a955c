// Server.swift — glm-run serve's routes, OpenAI-compatible:
//   POST /v1/chat/completions   chat, streamed as Server-Sent Events or not
//   POST /v1/completions        text continuation; a [MASK] prompt fills its blanks
//   GET  /v1/models, GET /health (503 while loading), GET /metrics (Prometheus text)
//   POST /tokenize, POST /detokenize
// Every error is OpenAI's error JSON: 400 for bad requests, 401 without the
// API key, 404 for unknown routes, 413 for bodies over the limit, 503 while
// loading or when the queue is full.

import Foundation
import GLMRuntime
import Hummingbird

public struct ServerOptions: Sendable {
    public var apiKey: String?
    public var maxBodyBytes = 1 << 20
    public var defaultMaxTokens = 256
    public init() {}
}

public enum GLMServer {
    /// The routes over `worker`, with the error, authentication and counting middleware.
    public static func router(worker: ModelWorker, metrics: ServerMetrics, options: ServerOptions) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: APIMiddleware(apiKey: options.apiKey, metrics: metrics))
        let routes = Routes(worker: worker, metrics: metrics, options: options)
        router.get("/health") { _, _ in try routes.health() }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.prometheusText())))
        }
        router.get("/v1/models") { _, _ in try routes.models() }
        router.post("/v1/chat/completions") { request, _ in try await routes.chat(try await routes.body(request)) }
        router.post("/v1/completions") { request, _ in try await routes.completion(try await routes.body(request)) }
        router.post("/tokenize") { request, _ in try routes.tokenize(try await routes.body(request)) }
        router.post("/detokenize") { request, _ in try routes.detokenize(try await routes.body(request)) }
        return router
    }
}

/// Bearer authentication, OpenAI error bodies for every failure, request counts.
struct APIMiddleware<Context: RequestContext>: RouterMiddleware {
    let apiKey: String?
    let metrics: ServerMetrics
    static var knownRoutes: Set<String> {
        ["/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let route = Self.knownRoutes.contains(path) ? path : "other"
        let response: Response
        do {
            if let apiKey, path != "/health", request.headers[.authorization] != "Bearer \(apiKey)" {
                throw APIError(401, "a valid API key is required: Authorization: Bearer <key>", type: "authentication_error")
            }
            response = try await next(request, context)
        } catch let error as APIError {
            response = Routes.errorResponse(error)
        } catch let error as HTTPError {
            let status = Int(error.status.code)
            let message = switch status {
            case 404: "no route \(request.method) \(path)"
            case 413: "the request body is over the server's limit"
            case 405: "\(request.method) is not allowed on \(path)"
            default: error.body ?? "\(error.status)"
            }
            response = Routes.errorResponse(APIError(status, message, type: status == 404 ? "not_found_error" : "invalid_request_error"))
        } catch where String(describing: type(of: error)).contains("TooManyBytes") {
            // NIO's collect(upTo:) past the body limit
            response = Routes.errorResponse(APIError(413, "the request body is over the server's limit"))
        } catch {
            response = Routes.errorResponse(APIError(500, "\(error)", type: "server_error"))
        }
        metrics.countRequest(route: route, status: Int(response.status.code))
        return response
    }
}

/// The route handlers.
struct Routes: Sendable {
    let worker: ModelWorker
    let metrics: ServerMetrics
    let options: ServerOptions

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func errorResponse(_ error: APIError) -> Response {
        json(error.json, status: HTTPResponse.Status(code: error.status))
    }

    /// The request body as a JSON object; over the limit: 413.
    func body(_ request: Request) async throws -> [String: Any] {
        let buffer = try await request.body.collect(upTo: options.maxBodyBytes)
        return try jsonObject(Data(buffer.readableBytesView))
    }

    private func model() throws -> LoadedModel {
        switch worker.state {
        case .loading: throw APIError(503, "the model is still loading", type: "server_error")
        case let .failed(reason): throw APIError(503, "the model failed to load: \(reason)", type: "server_error")
        case let .ready(model): return model
        }
    }

    func health() throws -> Response {
        _ = try model()
        return Self.json(["status": "ok"])
    }

    func models() throws -> Response {
        let m = try model()
        return Self.json(["object": "list", "data": [["id": m.name, "object": "model", "created": 0, "owned_by": "glmruntime"]]])
    }

    // MARK: - Generation

    func chat(_ json: [String: Any]) async throws -> Response {
        let m = try model()
        let fields = try SamplingFields(json, defaultMaxTokens: options.defaultMaxTokens, maxTokensLimit: m.model.config.contextLength)
        let arch = m.model.config.architectureType
        // a role template (ChatGLM3, GLM-4) takes the system message as its own; GLM's text templates have none
        let roles = arch?.chatPieces(format: m.model.config.chatFormat, system: nil, history: [], query: "") != nil
        let (history, query, system) = try chatMessages(json, separateSystem: roles)
        let prompt: [Int32]
        if let pieces = arch?.chatPieces(format: m.model.config.chatFormat, system: system, history: history, query: query) {
            do { prompt = try m.codec.build(pieces: pieces) } catch let error as GenerationError { throw APIError(400, "\(error)", param: "messages") }
        } else {
            prompt = try build(m, arch?.chatPrompt(history: history, query: query) ?? query, .continueText)
        }
        return try await generate(m, kind: .chat, prompt: prompt, fields: fields)
    }

    func completion(_ json: [String: Any]) async throws -> Response {
        let m = try model()
        let fields = try SamplingFields(json, defaultMaxTokens: options.defaultMaxTokens, maxTokensLimit: m.model.config.contextLength)
        var text: String
        switch json["prompt"] {
        case let s as String: text = s
        case let list as [Any] where list.count == 1 && list[0] is String: text = list[0] as! String
        case nil: throw APIError(400, "'prompt' is required", param: "prompt")
        default: throw APIError(400, "'prompt' must be a string (one prompt per request)", param: "prompt")
        }
        let t = m.model.config.tokens
        let codec = m.codec
        let fill = codec.encode(text).contains { $0 == t.mask || $0 == t.smask }
        if text.isEmpty { text = " " }
        let prompt = try build(m, text, fill ? .fillBlank : .continueText)
        return try await generate(m, kind: fill ? .fill : .completion, prompt: prompt, fields: fields)
    }

    private func build(_ m: LoadedModel, _ text: String, _ mode: PromptMode) throws -> [Int32] {
        do {
            return try m.codec.build(text, mode: mode)
        } catch let error as GenerationError {
            throw APIError(400, "\(error)", param: "messages")
        }
    }

    private func generate(_ m: LoadedModel, kind: Job.Kind, prompt: [Int32], fields: SamplingFields) async throws -> Response {
        let capacity = min(worker.contextPerSequence ?? m.model.config.contextLength, m.model.config.contextLength)
        guard prompt.count < capacity else {
            throw APIError(400, "the prompt has \(prompt.count) tokens; a sequence holds \(capacity) (--context)", param: "messages")
        }
        let (events, continuation) = AsyncStream<JobEvent>.makeStream()
        let job = Job(kind: kind, prompt: prompt, parameters: fields.parameters, stop: fields.stop, continuation: continuation)
        continuation.onTermination = { _ in job.cancel() }
        try worker.submit(job)
        let id = (kind == .chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let created = Int(Date().timeIntervalSince1970)
        let chunks = ChunkFormat(id: id, created: created, model: m.name, chat: kind == .chat)
        if fields.stream {
            let body = ResponseBody { writer in
                do {
                    if chunks.chat { try await writer.write(chunks.sse(chunks.chunk(delta: ["role": "assistant", "content": ""]))) }
                    for await event in events {
                        switch event {
                        case let .delta(text):
                            try await writer.write(chunks.sse(chunks.chunk(delta: chunks.chat ? ["content": text] : nil, text: text)))
                        case let .finished(reason, promptTokens, completionTokens):
                            var last = chunks.chunk(delta: chunks.chat ? [:] : nil, text: "", finish: reason)
                            last["usage"] = usage(promptTokens, completionTokens)
                            try await writer.write(chunks.sse(last))
                        case let .failed(error):
                            try await writer.write(chunks.sse(error.json))
                        }
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                } catch {
                    job.cancel() // the client went away: stop generating for it
                    throw error
                }
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        }
        var text = "", reason = "stop", tokens = (0, 0)
        for await event in events {
            switch event {
            case let .delta(piece): text += piece
            case let .finished(r, p, c): (reason, tokens) = (r, (p, c))
            case let .failed(error): throw error
            }
        }
        let choice: [String: Any] = chunks.chat
            ? ["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": reason]
            : ["index": 0, "text": text, "logprobs": NSNull(), "finish_reason": reason]
        return Self.json(["id": id, "object": chunks.chat ? "chat.completion" : "text_completion", "created": created, "model": m.name,
                          "choices": [choice], "usage": usage(tokens.0, tokens.1)])
    }

    private func usage(_ prompt: Int, _ completion: Int) -> [String: Int] {
        ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
    }

    // MARK: - Tokens

    func tokenize(_ json: [String: Any]) throws -> Response {
        let m = try model()
        guard let text = try JSONFields(json).string("text") ?? JSONFields(json).string("prompt") else {
            throw APIError(400, "'text' is required", param: "text")
        }
        let ids = m.codec.encode(text)
        return Self.json(["ids": ids.map(Int.init), "pieces": ids.map(m.codec.pieceName), "count": ids.count])
    }

    func detokenize(_ json: [String: Any]) throws -> Response {
        let m = try model()
        guard let raw = json["ids"] ?? json["tokens"], let list = raw as? [Any] else { throw APIError(400, "'ids' must be a list of token ids", param: "ids") }
        let vocab = m.model.config.vocab
        let ids = try list.map { item -> Int32 in
            guard !isJSONBool(item), let n = item as? Int, n >= 0, n < vocab else {
                throw APIError(400, "'ids' must hold token ids in 0..<\(vocab), got \(item)", param: "ids")
            }
            return Int32(n)
        }
        let known = m.codec.tokenizer.idRange
        return Self.json(["text": try m.codec.tokenizer.decode(ids.filter { $0 < known.upperBound })])
    }
}

/// The JSON of streamed chunks and their SSE framing.
struct ChunkFormat: Sendable {
    let id: String
    let created: Int
    let model: String
    let chat: Bool

    func chunk(delta: [String: String]?, text: String? = nil, finish: String? = nil) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "finish_reason": finish as Any? ?? NSNull()]
        if chat { choice["delta"] = delta ?? [:] } else { choice["text"] = text ?? ""; choice["logprobs"] = NSNull() }
        return ["id": id, "object": chat ? "chat.completion.chunk" : "text_completion", "created": created, "model": model, "choices": [choice]]
    }

    /// "data: <json>\n\n"
    func sse(_ object: [String: Any]) -> ByteBuffer {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n")
    }
}
