// KinTokenizerTests.swift — the kin's tokenizers against the reference libraries
// (Tests/Fixtures/kin-tokenizers, tools/tokenizer/make_kin_fixtures.py): each
// case's ids exactly as `sentencepiece` (ChatGLM3's tokenizer.model), `tiktoken`
// (GLM-4-9B's) and `tokenizers` (GLM-4-0414's tokenizer.json) give them.

import Foundation
import GLMRuntime
import Testing

private let folder = Fixtures.folder("kin-tokenizers")

private func cases(_ name: String) throws -> [(text: String, ids: [Int32])] {
    let data = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name)-encodings.json"))
    let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return (root["cases"] as! [[String: Any]]).map { ($0["text"] as! String, ($0["ids"] as! [Int]).map(Int32.init)) }
}

private func expectEncodings(_ tokenizer: any TextTokenizer, _ name: String, lossless: Bool) throws {
    let all = try cases(name)
    #expect(all.count > 200)
    var wrong = 0
    for (text, ids) in all {
        let got = tokenizer.encode(text)
        if got != ids {
            wrong += 1
            if wrong <= 3 { Issue.record("\(name) '\(text.prefix(60))': \(got.prefix(20)) vs reference \(ids.prefix(20))") }
        }
        if lossless { #expect(try tokenizer.decode(ids) == text, "\(name): byte-level decoding is lossless") }
    }
    #expect(wrong == 0, "\(name): \(wrong) of \(all.count) encodings differ from the reference library")
}

@Suite("Kin tokenizers (reference libraries)")
struct KinTokenizerTests {
    @Test("ChatGLM3's SentencePiece tokenizer.model encodes as sentencepiece does")
    func chatGLM3SentencePiece_matchesLibrary() throws {
        let vocabulary = try TokenizerVocabulary(sentencePieceModelAt: "\(folder)/chatglm3.model")
        try expectEncodings(GLMTokenizer(Tokenizer(vocabulary)), "chatglm3", lossless: false)
    }

    @Test("GLM-4-9B's tiktoken tokenizer.model encodes as tiktoken does, specials after the ranks")
    func glm4Tiktoken_matchesLibrary() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/glm4.tiktoken"))
        let bpe = try ByteLevelBPE(tiktoken: data, specialTokens: nil, source: "glm4.tiktoken")
        try expectEncodings(bpe, "glm4", lossless: true)
        #expect(bpe.specialTokens["<|endoftext|>"] == Int32(bpe.tokens.count))
        #expect(bpe.specialTokens["<|user|>"] == Int32(bpe.tokens.count + 7))
        // a special token's spelling in text is text
        #expect(!bpe.encode("<|user|>").contains(bpe.specialTokens["<|user|>"]!))
    }

    @Test("GLM-4-0414's tokenizer.json encodes as tokenizers does, added tokens as specials")
    func glm4TokenizerJSON_matchesLibrary() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/glm4-0414.json"))
        let bpe = try ByteLevelBPE(tokenizerJSON: data, source: "glm4-0414.json")
        try expectEncodings(bpe, "glm4-0414", lossless: true)
        #expect(bpe.specialTokens["[gMASK]"] != nil && bpe.specialTokens["<|assistant|>"] != nil)
    }

    @Test("malformed tiktoken files and tokenizer.json are clear errors")
    func malformedFiles_areClearErrors() throws {
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(tiktoken: Data("QQ== 0\nQg== 5\n".utf8), specialTokens: nil, source: "t") }
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(tiktoken: Data("QQ== 0\n".utf8), specialTokens: nil, source: "t") } // bytes missing
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(tokenizerJSON: Data("[]".utf8), source: "t") }
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(tokenizerJSON: Data(#"{"model": {"type": "Unigram"}}"#.utf8), source: "t") }
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/glm4-0414.json"))) as! [String: Any]
        var model = json["model"] as! [String: Any]
        model["merges"] = ["Ġ nonexistent"]
        json["model"] = model
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(tokenizerJSON: JSONSerialization.data(withJSONObject: json), source: "t") }
        // a pre-tokenizer regex other than the known ones (a hostile one could backtrack for ever) is refused
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/glm4-0414.json"))
        let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: #"\\p{N}{1,3}"#, with: #"(a+)+b"#)
        #expect(text != String(decoding: data, as: UTF8.self), "the fixture's pattern was edited")
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(tokenizerJSON: Data(text.utf8), source: "t") }
    }
}
