// KinGoldenTests.swift — ChatGLM2/3 and GLM-4 (9B and 0414) against logits from
// THUDM's chatglm3 modeling code and transformers' GlmForCausalLM and
// Glm4ForCausalLM (Tests/Fixtures/{chatglm3,glm,glm4}-tiny, KIN-README.md):
// converted from their safetensors under the checkpoints' own names, run
// through the pre-norm plan (RMSNorm, grouped-query attention, interleaved
// partial RoPE, SwiGLU, causal mask). Their prompt logits, cached greedy steps and
// uncached pass run in GoldenModelTests with v1's; here: what is theirs alone.

import Foundation
import GLMRuntime
import KernelBridge
import Testing

let kinArchitectures = ["chatglm3-tiny", "glm-tiny", "glm4-tiny"]

@Suite("Golden kin models (reference logits)", .serialized)
struct KinGoldenTests {
    @Test("each kin checkpoint converts to its architecture with the config's shapes", arguments: kinArchitectures)
    func conversion_readsTheConfig(arch: String) throws {
        let c = try ConvertedModels.model(arch, .f32).config
        let expected = ["chatglm3-tiny": "chatglm2", "glm-tiny": "glm", "glm4-tiny": "glm4"][arch]!
        #expect(c.architecture == expected)
        #expect(c.heads == 4 && c.kvHeads == 2 && c.headDim == 32 && c.rotaryDim == 16 && c.ffnInner == 352 && c.layers == 2)
        #expect(c.norm == .rmsNorm && c.feedForward == .swiglu && c.rope == .interleaved && !c.tiedOutput)
        #expect(c.qkvBias && !c.linearBias)
        #expect(c.residual == (arch == "glm4-tiny" ? .sandwich : .preNorm))
        // glm-tiny's config carries an unusual eps: it must be read, not defaulted
        #expect(c.layerNormEps == (arch == "glm-tiny" ? 1.5625e-7 : 1e-5))
    }

    @Test("fused and unfused pre-norm plans agree and match the reference", arguments: kinArchitectures)
    func fusedAndUnfused_agree(arch: String) throws {
        let golden = try Golden(arch)
        let model = try ConvertedModels.model(arch, .f32)
        let fusedPlan = LayerPlan.fused(model.config)
        #expect(fusedPlan.contains(.swiGLU(output: .activated, input: .up)))
        #expect(fusedPlan.contains(.residualRMSNorm(output: .normed, residual: .x, y: arch == "glm4-tiny" ? .branch : .projected, .ffn)))
        for c in golden.cases {
            let fused = try InferenceSession(model: model, capacity: 128, fusion: true).forward(c.inputIDs, allLogits: true)
            let unfused = try InferenceSession(model: model, capacity: 128, fusion: false).forward(c.inputIDs, allLogits: true)
            let bound = LogitTolerance.f32 * golden.maxAbsLogit
            #expect(maxAbsDiff(unfused, try golden.expected.floats("\(c.name).logits")) <= bound, "\(arch) \(c.name) unfused")
            #expect(maxAbsDiff(fused, unfused) <= bound, "\(arch) \(c.name) fused vs unfused")
        }
    }

    /// The batch decoder shares the forward pass; with grouped-query attention and the
    /// causal mask each sequence's logits in a batch must still be bit for bit its own.
    @Test("batched decode gives each kin sequence exactly its single-sequence logits", arguments: kinArchitectures)
    func batchedDecode_isBitwiseSingle(arch: String) throws {
        let golden = try Golden(arch)
        let model = try ConvertedModels.model(arch, .q8_0)
        let decoder = try BatchDecoder(model: model, maxSequences: golden.cases.count)
        var sequences: [BatchDecoder.Sequence] = [], alone: [[Float]] = []
        for c in golden.cases {
            let s = try decoder.makeSequence(capacity: 96)
            try decoder.beginPrefill(s, prompt: c.inputIDs)
            _ = try decoder.continuePrefill(layers: model.config.layers)
            sequences.append(s)
            let session = try InferenceSession(model: model, capacity: 96)
            _ = try session.forward(c.inputIDs)
            alone.append(try session.forward([c.generated[0]]))
        }
        let batched = try decoder.decode(sequences, tokens: golden.cases.map { $0.generated[0] })
        let vocab = model.config.vocab
        for (i, c) in golden.cases.enumerated() {
            #expect(Array(batched[(i * vocab)..<((i + 1) * vocab)]) == alone[i], "\(arch) \(c.name)")
        }
    }
}
