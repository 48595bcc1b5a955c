// KVCacheTests.swift — the half-size KV cache (--kv-type f16) against the FP32
// one on the golden models: the same greedy tokens, logits that move less than
// the model authors' own fp16 run moves them, and half the memory.

import Foundation
import GLMRuntime
import KernelBridge
import Testing

@Suite("KV cache types", .serialized)
struct KVCacheTests {
    /// Rounding keys and values to fp16 (relative step 2^-11) must keep every greedy
    /// token. Whether it may be the default is decided against the model authors'
    /// fp16 run (every weight and activation in fp16; glm-130b-tiny has one): the
    /// default is f32 unless the fp16 cache moves the logits less than that run.
    /// Measured: 1.4e-5 on glm-130b-tiny against the run's 3.2e-6 (4x more; why the
    /// whole-fp16 run moves less is not established here), 3.6e-7 on chatglm-6b-tiny;
    /// so f32 stays the default.
    /// The 1e-3 bound only catches a broken cache (a wrong offset or conversion
    /// moves logits by nmse ~1e-1 or more); it is 70x the worst case measured.
    @Test("an fp16 KV cache keeps every greedy token; it is not the default while it misses the fp16 run's bound",
          arguments: ["glm-130b-tiny", "chatglm-6b-tiny"])
    func halfCache_keepsTokens(arch: String) throws {
        let golden = try Golden(arch), model = try ConvertedModels.model(arch, .f32)
        let reference = try Golden("glm-130b-tiny")
        let fp16Run = try reference.cases.compactMap { c -> Double? in
            guard reference.expected.names.contains("\(c.name).logits_fp16_reference") else { return nil }
            return nmse(try reference.expected.floats("\(c.name).logits_fp16_reference"), try reference.expected.floats("\(c.name).logits"))
        }.min()
        let bound = try #require(fp16Run)
        var worst = 0.0, flips = 0, steps = 0
        for c in golden.cases {
            let f32 = try InferenceSession(model: model, capacity: 128, kvType: .f32)
            let f16 = try InferenceSession(model: model, capacity: 128, kvType: .f16)
            var (a, b) = (try f32.forward(c.inputIDs), try f16.forward(c.inputIDs))
            for token in c.generated.dropLast() {
                worst = max(worst, nmse(b, a))
                if argmax(a[...]) != argmax(b[...]) { flips += 1 }
                steps += 1
                (a, b) = (try f32.forward([token]), try f16.forward([token]))
            }
        }
        print("fp16 KV cache \(arch): max nmse \(worst) over \(steps) steps (authors' fp16 run on glm-130b-tiny: \(bound)); \(flips) greedy tokens differ")
        #expect(worst > 0, "the fp16 cache changed nothing: it did not run")
        #expect(flips == 0)
        #expect(worst <= 1e-3, "\(arch): nmse \(worst): the fp16 cache is broken")
        if arch == "glm-130b-tiny", worst > bound { #expect(KVCacheType.default == .f32, "f16 misses the golden bound: it cannot be the default") }
    }

    @Test("an fp16 cache takes half the memory: ChatGLM-6B at 2048 tokens 1.9 GB -> 0.94 GB")
    func halfCache_halvesMemory() throws {
        let c = try #require(Architectures.preset("chatglm-6b"))
        let (f32, f16) = (KVCacheType.f32.bytes(config: c, capacity: 2048), KVCacheType.f16.bytes(config: c, capacity: 2048))
        #expect(f32 == 2 * 28 * 2048 * 4096 * 4)   // 1.88 GB
        #expect(f16 * 2 == f32)
    }

    /// Layers and context come from a model file or the command line: a cache the
    /// machine cannot hold is a clear error, not an allocation that ends the process.
    @Test("a KV cache larger than the machine's memory is refused, whatever the element type")
    func hugeCache_isRefused() throws {
        var c = try ConvertedModels.model("glm-130b-tiny", .f32).config
        (c.layers, c.heads, c.headDim, c.contextLength) = (4096, 32, 128, 1 << 20) // 4096 x 2^32 x 2 floats: 1.4e14 bytes
        for type in KVCacheType.allCases {
            #expect(throws: GenerationError.self) { _ = try type.make(config: c, capacity: c.contextLength) }
        }
        c.layers = Int.max / 1024 // the byte count overflows Int: still refused, not wrapped
        #expect(KVCacheType.f32.bytes(config: c, capacity: 1 << 20) == Int.max)
        #expect(throws: GenerationError.self) { _ = try KVCacheType.f16.make(config: c, capacity: 1 << 20) }
    }
}
