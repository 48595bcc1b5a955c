// TextTokenizer.swift — what the prompt builder needs of a model's tokenizer,
// whichever algorithm it runs: SentencePiece inside GLM's layout rules
// (GLMTokenizer: GLM-130B, ChatGLM-6B, ChatGLM2/3) or byte-level BPE
// (ByteLevelBPE: GLM-4's tiktoken file and GLM-4-0414's tokenizer.json).

public protocol TextTokenizer: Sendable {
    /// Model ids of plain text: special-token spellings in it are text, never specials.
    func encode(_ text: String) -> [Int32]
    /// The text of ids the tokenizer's text vocabulary covers (idRange).
    func decode(_ ids: [Int32]) throws -> String
    /// How one text id reads in the vocabulary, if the tokenizer has it.
    func piece(_ id: Int32) -> String?
    /// Model ids of the text vocabulary.
    var idRange: Range<Int> { get }
    /// Special tokens by spelling: GLM's ([gMASK], sop, ...) and the chat roles
    /// (<|user|>, ...), beyond the text vocabulary. Only prompt templates emit them.
    var specialTokens: [String: Int32] { get }
}

extension GLMTokenizer: TextTokenizer {
    public func encode(_ text: String) -> [Int32] { encode(text, addDummyPrefix: true) }
}

public enum TextTokenizers {
    /// The tokenizer stored in `file`: SentencePiece or byte-level BPE; nil when it has none.
    public static func load(gguf file: GGUFFile) throws -> (any TextTokenizer)? {
        if let bpe = try ByteLevelBPE(gguf: file) { return bpe }
        return try GLMTokenizer(gguf: file)
    }
}
