// ChatTests.swift — glm-run chat's session: ChatGLM-6B's template, every
// turn recomputed from an empty cache (turn-2 logits equal a fresh run on the
// full prompt, and differ from what reusing turn 1's cache would give: GLM's
// prompt is bidirectional), the oldest turns dropped when the history would
// not fit, and the streamed answer equal to the post-processed one.

import Foundation
@testable import GLMRuntime
import Testing

/// chatglm-6b-tiny grown to the ice_text fixture's vocabulary, with its tokenizer in the file.
private let chatModel: GLMModel = {
    let dir = try! chatGLMFolder("chat", vocab: 1900, specialsAt: 0, imageTokens: 0)
    _ = try! ModelConverter(type: .f32).convert(folder: dir, to: dir + "/model.gguf")
    return try! GLMModel(path: dir + "/model.gguf")
}()

private func chat(capacity: Int = 256) throws -> ChatSession {
    let codec = PromptBuilder(tokenizer: try #require(try GLMTokenizer(gguf: chatModel.file!)), config: chatModel.config)
    return ChatSession(session: try InferenceSession(model: chatModel, capacity: capacity), codec: codec)
}

private var greedy: GenerateParameters {
    var p = GenerateParameters.greedy
    p.maxTokens = 6
    return p
}

@Suite("Chat", .serialized)
struct ChatTests {
    @Test("ChatGLM-6B's template: the query alone, then [Round i] 问：… 答：…")
    func template_followsChatGLM() {
        #expect(ChatGLM6B.chatPrompt(history: [], query: "你好") == "你好")
        let history = [ChatTurn(query: "你好", answer: "你好！"), ChatTurn(query: "hi", answer: "hello")]
        #expect(ChatGLM6B.chatPrompt(history: history, query: "再见")
                == "[Round 0]\n问：你好\n答：你好！\n[Round 1]\n问：hi\n答：hello\n[Round 2]\n问：再见\n答：")
        #expect(GLM130B.chatPrompt(history: [ChatTurn(query: "a", answer: "b")], query: "c") == "a\nb\nc")
    }

    @Test("turn 2's logits equal a fresh run on the full prompt, not a reuse of turn 1's cache")
    func secondTurn_recomputesItsPrompt() throws {
        let session = try chat()
        let first = try session.respond("床前明月光", parameters: greedy)
        let second = try session.respond("疑是地上霜", parameters: greedy)
        #expect(session.history.count == 2 && session.history[0].answer == first.text)
        // a fresh session over the whole second prompt gives the same logits, bit for bit
        let fresh = try InferenceSession(model: chatModel, capacity: 256)
        let expected = try fresh.forward(second.promptTokens)
        #expect(second.promptLogits == expected)
        #expect(second.promptTokens.suffix(2) == [chatModel.config.tokens.gmask, chatModel.config.tokens.sop])
        // reusing turn 1's cache and appending only the new tokens gives other logits:
        // the new text changes the keys of every earlier prompt position
        let reuse = try InferenceSession(model: chatModel, capacity: 256)
        let turn1 = first.promptTokens
        _ = try reuse.forward(turn1)
        let shared = zip(turn1, second.promptTokens).prefix { $0 == $1 }.count
        #expect(shared < turn1.count, "the second prompt does not extend the first one")
        let reused = try reuse.forward(Array(second.promptTokens[shared...].prefix(max(1, second.promptTokens.count - turn1.count))))
        #expect(reused != expected)
    }

    @Test("when the history would not fit, the oldest turns are dropped and the reply says so")
    func longHistory_dropsOldestTurns() throws {
        let session = try chat(capacity: 40)
        var dropped = 0
        for message in ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡", "春眠不觉晓"] {
            let reply = try session.respond(message, parameters: greedy)
            #expect(reply.promptTokens.count < 40)
            dropped += reply.droppedTurns
        }
        #expect(dropped > 0)
        #expect(session.history.last?.query == "春眠不觉晓")
        session.clear()
        #expect(session.history.isEmpty)
    }

    @Test("the streamed answer is the post-processed answer, character by character")
    func streamedText_equalsPostprocessed() {
        for raw in ["  你好,我是ChatGLM!  ", "中,文:好?", "今年是[[训练时间]],对吗?", "a, b! c", "问,\n答"] {
            var text = ResponseText(architecture: ChatGLM6B.self)
            var shown = ""
            for c in raw { shown += text.append(String(c)) }
            shown += text.finish()
            #expect(shown == ChatGLM6B.postprocessResponse(raw), "\(raw.debugDescription)")
        }
    }
}
