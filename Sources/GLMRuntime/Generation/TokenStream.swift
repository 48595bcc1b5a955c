// TokenStream.swift — generation as a sequence: each element is one new token
// and the text it adds (held back while it ends inside a UTF-8 character that
// byte-fallback pieces are still spelling out).

public struct GeneratedToken: Sendable {
    public let id: Int32
    /// Text this token completes; may be empty.
    public let text: String
}

public struct GenerationStats: Sendable {
    public var promptTokens = 0
    /// Prompt tokens whose keys and values came from the cache instead (a causal chat's earlier turns).
    public var reusedTokens = 0
    public var generatedTokens = 0
    public var promptSeconds = 0.0
    public var generateSeconds = 0.0
    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    public var generatedTokensPerSecond: Double { generateSeconds > 0 ? Double(generatedTokens) / generateSeconds : 0 }
}

public final class TokenStream: Sequence, IteratorProtocol {
    private let session: any SequenceForwarding
    private var generator: SequenceGenerator
    private var logits: [Float]?
    private let prompt: [Int32]
    private let layout: PromptLayout?
    public private(set) var stats = GenerationStats()
    /// The logits of the prompt's last position (what the first token was sampled from).
    public private(set) var promptLogits: [Float] = []
    public private(set) var error: Error?

    /// `layout` names the prompt's mask and sop when they are not the prompt's first (blank filling).
    /// `reuseCache`: keep the cached tokens the prompt starts with (InferenceSession.reusePrefix);
    /// otherwise the prompt runs from an empty cache.
    public init(session: any SequenceForwarding, codec: PromptBuilder, prompt: [Int32], parameters: GenerateParameters,
                layout: PromptLayout? = nil, reuseCache: Bool = false) throws {
        generator = try SequenceGenerator(codec: codec, prompt: prompt, parameters: parameters,
                                          endTokens: codec.stopTokens)
        self.session = session
        self.layout = layout
        if reuseCache {
            let reused = session.reusePrefix(of: prompt)
            self.prompt = Array(prompt[reused...])
            stats.reusedTokens = reused
        } else {
            session.reset()
            self.prompt = prompt
        }
    }

    public func next() -> GeneratedToken? {
        do {
            if logits == nil {
                let start = ContinuousClock.now
                logits = try session.forward(prompt, layout: layout)
                promptLogits = logits!
                stats.promptTokens = prompt.count
                stats.promptSeconds = (ContinuousClock.now - start).seconds
            }
            guard !generator.reachedLimit, session.length < session.capacity else { return nil }
            let start = ContinuousClock.now
            guard let token = try generator.next(logits!) else { return nil }
            if !generator.reachedLimit, session.length < session.capacity {
                logits = nil // the session writes its logits buffer in place when no one else holds it
                logits = try session.forward([token.id])
            }
            stats.generatedTokens += 1
            stats.generateSeconds += (ContinuousClock.now - start).seconds
            return token
        } catch {
            self.error = error
            return nil
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
