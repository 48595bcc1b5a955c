// GenerateParameters.swift — how tokens are chosen and when generation stops.

public struct GenerateParameters: Sendable, Equatable {
    /// Most tokens to generate.
    public var maxTokens = 128
    /// Softmax temperature; 0 picks the most likely token (greedy).
    public var temperature: Float = 0.7
    /// Keep only the k most likely tokens (0: no limit).
    public var topK = 40
    /// Keep the smallest set of tokens whose probability reaches p (1: no limit).
    public var topP: Float = 0.9
    /// > 1 discourages tokens already in the prompt or the output (CTRL's rule:
    /// positive logits are divided by it, negative ones multiplied).
    public var repetitionPenalty: Float = 1.1
    /// Same seed, same model, same prompt: same output.
    public var seed: UInt64 = 0
    /// Extra stop tokens besides the model's end tokens.
    public var stopTokens: [Int32] = []

    public init() {}

    public static var greedy: GenerateParameters {
        var p = GenerateParameters()
        p.temperature = 0
        p.repetitionPenalty = 1
        return p
    }

    /// More tokens than any GLM context holds (GLM-130B: 2048; the limit on a model's context is 2^20).
    public static let maxTokensLimit = 1 << 20

    public func validate() throws {
        func fail(_ s: String) -> GenerationError { .invalidArgument(s) }
        guard maxTokens > 0, maxTokens <= GenerateParameters.maxTokensLimit else {
            throw fail("--max-tokens must be in 1...\(GenerateParameters.maxTokensLimit), got \(maxTokens)")
        }
        guard temperature >= 0, temperature.isFinite else { throw fail("--temp must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw fail("--top-k must be >= 0, got \(topK)") }
        guard topP.isFinite else { throw fail("--top-p must be in (0, 1], got \(topP)") }
        guard topP > 0, topP <= 1 else { throw fail("--top-p must be in (0, 1], got \(topP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else { throw fail("--repeat-penalty must be > 0, got \(repetitionPenalty)") }
    }
}
