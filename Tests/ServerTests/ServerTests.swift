// ServerTests.swift — glm-run serve's routes in process (HummingbirdTesting's
// router framework, no sockets) on the shipped model: every route, every
// error status as OpenAI error JSON, authentication, stop strings, and the
// Server-Sent Events framing byte for byte (ids and timestamps aside).

import Foundation
import GLMRuntime
@testable import GLMServer
import Hummingbird
import HummingbirdTesting
import Testing

private let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let modelPath = repo.appendingPathComponent("models/glm-small-bilingual-q4.gguf").path

/// One worker for the suite: the model loads once.
private let shared: (ModelWorker, ServerMetrics) = {
    let metrics = ServerMetrics()
    let worker = ModelWorker(queueLimit: 8, metrics: metrics) {
        let glm = try GLMModel(path: modelPath)
        let tokenizer = try GLMTokenizer(gguf: glm.file!)!
        return LoadedModel(name: "glm-small-bilingual-q4", model: glm, codec: PromptBuilder(tokenizer: tokenizer, config: glm.config))
    }
    return (worker, metrics)
}()

private func ready() async throws -> (ModelWorker, ServerMetrics) {
    let (worker, metrics) = shared
    for _ in 0..<600 where worker.loaded == nil { try await Task.sleep(for: .milliseconds(50)) }
    _ = try #require(worker.loaded)
    return (worker, metrics)
}

private func app(apiKey: String? = nil, maxBody: Int = 1 << 20) async throws -> some ApplicationProtocol {
    let (worker, metrics) = try await ready()
    var options = ServerOptions()
    options.apiKey = apiKey
    options.maxBodyBytes = maxBody
    return Application(router: GLMServer.router(worker: worker, metrics: metrics, options: options))
}

private func body(_ json: String) -> ByteBuffer { ByteBuffer(string: json) }
private let jsonHeaders: HTTPFields = [.contentType: "application/json"]

private func object(_ response: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
}

/// The response is OpenAI's error JSON with `status`.
private func expectError(_ response: TestResponse, _ status: Int, _ fragment: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(Int(response.status.code) == status, sourceLocation: sourceLocation)
    let error = try #require(try object(response)["error"] as? [String: Any], sourceLocation: sourceLocation)
    let message = error["message"] as? String ?? ""
    #expect((fragment.isEmpty || message.contains(fragment)) && error["type"] is String, "\(message)", sourceLocation: sourceLocation)
}

@Suite("OpenAI-compatible server", .serialized)
struct ServerTests {
    @Test("health, models, tokenize, detokenize, metrics")
    func plainRoutes() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(try object(r)["status"] as? String == "ok")
            }
            try await client.execute(uri: "/v1/models", method: .get) { r throws in
                let data = try #require(try object(r)["data"] as? [[String: Any]])
                #expect(data.first?["id"] as? String == "glm-small-bilingual-q4")
            }
            let ids = try await client.execute(uri: "/tokenize", method: .post, headers: jsonHeaders, body: body(#"{"text": "The meaning of life"}"#)) { r throws in
                try #require(try object(r)["ids"] as? [Int])
            }
            #expect(!ids.isEmpty)
            try await client.execute(uri: "/detokenize", method: .post, headers: jsonHeaders, body: body(#"{"ids": \#(ids)}"#)) { r throws in
                #expect(try object(r)["text"] as? String == "The meaning of life")
            }
            try await client.execute(uri: "/metrics", method: .get) { r throws in
                let text = String(buffer: r.body)
                #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true)
                for name in ["glm_requests_total", "glm_prompt_tokens_total", "glm_completion_tokens_total", "glm_queue_depth",
                             "glm_batch_size", "glm_time_to_first_token_seconds_bucket", "glm_time_per_output_token_seconds_count"] {
                    #expect(text.contains(name), "\(name)")
                }
                #expect(text.contains(#"glm_requests_total{route="/tokenize",status="200"} 1"#))
            }
        }
    }

    @Test("concurrent requests batch together and each gets the answer it gets alone")
    func concurrentRequests_equalAlone() async throws {
        let (_, metrics) = try await ready()
        let prompts = ["The meaning of life", "床前明月光，", "Once upon a time", "Water", "The sea", "春眠不觉晓，"]
        @Sendable func request(_ text: String) -> String {
            #"{"messages": [{"role": "user", "content": "\#(text)"}], "max_tokens": 10, "temperature": 0}"#
        }
        try await app().test(.router) { client in
            @Sendable func answer(_ text: String) async throws -> String {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(request(text))) { r throws in
                    #expect(r.status == .ok)
                    let choice = try #require((try object(r)["choices"] as? [[String: Any]])?.first)
                    return try #require((choice["message"] as? [String: Any])?["content"] as? String)
                }
            }
            var alone: [String] = []
            for p in prompts { alone.append(try await answer(p)) }
            let stepsBefore = metrics.decodeSteps(withMoreThan: 1)
            let together = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (i, p) in prompts.enumerated() { group.addTask { (i, try await answer(p)) } }
                var out = [String](repeating: "", count: prompts.count)
                for try await (i, text) in group { out[i] = text }
                return out
            }
            #expect(together == alone)
            #expect(metrics.decodeSteps(withMoreThan: 1) > stepsBefore, "no decode step ran two or more sequences")
        }
    }

    @Test("chat completion without streaming: one message, usage counted")
    func chat_notStreamed() async throws {
        try await app().test(.router) { client in
            let request = #"{"model": "x", "messages": [{"role": "user", "content": "The meaning of life"}], "max_tokens": 5, "temperature": 0, "unknown_field": [1, 2]}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(request)) { r throws in
                #expect(r.status == .ok)
                let o = try object(r)
                #expect(o["object"] as? String == "chat.completion")
                let choice = try #require((o["choices"] as? [[String: Any]])?.first)
                let message = try #require(choice["message"] as? [String: Any])
                #expect(message["role"] as? String == "assistant")
                #expect(["stop", "length"].contains(choice["finish_reason"] as? String ?? ""))
                let usage = try #require(o["usage"] as? [String: Int])
                #expect(usage["prompt_tokens"]! > 0 && usage["completion_tokens"]! <= 5)
                #expect(usage["total_tokens"] == usage["prompt_tokens"]! + usage["completion_tokens"]!)
            }
        }
    }

    @Test("streamed chat: role chunk, content deltas, finish chunk with usage, [DONE]; same text as unstreamed")
    func chat_streamedFraming() async throws {
        try await app().test(.router) { client in
            let base = #""messages": [{"role": "user", "content": "床前明月光，"}], "max_tokens": 12, "temperature": 0"#
            let plain = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body("{\(base)}")) { r throws in
                try #require(((try object(r)["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String)
            }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body("{\(base), \"stream\": true}")) { r throws in
                #expect(r.status == .ok && r.headers[.contentType] == "text/event-stream")
                let text = String(buffer: r.body)
                #expect(text.hasSuffix("data: [DONE]\n\n"))
                let events = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
                #expect(events.allSatisfy { $0.hasPrefix("data: ") && !$0.dropFirst(6).contains("\n") }, "one data line per event")
                let chunks = try events.dropLast().map { try #require(try JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any]) }
                let deltas = chunks.map { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]) ?? [:] }
                #expect(deltas.first?["role"] as? String == "assistant")
                let content = deltas.compactMap { $0["content"] as? String }.joined()
                #expect(content == plain)
                let last = try #require(chunks.last)
                #expect(["stop", "length"].contains((last["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String ?? ""))
                #expect((last["usage"] as? [String: Int])?["completion_tokens"] != nil)
                #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1)
                #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
                // byte for byte, with the id and timestamp of this response put back
                let id = chunks[0]["id"] as! String, created = chunks[0]["created"] as! Int
                let first = #"data: {"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0}],"created":\#(created),"id":"\#(id)","model":"glm-small-bilingual-q4","object":"chat.completion.chunk"}"#
                #expect(events[0] == first)
            }
        }
    }

    @Test("completions continue text, fill [MASK] blanks, and honour stop strings")
    func completions() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/v1/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"prompt": "The meaning of life", "max_tokens": 8, "temperature": 0}"#)) { r throws in
                let o = try object(r)
                #expect(o["object"] as? String == "text_completion")
                #expect((o["choices"] as? [[String: Any]])?.first?["text"] is String)
            }
            try await client.execute(uri: "/v1/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"prompt": "The [MASK] of life is love.", "max_tokens": 6, "temperature": 0}"#)) { r throws in
                let text = try #require((try object(r)["choices"] as? [[String: Any]])?.first?["text"] as? String)
                #expect(text.hasPrefix("The") && text.contains("of life is love"), "\(text)")
                #expect(!text.contains("[MASK]"))
            }
            // the unstopped text, then the same request stopped at its third character
            let full = try await client.execute(uri: "/v1/completions", method: .post, headers: jsonHeaders,
                                                body: body(#"{"prompt": "The meaning of life", "max_tokens": 12, "temperature": 0}"#)) { r throws in
                try #require((try object(r)["choices"] as? [[String: Any]])?.first?["text"] as? String)
            }
            guard full.count > 4 else { return }
            let stop = String(full.dropFirst(2).prefix(2))
            let escaped = String(decoding: try JSONSerialization.data(withJSONObject: [stop]), as: UTF8.self)
            try await client.execute(uri: "/v1/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"prompt": "The meaning of life", "max_tokens": 12, "temperature": 0, "stop": \#(escaped)}"#)) { r throws in
                let choice = try #require((try object(r)["choices"] as? [[String: Any]])?.first)
                let text = try #require(choice["text"] as? String)
                #expect(text == String(full[..<full.range(of: stop)!.lowerBound]), "\(text) vs \(full) stop \(stop)")
                #expect(choice["finish_reason"] as? String == "stop")
            }
        }
    }

    @Test("every error is OpenAI error JSON with the right status")
    func errors() async throws {
        try await app(maxBody: 2048).test(.router) { client in
            let chat = "/v1/chat/completions"
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body("{not json")) { try expectError($0, 400, "not valid JSON") }
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body(#"{"messages": "hi"}"#)) { try expectError($0, 400, "messages") }
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body(#"{"messages": []}"#)) { try expectError($0, 400, "non-empty") }
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders,
                                     body: body(#"{"messages": [{"role": "user", "content": 5}]}"#)) { try expectError($0, 400, "content") }
            let hi = #""messages": [{"role": "user", "content": "hi"}]"#
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body("{\(hi), \"max_tokens\": 0}")) { try expectError($0, 400, "max_tokens") }
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body("{\(hi), \"max_tokens\": 9999999}")) { try expectError($0, 400, "max_tokens") }
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body("{\(hi), \"temperature\": \"hot\"}")) { try expectError($0, 400, "temperature") }
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body("{\(hi), \"n\": 2}")) { try expectError($0, 400, "n = 2") }
            let long = String(repeating: "word ", count: 500)
            try await client.execute(uri: chat, method: .post, headers: jsonHeaders, body: body(#"{"messages": [{"role": "user", "content": "\#(long)"}]}"#)) {
                try expectError($0, 413)
            }
            try await client.execute(uri: "/v1/nothing", method: .get) { try expectError($0, 404, "no route") }
        }
        // a prompt longer than the context, with a body limit that lets it through
        let context = try await ready().0.loaded!.model.config.contextLength
        try await app().test(.router) { client in
            let long = String(repeating: "床前明月光疑是地上霜", count: context / 4)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"messages": [{"role": "user", "content": "\#(long)"}]}"#)) { try expectError($0, 400, "context") }
        }
    }

    @Test("--api-key: Bearer authentication, 401 otherwise; /health stays open")
    func authentication() async throws {
        try await app(apiKey: "sekret").test(.router) { client in
            try await client.execute(uri: "/v1/models", method: .get) { try expectError($0, 401, "API key") }
            try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer wrong"]) { try expectError($0, 401) }
            try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sekret"]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test("stop strings never show, even split across tokens")
    func stopFilter_holdsBackPrefixes() {
        var filter = StopFilter(["END", "\n\n"])
        var shown = ""
        var stopped = false
        for piece in ["Hello E", "N", "d wor", "ld E", "ND more"] {
            let (text, hit) = filter.append(piece)
            shown += text
            if hit { stopped = true; break }
        }
        #expect(stopped && shown == "Hello ENd world ")
    }
}
