// SequenceGenerator.swift — what one sequence does with each row of logits:
// sample (with its own seeded sampler and history), stop at an end token, and
// turn the tokens so far into newly completed text (held back while it ends
// inside a UTF-8 character that byte-fallback pieces are still spelling out).
// TokenStream drives one with a session; the batch decoder drives many.

public struct SequenceGenerator {
    private let codec: PromptBuilder
    private var sampler: Sampler
    private let stops: Set<Int32>
    private var history: [Int32]
    public private(set) var generated: [Int32] = []
    private var emittedText = ""

    public init(codec: PromptBuilder, prompt: [Int32], parameters: GenerateParameters, endTokens: [Int32]) throws {
        try parameters.validate()
        guard !prompt.isEmpty else { throw GenerationError.invalidArgument("the prompt is empty") }
        self.codec = codec
        sampler = Sampler(parameters)
        stops = Set(endTokens + parameters.stopTokens)
        history = prompt
    }

    public var parameters: GenerateParameters { sampler.parameters }
    /// Whether max_tokens tokens have been generated.
    public var reachedLimit: Bool { generated.count >= sampler.parameters.maxTokens }

    /// The next token from one row of logits, or nil at an end token.
    public mutating func next(_ logits: [Float]) throws -> GeneratedToken? {
        let token = sampler.next(logits, history: history)
        if stops.contains(token) { return nil }
        generated.append(token)
        history.append(token)
        // the text this token completes; a trailing U+FFFD means a character is still being spelled
        let text = try codec.decode(generated)
        var fresh = ""
        if text.hasPrefix(emittedText), !text.hasSuffix("\u{FFFD}") {
            fresh = String(text.dropFirst(emittedText.count))
            emittedText = text
        }
        return GeneratedToken(id: token, text: fresh)
    }
}
