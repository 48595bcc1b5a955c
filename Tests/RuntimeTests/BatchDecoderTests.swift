// BatchDecoderTests.swift — continuous batching changes nothing a sequence
// computes: run alone (InferenceSession) or in a batch that others join and
// leave (BatchDecoder), every logit of every step is the same bits, so the
// tokens are too, greedy or sampled.

import Foundation
import GLMRuntime
import KernelBridge
import Testing

/// One sequence's logits at each step and its tokens.
private struct Run: Equatable, CustomStringConvertible {
    var logits: [[Float]] = []
    var tokens: [Int32] = []

    static func == (a: Run, b: Run) -> Bool {
        a.tokens == b.tokens && a.logits.count == b.logits.count
            && zip(a.logits, b.logits).allSatisfy { $0.elementsEqual($1) { $0.bitPattern == $1.bitPattern } }
    }

    var description: String { "tokens \(tokens) over \(logits.count) steps" }

    /// The first step whose logits differ from `other`'s in any bit.
    func firstDifference(from other: Run) -> Int? {
        zip(logits, other.logits).enumerated().first { !$0.element.0.elementsEqual($0.element.1) { $0.bitPattern == $1.bitPattern } }?.offset
    }
}

private struct Request {
    let prompt: [Int32]
    let parameters: GenerateParameters
}

private func alone(_ model: GLMModel, _ r: Request, kernels: any KernelSet, kvType: KVCacheType = .f32) throws -> Run {
    let session = try InferenceSession(model: model, capacity: model.config.contextLength, kernels: kernels, kvType: kvType)
    var sampler = Sampler(r.parameters), history = r.prompt, run = Run()
    var logits = try session.forward(r.prompt)
    while run.tokens.count < r.parameters.maxTokens {
        run.logits.append(logits)
        let token = sampler.next(logits, history: history)
        run.tokens.append(token)
        history.append(token)
        logits = try session.forward([token])
    }
    return run
}

/// Request i joins after `i * stagger` decode steps, its prompt prefilled `slice` layers at a
/// time between steps; each leaves after its max tokens.
private func batched(_ model: GLMModel, _ requests: [Request], kernels: any KernelSet, stagger: Int, slice: Int,
                     kvType: KVCacheType = .f32) throws -> [Run] {
    let decoder = try BatchDecoder(model: model, maxSequences: requests.count, kernels: kernels)
    var runs = [Run](repeating: Run(), count: requests.count)
    var samplers = requests.map { Sampler($0.parameters) }, histories = requests.map(\.prompt)
    var sequences: [BatchDecoder.Sequence?] = Array(repeating: nil, count: requests.count)
    var next: [Int32?] = Array(repeating: nil, count: requests.count) // the token each active sequence runs next
    var step = 0, joined = 0
    func sample(_ i: Int, _ logits: [Float]) {
        runs[i].logits.append(logits)
        let token = samplers[i].next(logits, history: histories[i])
        runs[i].tokens.append(token)
        histories[i].append(token)
        next[i] = runs[i].tokens.count < requests[i].parameters.maxTokens ? token : nil
    }
    while joined < requests.count || next.contains(where: { $0 != nil }) {
        if joined < requests.count, step >= joined * stagger {
            let s = try decoder.makeSequence(kvType: kvType)
            sequences[joined] = s
            try decoder.beginPrefill(s, prompt: requests[joined].prompt)
            while decoder.isPrefilling {
                if let logits = try decoder.continuePrefill(layers: slice) { sample(joined, logits) }
                // a decode step of the others between two slices, as the server interleaves them
                let active = next.indices.filter { next[$0] != nil && $0 != joined }
                if decoder.isPrefilling, !active.isEmpty {
                    let out = try decoder.decode(active.map { sequences[$0]! }, tokens: active.map { next[$0]! })
                    for (row, i) in active.enumerated() { sample(i, Array(out[(row * model.config.vocab)..<((row + 1) * model.config.vocab)])) }
                    step += 1
                }
            }
            joined += 1
            continue
        }
        let active = next.indices.filter { next[$0] != nil }
        guard !active.isEmpty else { step += 1; continue }
        let out = try decoder.decode(active.map { sequences[$0]! }, tokens: active.map { next[$0]! })
        for (row, i) in active.enumerated() { sample(i, Array(out[(row * model.config.vocab)..<((row + 1) * model.config.vocab)])) }
        step += 1
    }
    return runs
}

private func requests(_ prompts: [[Int32]], model: GLMModel) -> [Request] {
    prompts.enumerated().map { i, prompt in
        var p = i.isMultiple(of: 2) ? GenerateParameters.greedy : GenerateParameters()
        p.seed = UInt64(i + 1)
        p.maxTokens = min(5 + 3 * i, model.config.contextLength - prompt.count)
        return Request(prompt: prompt, parameters: p)
    }
}

@Suite("Continuous batching", .serialized)
struct BatchDecoderTests {
    @Test("a sequence's logits are bitwise the same alone and in a batch that others join and leave",
          arguments: [("glm-130b-tiny", ConversionType.q4_row), ("glm-130b-tiny", .f32), ("chatglm-6b-tiny", .q4_0), ("chatglm-6b-tiny", .q8_0)])
    func batchEqualsAlone(arch: String, type: ConversionType) throws {
        let model = try ConvertedModels.model(arch, type)
        let golden = try Golden(arch)
        // four sequences of different prompts and lengths, greedy and sampled
        let prompts = (golden.cases.map(\.inputIDs) + golden.cases.map { Array($0.inputIDs.suffix(max(3, $0.inputIDs.count / 2))) })
        let reqs = requests(Array(prompts.prefix(4)), model: model)
        for (activations, kv) in [(ActivationPrecision.q16, KVCacheType.f32), (.f32, .f32), (.q16, .f16)] {
            let kernels = try Kernels(activations: activations)
            let expected = try reqs.map { try alone(model, $0, kernels: kernels, kvType: kv) }
            let got = try batched(model, reqs, kernels: kernels, stagger: 2, slice: 1, kvType: kv)
            for i in reqs.indices {
                #expect(got[i] == expected[i],
                        "\(arch) \(type) \(activations) kv \(kv) sequence \(i): logits differ first at step \(got[i].firstDifference(from: expected[i]).map(String.init) ?? "-")")
            }
        }
    }

    @Test("the shipped model's batch of 8 equals its 8 sequences run alone")
    func shippedModel_batchOfEight() throws {
        let models = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("models")
        let model = try GLMModel(path: models.appendingPathComponent("glm-small-bilingual-q4.gguf").path)
        let tokenizer = Tokenizer(try #require(try TokenizerVocabulary(gguf: model.file!)))
        let codec = PromptBuilder(tokenizer: tokenizer, config: model.config)
        let texts = ["The meaning of life", "床前明月光，", "Once upon a time", "A", "The capital of France is", "春眠不觉晓，",
                     "In 1492,", "Water boils at"]
        let reqs = requests(try texts.map { try codec.build($0, mode: .continueText) }, model: model)
        let kernels = try Kernels()
        let expected = try reqs.map { try alone(model, $0, kernels: kernels) }
        let got = try batched(model, reqs, kernels: kernels, stagger: 1, slice: 2)
        for i in reqs.indices { #expect(got[i] == expected[i], "sequence \(i) '\(texts[i])'") }
    }

    @Test("a decode step refuses sequences without a prompt, full caches and bad token ids")
    func decode_refusesBadInput() throws {
        let model = try ConvertedModels.model("glm-130b-tiny", .f32)
        let decoder = try BatchDecoder(model: model, maxSequences: 2)
        let s = try decoder.makeSequence(capacity: 4)
        #expect(throws: GenerationError.self) { _ = try decoder.decode([s], tokens: [1]) }
        try decoder.beginPrefill(s, prompt: Array(try Golden("glm-130b-tiny").cases[0].inputIDs.prefix(4)))
        while try decoder.continuePrefill(layers: 100) == nil {}
        #expect(throws: GenerationError.contextFull(needed: 5, capacity: 4)) { _ = try decoder.decode([s], tokens: [1]) }
        let t = try decoder.makeSequence()
        #expect(throws: GenerationError.self) { try decoder.beginPrefill(t, prompt: [Int32(model.config.vocab)]) }
        #expect(throws: GenerationError.self) { _ = try decoder.decode([s, s, s], tokens: [1, 1, 1]) }
    }
}
