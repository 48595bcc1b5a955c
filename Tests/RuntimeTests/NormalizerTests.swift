// NormalizerTests.swift — the Swift SentencePiece normalizer and GLM's text
// layouts against the `sentencepiece` library (Tests/Fixtures/tokenizer/glm,
// made by tools/tokenizer/make_glm_fixtures.py): models trained with every
// rule the library ships (nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf), a user rule
// file with a denormalizer, flag variants, and an ice_text-shaped model read
// through ChatGLM's and icetk's rules. Ids and decoded text must be equal,
// on held-out lines and on edge cases (full-width forms, ligatures, circled
// digits, CJK compatibility, combining marks, Hangul, emoji, zero-width and
// control characters, NBSP, \r\n, space runs).

import Foundation
import GLMRuntime
import Testing

private struct GLMFixture: Decodable {
    struct Line: Decodable {
        let text: String
        let ids: [Int32]
        let decoded: String
        let ids_no_dummy_prefix: [Int32]?
    }
    struct Layout: Decodable { let offset: Int32; let cases: [Line] }
    let library: String
    let normalizers: [String: [Line]]
    let layouts: [String: [String: Layout]]
}

private let glmFixture: GLMFixture = {
    let url = Fixtures.root.appendingPathComponent("tokenizer/glm/encodings.json")
    return try! JSONDecoder().decode(GLMFixture.self, from: Data(contentsOf: url))
}()

func glmFixtureModel(_ name: String) throws -> Tokenizer {
    try Tokenizer(TokenizerVocabulary(sentencePieceModelAt: Fixtures.root.appendingPathComponent("tokenizer/glm/\(name).model").path))
}

@Suite("SentencePiece normalizer")
struct NormalizerTests {
    static let models = ["nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "user_rules", "nmt_nfkc_bpe", "nmt_nfkc_no_prefix", "nmt_nfkc_keep_spaces"]

    @Test("ids and decoded text equal the library's under every normalization rule", arguments: models)
    func normalizedEncoding_matchesLibrary(model: String) throws {
        let t = try glmFixtureModel(model)
        let lines = try #require(glmFixture.normalizers[model])
        #expect(lines.count > 150)
        var mismatches = 0
        for line in lines {
            let ids = t.encode(line.text)
            if ids != line.ids {
                mismatches += 1
                Issue.record("\(model) \(line.text.debugDescription): got \(ids), expected \(line.ids)")
            }
            let decoded = try t.decode(line.ids)
            if decoded != line.decoded {
                mismatches += 1
                Issue.record("\(model) decode \(line.text.debugDescription): got \(decoded.debugDescription), expected \(line.decoded.debugDescription)")
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(lines.count) lines differ")
    }

    @Test("the character map survives the model file")
    func charsMap_roundTripsThroughGGUF() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("normalizer-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let vocabulary = try TokenizerVocabulary(sentencePieceModelAt: Fixtures.root.appendingPathComponent("tokenizer/glm/user_rules.model").path)
        #expect(vocabulary.normalizer.charsMap != nil && vocabulary.denormalizer != nil)
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("none"))
        vocabulary.write(to: &writer)
        TokenizerLayout.chatglm(offset: 20000).write(to: &writer)
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        let back = try #require(try GLMTokenizer(gguf: file))
        #expect(back.sentencePiece.vocabulary == vocabulary)
        #expect(back.layout == .chatglm(offset: 20000))
    }

    @Test("a corrupt character map is a clear error")
    func corruptCharsMap_throws() throws {
        #expect(throws: PrecompiledCharsMap.Malformed.self) { try PrecompiledCharsMap([1, 2, 3]) }
        #expect(throws: PrecompiledCharsMap.Malformed.self) { try PrecompiledCharsMap([0xFF, 0xFF, 0, 0, 1, 2, 3, 4, 0]) }
        // a value unit (bit 31) pointing past the replacement strings
        #expect(throws: PrecompiledCharsMap.Malformed.self) { try PrecompiledCharsMap([4, 0, 0, 0, 0x10, 0, 0, 0x80, 0x41, 0]) }
        #expect(throws: PrecompiledCharsMap.Malformed.self) { try PrecompiledCharsMap([4, 0, 0, 0, 0, 0, 0, 0, 0x41]) }
    }
}

@Suite("GLM tokenizer layouts")
struct TokenizerLayoutTests {
    static func layout(_ name: String, offset: Int32) -> TokenizerLayout {
        name == "icetk" ? .icetk(offset: offset) : .chatglm(offset: offset)
    }

    @Test("ChatGLM and icetk ids and text equal the library plus THUDM's rules", arguments: ["chatglm_original", "chatglm_rerelease", "icetk"])
    func layout_matchesReference(name: String) throws {
        let fixture = try #require(glmFixture.layouts["ice_text"]?[name])
        let t = GLMTokenizer(try glmFixtureModel("ice_text"), layout: Self.layout(name, offset: fixture.offset))
        var mismatches = 0
        for line in fixture.cases {
            let ids = t.encode(line.text)
            if ids != line.ids {
                mismatches += 1
                Issue.record("\(name) \(line.text.debugDescription): got \(ids), expected \(line.ids)")
            }
            if let expected = line.ids_no_dummy_prefix, t.encode(line.text, addDummyPrefix: false) != expected {
                mismatches += 1
                Issue.record("\(name) without dummy prefix \(line.text.debugDescription): got \(t.encode(line.text, addDummyPrefix: false)), expected \(expected)")
            }
            let decoded = try t.decode(line.ids)
            if decoded != line.decoded {
                mismatches += 1
                Issue.record("\(name) decode \(line.text.debugDescription): got \(decoded.debugDescription), expected \(line.decoded.debugDescription)")
            }
        }
        #expect(fixture.cases.count > 100)
        #expect(mismatches == 0, "\(mismatches) differences")
    }

    @Test("ice_text's pieces sit where the layout says")
    func iceTextPieces_areLaidOutAsTheRulesSay() throws {
        let sp = try glmFixtureModel("ice_text")
        let mask = try #require(sp.id(ofPiece: "[MASK]"))
        let expected = ["[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>", "<eop>", "<ENC>", "<dBLOCK>", "<|tab|>", "<|blank_2|>"]
        for (i, piece) in expected.enumerated() { #expect(try sp.piece(mask + Int32(i)) == piece) }
        #expect(try sp.piece(mask + 8 + 80) == "<0x00>")
        #expect(sp.count == Int(mask) + 8 + 80 + 256)
    }

    @Test("image-token ids decode to nothing, as the reference drops them")
    func imageTokens_areDropped() throws {
        let t = GLMTokenizer(try glmFixtureModel("ice_text"), layout: .chatglm(offset: 20000))
        let ids = t.encode("hello")
        #expect(try t.decode([5, 19999, Int32.min] + ids) == (try t.decode(ids)), "an id far below the offset is dropped, not overflowed")
    }
}
