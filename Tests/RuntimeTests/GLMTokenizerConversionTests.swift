// GLMTokenizerConversionTests.swift — a ChatGLM checkpoint folder with
// ice_text.model (and tokenizer_config.json) converts with no flags to a
// model file whose tokenizer follows THUDM's rules and id offset, for both
// ChatGLM-6B layouts; an inconsistent folder is refused; GLM-130B folders
// get icetk's layout. The checkpoints are the golden chatglm-6b-tiny with
// its embedding and lm_head grown to the vocabulary the layout needs.

import Foundation
@testable import GLMRuntime
import Testing

/// A chatglm-6b-tiny folder whose vocabulary is `vocab`, with special ids at
/// `offset` + ice_text's pieces, ice_text.model and (if given) tokenizer_config.json.
func chatGLMFolder(_ name: String, vocab: Int, specialsAt offset: Int, imageTokens: Int?) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-ice-\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let golden = Fixtures.folder("chatglm-6b-tiny")
    let ice = try glmFixtureModel("ice_text")
    func piece(_ p: String) throws -> Int { offset + Int(try #require(ice.id(ofPiece: p))) }
    var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: golden + "/config.json"))) as! [String: Any]
    config["vocab_size"] = vocab
    config["mask_token_id"] = try piece("[MASK]")
    config["gmask_token_id"] = try piece("[gMASK]")
    config["bos_token_id"] = try piece("<sop>")
    config["eos_token_id"] = try piece("<eop>")
    try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
    if let imageTokens {
        try Data(#"{"num_image_tokens": \#(imageTokens), "tokenizer_class": "ChatGLMTokenizer"}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
    }
    try FileManager.default.copyItem(atPath: Fixtures.root.appendingPathComponent("tokenizer/glm/ice_text.model").path,
                                     toPath: dir + "/ice_text.model")
    // the golden weights, with embedding rows repeated up to the new vocabulary
    let source = try SafeTensorsFile(path: golden + "/model.safetensors")
    var header: [String: Any] = [:]
    var data = Data()
    for name in source.names {
        var bytes = try source.bytes(name)
        var shape = try source.entry(name).shape
        if name == "transformer.word_embeddings.weight" || name == "lm_head.weight" {
            let rowBytes = bytes.count / shape[0]
            var grown = Data(capacity: vocab * rowBytes)
            while grown.count < vocab * rowBytes { grown += bytes.prefix(min(bytes.count, vocab * rowBytes - grown.count)) }
            bytes = grown
            shape[0] = vocab
        }
        header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [data.count, data.count + bytes.count]]
        data += bytes
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    try (file + json + data).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
    return dir
}

@Suite("ChatGLM and icetk tokenizers from checkpoints", .serialized)
struct GLMTokenizerConversionTests {
    @Test("ice_text + tokenizer_config.json convert to the layout THUDM's code reads",
          arguments: [("original", 21900, 20000), ("rerelease", 1900, 0)])
    func iceTextFolder_convertsWithItsLayout(name: String, vocab: Int, offset: Int) throws {
        let dir = try chatGLMFolder(name, vocab: vocab, specialsAt: offset, imageTokens: offset)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ModelConverter(type: .q8_0).convert(folder: dir, to: dir + "/model.gguf")
        let model = try GLMModel(path: dir + "/model.gguf")
        let tokenizer = try #require(try GLMTokenizer(gguf: model.file!))
        #expect(tokenizer.layout == .chatglm(offset: Int32(offset)))
        let codec = PromptBuilder(tokenizer: tokenizer, config: model.config)
        // the library's ids plus the rules, as the fixture records them
        let expected = try #require(GLMFixtureLines.layout(offset == 0 ? "chatglm_rerelease" : "chatglm_original"))
        for line in expected where !line.text.contains("[") && !line.text.contains("<") {
            #expect(codec.encode(line.text) == line.ids, "\(line.text.debugDescription)")
        }
        // a prompt runs end to end with the offset ids
        let ids = try codec.build("床前明月光，\n疑是地上霜。", mode: .continueText)
        #expect(ids.suffix(2) == [model.config.tokens.gmask, model.config.tokens.sop])
        #expect(ids.allSatisfy { Int($0) >= offset })
        let logits = try InferenceSession(model: model, capacity: 64).forward(ids)
        #expect(logits.count == vocab && logits.allSatisfy(\.isFinite))
    }

    @Test("without tokenizer_config.json the offset is where config.json puts [MASK]")
    func iceTextFolder_withoutTokenizerConfig_infersOffset() throws {
        let dir = try chatGLMFolder("inferred", vocab: 21900, specialsAt: 20000, imageTokens: nil)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ModelConverter(type: .f16).convert(folder: dir, to: dir + "/model.gguf")
        #expect(try GLMTokenizer(gguf: GGUFFile(path: dir + "/model.gguf"))?.layout == .chatglm(offset: 20000))
    }

    @Test("a folder whose num_image_tokens disagrees with config.json is refused, naming both")
    func inconsistentFolder_isRefused() throws {
        let dir = try chatGLMFolder("inconsistent", vocab: 21900, specialsAt: 20000, imageTokens: 0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            _ = try ModelConverter(type: .f16).convert(folder: dir, to: dir + "/model.gguf")
            Issue.record("converted an inconsistent folder")
        } catch {
            let message = "\(error)"
            #expect(message.contains("[MASK]") && message.contains("num_image_tokens") && message.contains("21500"), "\(message)")
        }
        let tooSmall = try chatGLMFolder("small", vocab: 1700, specialsAt: 0, imageTokens: 0)
        defer { try? FileManager.default.removeItem(atPath: tooSmall) }
        #expect(throws: ModelFileError.self) { try ModelConverter(type: .f16).convert(folder: tooSmall, to: tooSmall + "/model.gguf") }
    }

    @Test("GLM-130B reads ice_text.model through icetk's layout")
    func glm130b_usesIcetk() throws {
        #expect(GLM130B.iceTextLayout(offset: 20000) == .icetk(offset: 20000))
        #expect(ChatGLM6B.iceTextLayout(offset: 0) == .chatglm(offset: 0))
    }
}

@Suite("Blank filling")
struct BlankFillingTests {
    private static func greedy(_ n: Int) -> GenerateParameters {
        var p = GenerateParameters()
        p.temperature = 0
        p.maxTokens = n
        p.repetitionPenalty = 1
        return p
    }

    @Test("one [MASK] fills with the golden model's greedy tokens")
    func oneBlank_matchesGolden() throws {
        let golden = try Golden("glm-130b-tiny")
        let c = try #require(golden.cases.first { $0.name == "mask_infill" })
        let model = try ConvertedModels.model("glm-130b-tiny", .f32)
        let codec = PromptBuilder(tokenizer: try glmFixtureModel("ice_text"), config: model.config)
        let filler = try BlankFiller(session: InferenceSession(model: model, capacity: 64), codec: codec,
                                     prompt: c.inputIDs, parameters: Self.greedy(c.generated.count))
        let blank = try #require(try filler.fillNext())
        let ends = Set(model.config.tokens.endTokens)
        #expect(blank.ids == Array(c.generated.prefix { !ends.contains($0) }))
        #expect(filler.remaining == 0)
        #expect(try filler.fillNext() == nil)
    }

    @Test("two blanks fill left to right, the second seeing the first")
    func twoBlanks_fillInOrder() throws {
        let model = try ConvertedModels.model("glm-130b-tiny", .f32)
        let t = model.config.tokens
        let codec = PromptBuilder(tokenizer: try glmFixtureModel("ice_text"), config: model.config)
        let prompt: [Int32] = [10, 11, 12, t.mask, 13, 14, t.mask, 15, t.eos, t.sop]
        let filler = try BlankFiller(session: InferenceSession(model: model, capacity: 64), codec: codec, prompt: prompt, parameters: Self.greedy(4))
        #expect(filler.remaining == 2)
        let first = try #require(try filler.fillNext())
        #expect(filler.sequence == [10, 11, 12] + first.ids + [13, 14, t.mask, 15, t.eos])
        let second = try #require(try filler.fillNext())
        #expect(filler.sequence == [10, 11, 12] + first.ids + [13, 14] + second.ids + [15, t.eos])

        // the second fill is a fresh greedy run over the spliced text, its mask the layout's
        let spliced = [10, 11, 12] + first.ids + [13, 14, t.mask, 15, t.eos]
        let mask = try #require(spliced.firstIndex(of: t.mask))
        let session = try InferenceSession(model: model, capacity: 64)
        var logits = try session.forward(spliced + [t.sop], layout: PromptLayout(sopIndex: spliced.count, maskIndex: mask, isGMask: false))
        var expected: [Int32] = []
        for _ in 0..<4 {
            let next = argmax(logits[...])
            if t.endTokens.contains(next) { break }
            expected.append(next)
            logits = try session.forward([next])
        }
        #expect(second.ids == expected)
        // GLM-130B: every index from sop on takes the filled mask's position
        #expect(session.positions(start: spliced.count, count: 3, layout: PromptLayout(sopIndex: spliced.count, maskIndex: mask, isGMask: false)).positions
                == [Int32](repeating: Int32(mask), count: 3))
    }

    @Test("[sMASK] is filled like [MASK]; without a blank [gMASK] is the generation mask")
    func generationMask_followsGeneratePy() throws {
        let model = try ConvertedModels.model("glm-130b-tiny", .f32)
        let t = model.config.tokens
        let smask = try #require(t.smask)
        let codec = PromptBuilder(tokenizer: try glmFixtureModel("ice_text"), config: model.config)
        let session = try InferenceSession(model: model, capacity: 64)
        #expect(try BlankFiller(session: session, codec: codec, prompt: [10, smask, 11, t.eos, t.sop], parameters: Self.greedy(2)).generationMask == smask)
        #expect(try BlankFiller(session: session, codec: codec, prompt: [10, smask, t.mask, t.sop], parameters: Self.greedy(2)).generationMask == t.mask)
        let plain = try BlankFiller(session: session, codec: codec, prompt: [10, 11, t.sop], parameters: Self.greedy(2))
        #expect(plain.generationMask == t.gmask && plain.sequence == [10, 11, t.gmask])
    }
}

@Suite("ChatGLM response post-processing")
struct ChatGLMResponseTests {
    private struct Case: Decodable { let text: String; let processed: String }

    @Test("ASCII punctuation beside CJK becomes full-width, as the authors' chat code does")
    func postprocess_matchesReference() throws {
        let url = Fixtures.root.appendingPathComponent("tokenizer/glm/responses.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
        #expect(cases.count > 10)
        for c in cases { #expect(ChatGLM6B.postprocessResponse(c.text) == c.processed, "\(c.text.debugDescription)") }
        #expect(GLM130B.postprocessResponse(" a,中 ") == " a,中 ")
    }
}

/// The layout fixture lines, shared with NormalizerTests' decoder.
enum GLMFixtureLines {
    struct Line: Decodable { let text: String; let ids: [Int32] }
    private struct File: Decodable {
        struct Layout: Decodable { let cases: [Line] }
        let layouts: [String: [String: Layout]]
    }
    static func layout(_ name: String) -> [Line]? {
        let url = Fixtures.root.appendingPathComponent("tokenizer/glm/encodings.json")
        let file = try? JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        return file?.layouts["ice_text"]?[name]?.cases
    }
}
