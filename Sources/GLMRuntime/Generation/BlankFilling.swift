// BlankFilling.swift — GLM-130B generate.py's fill_blanks: every blank of a
// prompt filled left to right, each fill seeing the earlier ones.
//  1. The generation mask is [MASK] if the prompt has one, else [sMASK] (a
//     sentence blank), else [gMASK] (appended when absent). The others stay.
//  2. Repeatedly: the first remaining generation mask is the one filled. The
//     sequence + sop runs; generation stops at eop/eos; the span replaces that
//     mask, and the tokens after it (eos included) stay where they were.
//  3. Positions follow the architecture with this mask as the layout's mask:
//     for [MASK]/[sMASK], GLM-130B gives every index from sop on the mask's position.

public struct FilledBlank: Sendable {
    /// The generated span, as text.
    public let text: String
    public let ids: [Int32]
}

public final class BlankFiller {
    private let session: any SequenceForwarding
    private let codec: PromptBuilder
    private let parameters: GenerateParameters
    /// The sequence being filled (without the trailing sop).
    public private(set) var sequence: [Int32]
    public let generationMask: Int32
    public private(set) var stats = GenerationStats()

    /// `prompt` is PromptBuilder.build(_, mode: .fillBlank)'s output (ending in sop).
    public init(session: any SequenceForwarding, codec: PromptBuilder, prompt: [Int32], parameters: GenerateParameters) throws {
        try parameters.validate()
        let t = codec.config.tokens
        var sequence = prompt
        if sequence.last == t.sop { sequence.removeLast() }
        if sequence.contains(t.mask) {
            generationMask = t.mask
        } else if let smask = t.smask, sequence.contains(smask) {
            generationMask = smask
        } else {
            generationMask = t.gmask
            if !sequence.contains(t.gmask) { sequence.append(t.gmask) }
        }
        guard !sequence.contains(t.sop) else {
            throw GenerationError.invalidArgument("a blank-filling prompt holds <sop> before its end; write only [MASK], [sMASK] or [gMASK] blanks")
        }
        self.session = session
        self.codec = codec
        self.parameters = parameters
        self.sequence = sequence
    }

    /// Fills every blank; `onText` receives the filled text as it grows: the
    /// text before each blank, its span token by token, and the rest at the end
    /// (decoded from the whole sequence, so spacing is the tokenizer's).
    public func fillAll(onText: (String) -> Void) throws -> [FilledBlank] {
        var emitted = ""
        func emit(_ ids: [Int32]) throws {
            let text = try codec.decode(ids)
            // a trailing U+FFFD means byte pieces are still spelling a character
            guard text.hasPrefix(emitted), !text.hasSuffix("\u{FFFD}") else { return }
            onText(String(text.dropFirst(emitted.count)))
            emitted = text
        }
        var blanks: [FilledBlank] = []
        while let mask = sequence.firstIndex(of: generationMask) {
            let before = Array(sequence[..<mask])
            try emit(before)
            var span: [Int32] = []
            guard let blank = try fillNext({ token in
                span.append(token.id)
                try? emit(before + span)
            }) else { break }
            blanks.append(blank)
        }
        try emit(sequence)
        return blanks
    }

    /// Blanks still to fill.
    public var remaining: Int { sequence.filter { $0 == generationMask }.count }

    /// Fills the next blank, calling `onToken` with each generated token as it
    /// comes; nil when no blank is left.
    public func fillNext(_ onToken: (GeneratedToken) -> Void = { _ in }) throws -> FilledBlank? {
        guard let mask = sequence.firstIndex(of: generationMask) else { return nil }
        let t = codec.config.tokens
        let prompt = sequence + [t.sop]
        guard prompt.count < session.capacity else {
            throw GenerationError.contextFull(needed: prompt.count + 1, capacity: session.capacity)
        }
        var parameters = self.parameters
        parameters.seed = self.parameters.seed &+ UInt64(stats.generatedTokens) // each blank its own stream
        let layout = PromptLayout(sopIndex: sequence.count, maskIndex: mask, isGMask: generationMask == t.gmask)
        let stream = try TokenStream(session: session, codec: codec, prompt: prompt, parameters: parameters, layout: layout)
        var span: [Int32] = []
        for token in stream {
            span.append(token.id)
            onToken(token)
        }
        if let error = stream.error { throw error }
        stats.promptTokens += stream.stats.promptTokens
        stats.promptSeconds += stream.stats.promptSeconds
        stats.generatedTokens += stream.stats.generatedTokens
        stats.generateSeconds += stream.stats.generateSeconds
        sequence = Array(sequence[..<mask]) + span + Array(sequence[(mask + 1)...])
        return FilledBlank(text: try codec.decode(span), ids: span)
    }
}
