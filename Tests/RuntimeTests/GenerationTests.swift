// GenerationTests.swift — text in, streamed text out: a golden checkpoint plus
// a small SentencePiece tokenizer converted into one file, prompts laid out
// as the reference does, sampling repeatable by seed, and the sampler's rules.

import Foundation
@testable import GLMRuntime
import Testing

/// glm-130b-tiny with the 1000-piece fixture tokenizer beside it, converted to q4_row.
private let modelWithTokenizer: GLMModel = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-tok-\(getpid())")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let source = Fixtures.folder("glm-130b-tiny")
    for name in ["config.json", "model.safetensors"] where !FileManager.default.fileExists(atPath: dir.path + "/" + name) {
        try! FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir.path + "/" + name)
    }
    let tokenizer = Fixtures.root.appendingPathComponent("tokenizer/small-unigram.model").path
    if !FileManager.default.fileExists(atPath: dir.path + "/tokenizer.model") {
        try! FileManager.default.copyItem(atPath: tokenizer, toPath: dir.path + "/tokenizer.model")
    }
    _ = try! ModelConverter(type: .q4_row).convert(folder: dir.path, to: dir.path + "/model.gguf")
    return try! GLMModel(path: dir.path + "/model.gguf")
}()

private func generate(_ prompt: String, mode: PromptMode = .continueText, _ parameters: GenerateParameters) throws -> ([Int32], String) {
    let model = modelWithTokenizer
    let tokenizer = Tokenizer(try #require(try TokenizerVocabulary(gguf: model.file!)))
    let codec = PromptBuilder(tokenizer: tokenizer, config: model.config)
    let ids = try codec.build(prompt, mode: mode)
    let stream = try TokenStream(session: InferenceSession(model: model, capacity: 256), codec: codec, prompt: ids, parameters: parameters)
    var tokens: [Int32] = [], text = ""
    for token in stream {
        tokens.append(token.id)
        text += token.text
    }
    if let error = stream.error { throw error }
    return (tokens, text)
}

@Suite("Generation", .serialized)
struct GenerationTests {
    @Test("the tokenizer travels inside the model file")
    func tokenizer_isStoredInModelFile() throws {
        let vocabulary = try #require(try TokenizerVocabulary(gguf: modelWithTokenizer.file!))
        let original = try TokenizerVocabulary(sentencePieceModelAt: Fixtures.root.appendingPathComponent("tokenizer/small-unigram.model").path)
        #expect(vocabulary == original)
    }

    @Test("prompts follow the reference layouts for [gMASK] and [MASK]")
    func prompts_followReferenceLayout() throws {
        let model = modelWithTokenizer
        let t = model.config.tokens
        let builder = PromptBuilder(tokenizer: Tokenizer(try #require(try TokenizerVocabulary(gguf: model.file!))), config: model.config)
        let gmask = try builder.build("The meaning of life", mode: .continueText)
        #expect(Array(gmask.suffix(2)) == [t.gmask, t.sop])
        let blank = try builder.build("The capital of [MASK] is Paris", mode: .fillBlank)
        #expect(Array(blank.suffix(2)) == [t.eos, t.sop], "GLM-130B appends eos when the text does not end with the mask")
        #expect(blank.contains(t.mask))
        #expect(throws: GenerationError.self) { try builder.build("no blank here", mode: .fillBlank) }
        #expect(throws: GenerationError.self) { try builder.build("   ", mode: .continueText) }
        #expect(throws: GenerationError.self) { try builder.build(String(repeating: "word ", count: 3000), mode: .continueText) }
    }

    @Test("a seed makes sampling repeatable; greedy follows the argmax")
    func sampling_isRepeatableBySeed() throws {
        var p = GenerateParameters()
        p.maxTokens = 12
        p.seed = 42
        let a = try generate("The meaning of life", p)
        let b = try generate("The meaning of life", p)
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(!a.0.isEmpty)
        p.seed = 43
        let c = try generate("The meaning of life", p)
        #expect(c.0 != a.0, "another seed should give another sample")
        var greedy = GenerateParameters.greedy
        greedy.maxTokens = 5
        #expect(try generate("床前明月光，", greedy).0 == generate("床前明月光，", greedy).0)
    }

    @Test("sampler: temperature 0 is argmax; top-k 1 is argmax; the repetition penalty demotes seen tokens")
    func sampler_rules() {
        let logits: [Float] = [0.1, 2.0, 1.9, -1]
        var greedy = Sampler(.greedy)
        #expect(greedy.next(logits, history: []) == 1)
        var p = GenerateParameters()
        p.topK = 1
        var topK = Sampler(p)
        #expect((0..<20).allSatisfy { _ in topK.next(logits, history: []) == 1 })
        var penalised = GenerateParameters.greedy
        penalised.repetitionPenalty = 1.2
        var s = Sampler(penalised)
        #expect(s.next(logits, history: [1]) == 2, "2.0 / 1.2 < 1.9")
        var bad = GenerateParameters()
        bad.topP = 0
        #expect(throws: GenerationError.self) { try bad.validate() }
    }
}

@Suite("Sampler internals")
struct SamplerSelectionTests {
    @Test("top-k selection equals sorting the whole vocabulary")
    func topIndices_equalsFullSort() {
        var rng = SplitMix64(seed: 3)
        for n in [1, 7, 100, 1000] {
            let values = (0..<n).map { _ in Float(Int(rng.next() % 50)) } // many ties
            let sorted = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
            for k in [1, 5, 40, n] { #expect(topIndices(values, k) == Array(sorted.prefix(k)), "n \(n) k \(k)") }
        }
    }
}
