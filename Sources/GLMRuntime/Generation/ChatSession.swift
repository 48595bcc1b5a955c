// ChatSession.swift — a conversation: the history of turns, each new turn's
// prompt built by the architecture's chat template, and the answer streamed
// through the architecture's response post-processing.
//
// GLM-130B and ChatGLM-6B recompute every turn's whole prompt from an empty
// cache: they attend bidirectionally over everything before <sop>, so adding a
// turn changes the keys of every earlier position and the previous turn's KV
// cache is not a prefix of the new one (ChatTests shows it). The causal kin
// (ChatGLM2/3, GLM-4) keep the cache of the tokens the new prompt shares with
// the last one (its earlier turns) and run only the rest.
// When the history would not fit the context, the oldest turns are dropped.

import Foundation

public struct ChatReply: Sendable {
    /// The answer as shown (post-processed), which the history keeps.
    public let text: String
    /// Turns dropped from the front of the history so that this prompt fit.
    public let droppedTurns: Int
    public let promptTokens: [Int32]
    public let stats: GenerationStats
    /// The logits the first token was sampled from.
    public let promptLogits: [Float]
}

public final class ChatSession {
    public let codec: PromptBuilder
    public let session: InferenceSession
    public private(set) var history: [ChatTurn] = []
    /// The system message, for templates that have one (ChatGLM3, GLM-4).
    public var system: String?

    public init(session: InferenceSession, codec: PromptBuilder) {
        self.session = session
        self.codec = codec
    }

    public func clear() { history.removeAll() }

    private var architecture: (any GLMArchitecture.Type)? { codec.config.architectureType }

    /// The token ids of `query`'s turn after `history`, as generation starts from them.
    public func prompt(for query: String, history: [ChatTurn]) throws -> [Int32] {
        if let pieces = architecture?.chatPieces(format: codec.config.chatFormat, system: system, history: history, query: query) {
            return try codec.build(pieces: pieces)
        }
        let text = architecture?.chatPrompt(history: history, query: query) ?? query
        return try codec.build(text, mode: .continueText)
    }

    /// Answers `query`, streaming the shown text through `onText`; the turn joins the history.
    public func respond(_ query: String, parameters: GenerateParameters, onText: (String) -> Void = { _ in }) throws -> ChatReply {
        guard !query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw GenerationError.invalidArgument("the message is empty") }
        // drop the oldest turns until the prompt and at least one answer token fit
        var kept = history, dropped = 0, ids: [Int32]
        while true {
            do {
                ids = try prompt(for: query, history: kept)
                if ids.count < session.capacity { break }
            } catch GenerationError.contextFull where !kept.isEmpty {
                // too long for the model's context: drop a turn and try again
            }
            guard !kept.isEmpty else {
                throw GenerationError.invalidArgument("the message alone has more tokens than the context (\(session.capacity)) holds")
            }
            kept.removeFirst()
            dropped += 1
        }
        var shown = ResponseText(architecture: architecture)
        let stream = try TokenStream(session: session, codec: codec, prompt: ids, parameters: parameters, reuseCache: true)
        for token in stream { onText(shown.append(token.text)) }
        if let error = stream.error { throw error }
        onText(shown.finish())
        history = kept + [ChatTurn(query: query, answer: shown.text)]
        return ChatReply(text: shown.text, droppedTurns: dropped, promptTokens: ids, stats: stream.stats, promptLogits: stream.promptLogits)
    }
}

/// The architecture's response post-processing applied while the answer
/// streams: a tail that later text could still change (trailing whitespace,
/// which the final strip removes; an ASCII mark that a following ideograph
/// would make full-width; the start of a placeholder) is held back until it
/// cannot. What has been emitted is always a prefix of the final text.
public struct ResponseText: Sendable {
    public let architecture: (any GLMArchitecture.Type)?
    private var raw = ""
    private var emitted = ""

    public init(architecture: (any GLMArchitecture.Type)?) { self.architecture = architecture }

    /// The whole answer, post-processed.
    public var text: String { architecture?.postprocessResponse(raw) ?? raw }

    /// Adds raw text; returns what can be shown now.
    public mutating func append(_ piece: String) -> String {
        raw += piece
        var stable = text
        let unsettled: Set<Character> = [" ", "\n", "\t", ",", "!", ":", ";", "?", "，", "！", "：", "；", "？", "["]
        while let last = stable.last, unsettled.contains(last) { stable.removeLast() }
        // the start of the training-date placeholder, which post-processing replaces whole
        let placeholder = "[[训练时间]]"
        if let k = (1..<placeholder.count).reversed().first(where: { $0 <= stable.count && placeholder.hasPrefix(stable.suffix($0)) }) {
            stable.removeLast(k)
        }
        return emit(stable)
    }

    /// Everything not yet shown.
    public mutating func finish() -> String { emit(text) }

    private mutating func emit(_ stable: String) -> String {
        guard stable.hasPrefix(emitted), stable.count > emitted.count else { return "" }
        let fresh = String(stable.dropFirst(emitted.count))
        emitted = stable
        return fresh
    }
}
