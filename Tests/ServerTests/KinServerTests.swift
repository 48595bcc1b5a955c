// KinServerTests.swift — /v1/chat/completions on a GLM-4-0414 model (the golden
// tiny checkpoint with a tokenizer.json trained here): the system message takes
// its own role token, and the prompt is the architecture's role template.

import Foundation
import GLMRuntime
@testable import GLMServer
import Hummingbird
import HummingbirdTesting
import Testing

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

private func kinModel() throws -> LoadedModel {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-kin-server-\(getpid())")
    try? FileManager.default.removeItem(at: dir)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for file in ["config.json", "model.safetensors"] {
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("glm4-tiny/\(file)"), to: dir.appendingPathComponent(file))
    }
    try FileManager.default.copyItem(at: fixtures.appendingPathComponent("kin-tokenizers/glm4-0414.json"), to: dir.appendingPathComponent("tokenizer.json"))
    let path = dir.appendingPathComponent("glm4.gguf").path
    _ = try ModelConverter(type: .q8_0).convert(folder: dir.path, to: path)
    let glm = try GLMModel(path: path)
    let tokenizer = try #require(try TextTokenizers.load(gguf: glm.file!))
    return LoadedModel(name: "glm4-tiny", model: glm, codec: PromptBuilder(tokenizer: tokenizer, config: glm.config))
}

@Suite("Server with a kin model", .serialized)
struct KinServerTests {
    @Test("chat completions use the role template, the system message its own role")
    func chatCompletion_roleTemplate() async throws {
        let loaded = try kinModel()
        let metrics = ServerMetrics()
        let worker = ModelWorker(queueLimit: 4, metrics: metrics) { loaded }
        for _ in 0..<600 where worker.loaded == nil { try await Task.sleep(for: .milliseconds(20)) }
        _ = try #require(worker.loaded)
        let app = Application(router: GLMServer.router(worker: worker, metrics: metrics, options: ServerOptions()))
        let expected = try loaded.codec.build(pieces: try #require(GLM4_0414.chatPieces(format: .roles, system: "Be brief.", history: [], query: "Hello")))
        let request = #"{"model": "glm4-tiny", "max_tokens": 4, "temperature": 0, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}"#
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: request)) { r throws in
                #expect(r.status == .ok)
                let json = try #require(try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any])
                let usage = try #require(json["usage"] as? [String: Any])
                #expect(usage["prompt_tokens"] as? Int == expected.count, "\(usage) vs \(expected.count) template tokens")
                #expect((json["choices"] as? [[String: Any]])?.first?["message"] != nil)
            }
        }
        #expect(expected.contains(loaded.codec.tokenizer.specialTokens["<|system|>"]!))
        // the same conversation sent again with one more turn: the sequence's cache keeps its start
        let before = metrics.promptTokensReusedTotal
        let again = #"{"model": "glm4-tiny", "max_tokens": 2, "temperature": 0, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "More"}]}"#
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: again)) { r throws in #expect(r.status == .ok) }
        }
        #expect(metrics.promptTokensReusedTotal - before >= expected.count, "reused \(metrics.promptTokensReusedTotal - before) of a \(expected.count)-token start")
        #expect(metrics.prometheusText().contains("glm_prompt_tokens_reused_total"))
    }
}
