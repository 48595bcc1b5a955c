// PromptBuilder.swift — text to the token layout the reference code builds:
// GLM's special tokens written in the text ([MASK], [gMASK], [sMASK], <sop>,
// <eop>) become their ids, the rest goes through the tokenizer; then
//  - continue the text: text + [gMASK] + sop (GLM-130B generate.py, ChatGLM's tokenizer);
//  - fill a blank (--mask): the text holds [MASK]; + sop, and GLM-130B appends
//    eos before sop when the text does not end with the mask (fill_blanks).

public enum PromptMode: Sendable { case continueText, fillBlank }

public struct PromptBuilder {
    public let tokenizer: Tokenizer
    public let config: ModelConfig

    public init(tokenizer: Tokenizer, config: ModelConfig) {
        self.tokenizer = tokenizer
        self.config = config
    }

    /// The special tokens as they are written in text.
    var specials: [(String, Int32)] {
        var s = [("[MASK]", config.tokens.mask), ("[gMASK]", config.tokens.gmask), ("<sop>", config.tokens.sop), ("<eop>", config.tokens.eop)]
        if let smask = config.tokens.smask { s.append(("[sMASK]", smask)) }
        return s
    }

    /// Token ids of `text`, with special-token spellings mapped to the model's ids.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let next = specials.compactMap { spelling, id in rest.range(of: spelling).map { ($0, id) } }
                .min { $0.0.lowerBound < $1.0.lowerBound }
            guard let (range, id) = next else {
                ids += tokenizer.encode(String(rest))
                break
            }
            let before = rest[..<range.lowerBound]
            if !before.isEmpty { ids += tokenizer.encode(String(before)) }
            ids.append(id)
            rest = rest[range.upperBound...]
        }
        return ids
    }

    /// How one id reads: its tokenizer piece, its special-token spelling, or <id>.
    public func pieceName(_ id: Int32) -> String {
        if let special = specials.first(where: { $0.1 == id }) { return special.0 }
        return (try? tokenizer.piece(id)) ?? "<\(id)>"
    }

    /// Text of `ids`: tokenizer pieces decoded together, the model's special
    /// tokens spelled out, ids the tokenizer does not know (the model's
    /// vocabulary can be larger) shown as nothing.
    public func decode(_ ids: [Int32]) throws -> String {
        let spelling = Dictionary(specials.map { ($0.1, $0.0) }, uniquingKeysWith: { a, _ in a })
        var text = "", run: [Int32] = []
        for id in ids {
            if let special = spelling[id] {
                text += try tokenizer.decode(run) + special
                run.removeAll()
            } else if id >= 0, Int(id) < tokenizer.count {
                run.append(id)
            }
        }
        return text + (try tokenizer.decode(run))
    }

    public func build(_ text: String, mode: PromptMode) throws -> [Int32] {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw GenerationError.invalidArgument("the prompt is empty")
        }
        var ids = encode(text)
        let t = config.tokens
        switch mode {
        case .continueText:
            if !ids.contains(t.gmask) { ids.append(t.gmask) }
        case .fillBlank:
            guard ids.contains(t.mask) else {
                throw GenerationError.invalidArgument("--mask needs a blank: write [MASK] where the text should be filled in")
            }
            if config.architecture == GLM130B.name, ids.last != t.mask { ids.append(t.eos) }
        }
        if ids.last != t.sop { ids.append(t.sop) }
        guard ids.count < config.contextLength else {
            throw GenerationError.invalidArgument("the prompt has \(ids.count) tokens; the model's context holds \(config.contextLength)")
        }
        return ids
    }
}

import Foundation
