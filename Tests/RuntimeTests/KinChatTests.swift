// KinChatTests.swift — a chat with each kin architecture end to end: the golden
// tiny checkpoint beside a tokenizer in its family's format, converted to a
// model file, its prompts built by the architecture's template, and the second
// turn reusing the first turn's KV cache (these models are causal), which must
// give the logits a recompute from an empty cache gives.

import Foundation
import GLMRuntime
import Testing

/// (golden checkpoint, tokenizer fixture, the name the checkpoint folder gives it)
private let kinChats = [("chatglm3-tiny", "chatglm3.model", "tokenizer.model"), ("glm-tiny", "glm4.tiktoken", "tokenizer.model"),
                        ("glm4-tiny", "glm4-0414.json", "tokenizer.json")]

private func chatModel(_ arch: String, _ tokenizer: String, _ name: String) throws -> (GLMModel, PromptBuilder) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-kin-chat-\(getpid())-\(arch)")
    try? FileManager.default.removeItem(at: dir)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for file in ["config.json", "model.safetensors"] {
        try FileManager.default.copyItem(atPath: Fixtures.folder(arch) + "/" + file, toPath: dir.appendingPathComponent(file).path)
    }
    try FileManager.default.copyItem(atPath: Fixtures.folder("kin-tokenizers") + "/" + tokenizer, toPath: dir.appendingPathComponent(name).path)
    let path = dir.appendingPathComponent("model.gguf").path
    _ = try ModelConverter(type: .q8_0).convert(folder: dir.path, to: path)
    let model = try GLMModel(path: path)
    let text = try #require(try TextTokenizers.load(gguf: model.file!))
    return (model, PromptBuilder(tokenizer: text, config: model.config))
}

private func greedy(_ tokens: Int) -> GenerateParameters {
    var p = GenerateParameters.greedy
    p.maxTokens = tokens
    return p
}

@Suite("Chat with the kin", .serialized)
struct KinChatTests {
    @Test("a two-turn chat: the template's ids, stops at the roles, the second turn reuses the first's cache",
          arguments: kinChats.map { $0.0 })
    func twoTurnChat_reusesTheCache(arch: String) throws {
        let (_, tokenizerFile, name) = kinChats.first { $0.0 == arch }!
        let (model, codec) = try chatModel(arch, tokenizerFile, name)
        let t = codec.tokenizer, specials = t.specialTokens
        // the GLM tokens come from the tokenizer, numbered after its text vocabulary
        #expect(model.config.tokens.gmask == specials["[gMASK]"] && model.config.tokens.sop == (specials["sop"] ?? specials["<sop>"]))
        #expect(codec.stopTokens.contains(specials["<|user|>"]!) && codec.stopTokens.contains(specials["<|observation|>"]!))
        #expect(codec.stopTokens.contains(model.config.tokens.eos))

        let chat = ChatSession(session: try InferenceSession(model: model, capacity: 512), codec: codec)
        let q1 = "What is the capital of France?", q2 = "And of Italy?"
        let first = try chat.respond(q1, parameters: greedy(12))
        let head = [model.config.tokens.gmask, model.config.tokens.sop, specials["<|user|>"]!]
        // ChatGLM3 encodes the "\n" after the role apart from the message; GLM-4's template is one text
        let body = arch == "chatglm3-tiny" ? t.encode("\n") + t.encode(q1) : t.encode("\n" + q1)
        #expect(first.promptTokens == head + body + [specials["<|assistant|>"]!])
        #expect(first.stats.reusedTokens == 0)

        let second = try chat.respond(q2, parameters: greedy(4))
        #expect(Array(second.promptTokens.prefix(first.promptTokens.count)) == first.promptTokens, "the first prompt is a prefix")
        #expect(second.stats.reusedTokens >= first.promptTokens.count, "reused \(second.stats.reusedTokens)")
        #expect(second.stats.promptTokens == second.promptTokens.count - second.stats.reusedTokens)
        // the same prompt from an empty cache: the same logits to the FP32 bound (the chunks differ, the function does not)
        let fresh = try InferenceSession(model: model, capacity: 512).forward(second.promptTokens)
        let bound = 1e-4 * fresh.map(abs).max()!
        #expect(maxAbsDiff(second.promptLogits, fresh) <= bound, "reused vs recomputed: \(maxAbsDiff(second.promptLogits, fresh))")
        print("\(arch) turn 2: \(second.stats.reusedTokens) of \(second.promptTokens.count) prompt tokens reused, \(second.stats.promptTokens) run")
    }

    @Test("a ChatGLM2 model chats in rounds of text after [gMASK] sop")
    func chatGLM2_roundsTemplate() throws {
        let pieces = try #require(ChatGLM2.chatPieces(format: .rounds, system: nil, history: [ChatTurn(query: "q1", answer: "a1")], query: "q2"))
        #expect(pieces == [.special("[gMASK]"), .special("<sop>"), .text("[Round 1]\n\n问：q1\n\n答：a1\n\n[Round 2]\n\n问：q2\n\n答：")])
        let roles = try #require(ChatGLM2.chatPieces(format: .roles, system: "Be brief.", history: [], query: "hi"))
        #expect(roles == [.special("[gMASK]"), .special("<sop>"), .special("<|system|>"), .text("\n"), .text("Be brief."),
                          .special("<|user|>"), .text("\n"), .text("hi"), .special("<|assistant|>")])
    }

    @Test("the bidirectional architectures never reuse a cache across prompts")
    func bidirectionalModels_neverReuse() throws {
        let model = try ConvertedModels.model("chatglm-6b-tiny", .f32)
        let session = try InferenceSession(model: model, capacity: 64)
        let ids: [Int32] = [5, 6, 7, model.config.tokens.gmask, model.config.tokens.sop]
        _ = try session.forward(ids)
        #expect(session.reusePrefix(of: ids + [9]) == 0 && session.length == 0)
        let kin = try ConvertedModels.model("glm-tiny", .f32)
        let causal = try InferenceSession(model: kin, capacity: 64)
        _ = try causal.forward([1, 2, 3, 4])
        #expect(causal.reusePrefix(of: [1, 2, 3, 4, 5]) == 4 && causal.length == 4)
        #expect(causal.reusePrefix(of: [1, 2, 9]) == 2 && causal.length == 2, "a prompt that differs after two tokens keeps two")
        #expect(causal.reusePrefix(of: [1, 2]) == 1, "at least one token runs, for its logits")
    }
}

@Suite("The batch decoder keeps a causal prompt's cached start", .serialized)
struct BatchPrefixReuseTests {
    @Test("a prompt that starts with a sequence's cached tokens prefills only the rest, to the logits of a fresh prefill")
    func beginPrefill_keepsTheCachedStart() throws {
        let model = try ConvertedModels.model("glm-tiny", .q8_0)
        let decoder = try BatchDecoder(model: model, maxSequences: 2)
        let s = try decoder.makeSequence(capacity: 96)
        let first: [Int32] = [5, 17, 42, 99, 3, 77, 120]
        #expect(try decoder.beginPrefill(s, prompt: first) == 0)
        _ = try decoder.continuePrefill(layers: model.config.layers)
        _ = try decoder.decode([s], tokens: [8])
        _ = try decoder.decode([s], tokens: [9])
        #expect(s.cachedIDs == first + [8, 9])
        let second = first + [8, 9, 31, 64, 11]
        #expect(try decoder.beginPrefill(s, prompt: second) == first.count + 2)
        let reused = try #require(try decoder.continuePrefill(layers: model.config.layers))
        let fresh = try InferenceSession(model: model, capacity: 96).forward(second)
        #expect(maxAbsDiff(reused, fresh) <= 1e-4 * fresh.map(abs).max()!, "kept vs fresh: \(maxAbsDiff(reused, fresh))")
        #expect(s.length == second.count && s.cachedIDs == second)
        // a prompt that parts from the cache after two tokens keeps two
        #expect(try decoder.beginPrefill(s, prompt: [5, 17, 1, 2]) == 2)
        decoder.cancelPrefill()
        // GLM-130B and ChatGLM-6B never keep a cache across prompts
        let v1 = try ConvertedModels.model("chatglm-6b-tiny", .f32)
        let d1 = try BatchDecoder(model: v1, maxSequences: 1)
        let s1 = try d1.makeSequence(capacity: 32)
        let p: [Int32] = [5, 6, 7, v1.config.tokens.gmask, v1.config.tokens.sop]
        _ = try d1.beginPrefill(s1, prompt: p)
        _ = try d1.continuePrefill(layers: v1.config.layers)
        #expect(try d1.beginPrefill(s1, prompt: p + [9]) == 0)
    }
}
