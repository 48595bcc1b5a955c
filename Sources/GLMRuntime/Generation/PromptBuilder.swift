// PromptBuilder.swift — text to the token layout the reference code builds:
// GLM's special tokens written in the text ([MASK], [gMASK], [sMASK], <sop>,
// <eop>) become their ids, the rest goes through the model's tokenizer (its
// layout's rules included: TokenizerLayout.swift); then
//  - continue the text: text + [gMASK] + sop (GLM-130B generate.py, ChatGLM's tokenizer);
//  - fill blanks (--mask): the text holds [MASK] or [sMASK]; the architecture
//    says whether eos goes after text that does not end in a mask (GLM-130B's
//    fill_blanks does), then sop. BlankFilling.swift fills several blanks.
// The causal kin (ChatGLM2/3, GLM-4) put [gMASK] sop in front instead, as their
// tokenizers' prefix tokens, and chat through special tokens and text pieces
// (GLMArchitecture.chatPieces), where user text never becomes a special token.

import Foundation

public enum PromptMode: Sendable { case continueText, fillBlank }

public struct PromptBuilder: Sendable {
    public let tokenizer: any TextTokenizer
    public let config: ModelConfig
    /// Every special token's spelling by id (GLM's first), built once: decode runs every generated token.
    private let spellings: [Int32: String]

    public init(tokenizer: any TextTokenizer, config: ModelConfig) {
        self.tokenizer = tokenizer
        self.config = config
        spellings = Dictionary(Self.glmSpecials(config).map { ($0.1, $0.0) } + tokenizer.specialTokens.map { ($1, $0) },
                               uniquingKeysWith: { a, _ in a })
    }

    /// A plain-layout SentencePiece tokenizer (model id = piece id).
    public init(tokenizer: Tokenizer, config: ModelConfig) {
        self.init(tokenizer: GLMTokenizer(tokenizer), config: config)
    }

    /// The special tokens as they are written in text.
    var specials: [(String, Int32)] { Self.glmSpecials(config) }

    private static func glmSpecials(_ config: ModelConfig) -> [(String, Int32)] {
        var s = [("[MASK]", config.tokens.mask), ("[gMASK]", config.tokens.gmask), ("<sop>", config.tokens.sop), ("<eop>", config.tokens.eop)]
        if let smask = config.tokens.smask { s.append(("[sMASK]", smask)) }
        return s
    }

    /// Token ids of `text`, with special-token spellings mapped to the model's ids.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let next = specials.compactMap { spelling, id in rest.range(of: spelling, options: .literal).map { ($0, id) } }
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

    /// How one id reads: its special-token spelling, its tokenizer piece, or <id>.
    public func pieceName(_ id: Int32) -> String {
        spellings[id] ?? tokenizer.piece(id) ?? "<\(id)>"
    }

    /// The tokens a generation stops at: eop and eos, and the chat roles that start the
    /// next message (<|user|>, <|observation|>) when the tokenizer has them.
    public var stopTokens: [Int32] {
        config.tokens.endTokens + ["<|user|>", "<|observation|>"].compactMap { tokenizer.specialTokens[$0] }
    }

    /// The id of a special token by spelling: GLM's from the config, the rest from the tokenizer.
    public func specialID(_ spelling: String) throws -> Int32 {
        switch spelling {
        case "[gMASK]": return config.tokens.gmask
        case "<sop>": return config.tokens.sop
        case "[MASK]": return config.tokens.mask
        default:
            guard let id = tokenizer.specialTokens[spelling] else {
                throw GenerationError.invalidArgument("the model's tokenizer has no \(spelling) token")
            }
            return id
        }
    }

    /// The ids of a prompt given as special tokens and text (a chat template's).
    public func build(pieces: [PromptPiece]) throws -> [Int32] {
        var ids: [Int32] = []
        for piece in pieces {
            switch piece {
            case let .special(spelling): ids.append(try specialID(spelling))
            case let .text(text): ids += tokenizer.encode(text)
            }
        }
        guard ids.count < config.contextLength else {
            throw GenerationError.contextFull(needed: ids.count + 1, capacity: config.contextLength)
        }
        return ids
    }

    /// Text of `ids`: tokenizer pieces decoded together by the layout's rules,
    /// the model's special tokens spelled out, ids the tokenizer does not know
    /// (the model's vocabulary can be larger) shown as nothing.
    public func decode(_ ids: [Int32]) throws -> String {
        let known = tokenizer.idRange
        var text = "", run: [Int32] = []
        for id in ids {
            if let special = spellings[id] {
                text += try tokenizer.decode(run) + special
                run.removeAll()
            } else if known.contains(Int(id)) {
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
        if !config.bidirectionalPrefix {
            // the causal kin: [gMASK] sop first, as their tokenizers' prefix tokens; no blanks to fill
            guard mode == .continueText else {
                throw GenerationError.invalidArgument("\(config.architecture) is a causal model: it continues text and has no blanks to fill (--mask)")
            }
            ids = [t.gmask, t.sop] + ids
            guard ids.count < config.contextLength else { throw GenerationError.contextFull(needed: ids.count + 1, capacity: config.contextLength) }
            return ids
        }
        switch mode {
        case .continueText:
            if !ids.contains(t.gmask) { ids.append(t.gmask) }
        case .fillBlank:
            guard ids.contains(t.mask) || t.smask.map(ids.contains) == true else {
                throw GenerationError.invalidArgument("--mask needs a blank: write [MASK] (or [sMASK] for a sentence) where the text should be filled in")
            }
            if config.architectureType?.eosAfterBlankText == true, ![t.mask, t.gmask, t.smask].contains(ids.last) { ids.append(t.eos) }
        }
        if ids.last != t.sop { ids.append(t.sop) }
        guard ids.count < config.contextLength else {
            throw GenerationError.contextFull(needed: ids.count + 1, capacity: config.contextLength)
        }
        return ids
    }
}
