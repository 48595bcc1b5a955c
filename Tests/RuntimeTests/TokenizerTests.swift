// TokenizerTests.swift — the Swift SentencePiece tokenizer against the
// `sentencepiece` library's own encodings (Tests/Fixtures/tokenizer, made by
// tools/tokenizer/make_fixtures.py): a unigram and a BPE model trained on
// English and Chinese text, a few hundred held-out lines plus edge cases
// (whitespace runs, tabs, newlines, emoji and rare characters through byte
// fallback, GLM's special tokens inside text).

import Foundation
import GLMRuntime
import Testing

private struct Fixture: Decodable {
    struct Line: Decodable { let text: String; let ids: [Int32]; let pieces: [String]; let decoded: String }
    let library: String
    let models: [String: [Line]]
}

private let fixture: Fixture = {
    let url = Fixtures.root.appendingPathComponent("tokenizer/encodings.json")
    return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
}()

private func tokenizer(_ kind: String) throws -> Tokenizer {
    try Tokenizer(TokenizerVocabulary(sentencePieceModelAt: Fixtures.root.appendingPathComponent("tokenizer/\(kind).model").path))
}

@Suite("SentencePiece tokenizer")
struct TokenizerTests {
    @Test("encodings equal the library's on every fixture line", arguments: ["unigram", "bpe"])
    func encode_matchesLibrary(kind: String) throws {
        let t = try tokenizer(kind)
        let lines = fixture.models[kind]!
        #expect(lines.count >= 300)
        var mismatches = 0
        for line in lines {
            let ids = t.encode(line.text)
            if ids != line.ids {
                mismatches += 1
                let pieces = ids.map { (try? t.piece($0)) ?? "?" }
                Issue.record("\(kind) \(line.text.debugDescription): got \(pieces), expected \(line.pieces)")
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(lines.count) lines differ")
    }

    @Test("decoding equals the library's and round-trips the normalized text", arguments: ["unigram", "bpe"])
    func decode_matchesLibrary(kind: String) throws {
        let t = try tokenizer(kind)
        for line in fixture.models[kind]! {
            #expect(try t.decode(line.ids) == line.decoded, "\(kind) \(line.text.debugDescription)")
            #expect(try t.decode(t.encode(line.text)) == line.decoded)
        }
    }

    @Test("GLM special tokens are single pieces", arguments: ["unigram", "bpe"])
    func specialTokens_areWholePieces(kind: String) throws {
        let t = try tokenizer(kind)
        for special in ["[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>"] {
            let id = try #require(t.id(ofPiece: special))
            #expect(t.encode("x \(special) y").contains(id), "\(special)")
        }
    }

    @Test("bad ids and malformed models are clear errors")
    func badInput_throws() throws {
        let t = try tokenizer("unigram")
        #expect(throws: TokenizerError.self) { try t.decode([Int32(t.count)]) }
        #expect(throws: TokenizerError.self) { try t.decode([-1]) }
        #expect(throws: TokenizerError.self) { try TokenizerVocabulary(sentencePieceModel: [0x0A, 0xFF], file: "broken.model") }
        #expect(throws: TokenizerError.self) { try TokenizerVocabulary(sentencePieceModel: [], file: "empty.model") }
    }
}
