// glm-alloc-check — counts the heap allocations of decode steps, every thread
// of the process included (the kernels' OpenMP threads, Swift's runtime):
// a session's steps after its first, and a batch's steps once it has run at
// its widest. Prints one JSON object; RuntimeTests' AllocationTests runs it.
//
//   glm-alloc-check MODEL.gguf [--steps N] [--batch B] [--activations q16|q8|f32] [--no-fusion] [--registry] [--kv-type f32|f16]
//
// --registry runs on the kernel registry's dispatcher, as glm-run does, instead of Kernels.

import AllocationCounter
import Foundation
import GLMRuntime
import KernelBridge
import Plugins

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("glm-alloc-check: \(message)\n".utf8))
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
guard let path = args.first, !path.hasPrefix("-") else {
    fail("usage: glm-alloc-check MODEL.gguf [--steps N] [--batch B] [--activations q16|q8|f32] [--no-fusion] [--registry] [--kv-type f32|f16]")
}
args.removeFirst()
var steps = 8, batch = 4, activations = ActivationPrecision.default, fusion = true, registry = false, kvType = KVCacheType.default
while let flag = args.first {
    args.removeFirst()
    switch flag {
    case "--steps": steps = Int(args.first ?? "") ?? 0; args = Array(args.dropFirst())
    case "--batch": batch = Int(args.first ?? "") ?? 0; args = Array(args.dropFirst())
    case "--activations":
        activations = ActivationPrecision(rawValue: args.first ?? "") ?? { fail("unknown activations") }()
        args = Array(args.dropFirst())
    case "--no-fusion": fusion = false
    case "--registry": registry = true
    case "--kv-type":
        kvType = KVCacheType(rawValue: args.first ?? "") ?? { fail("unknown KV cache type") }()
        args = Array(args.dropFirst())
    default: fail("unknown option \(flag)")
    }
}
guard steps > 0, batch > 0 else { fail("--steps and --batch must be positive") }

do {
    let model = try GLMModel(path: path)
    let c = model.config
    let kernels: any KernelSet = registry ? try KernelRegistry(activations: activations).dispatcher() : try Kernels(activations: activations)
    // a prompt of ordinary tokens, then [gMASK] <sop>: generation after it
    let prompt = (0..<6).map { Int32(($0 * 7 + 3) % max(1, min(c.vocab, 1000))) } + [c.tokens.gmask, c.tokens.sop]
    let warm = 2, capacity = prompt.count + warm + steps + 1

    // one session: the prompt, warm steps (the first decode step sizes the buffers), then the counted ones
    let session = try InferenceSession(model: model, capacity: capacity, kernels: kernels, fusion: fusion, kvType: kvType)
    var logits: [Float]? = try session.forward(prompt)
    let token: [Int32] = [prompt[0]] // an ordinary token of the prompt, fed back each step
    for _ in 0..<warm { logits = nil; logits = try session.forward(token) }
    glm_allocation_counter_begin()
    for _ in 0..<steps { logits = nil; logits = try session.forward(token) }
    let sessionAllocations = glm_allocation_counter_end()
    _ = logits

    // a batch of B sequences
    let decoder = try BatchDecoder(model: model, maxSequences: batch, kernels: kernels, fusion: fusion)
    let sequences = try (0..<batch).map { _ in try decoder.makeSequence(capacity: capacity, kvType: kvType) }
    for s in sequences {
        try decoder.beginPrefill(s, prompt: prompt)
        while try decoder.continuePrefill(layers: c.layers) == nil {}
    }
    let tokens = [Int32](repeating: token[0], count: batch)
    for _ in 0..<warm { _ = try decoder.decode(sequences, tokens: tokens) }
    glm_allocation_counter_begin()
    for _ in 0..<steps { _ = try decoder.decode(sequences, tokens: tokens) }
    let batchAllocations = glm_allocation_counter_end()

    print("""
    {"available": \(glm_allocation_counter_available() != 0), "steps": \(steps), "batch": \(batch), \
    "activations": "\(activations.rawValue)", "registry": \(registry), "kv_type": "\(kvType.rawValue)", "threads": \(Threads.current), \
    "session_allocations": \(sessionAllocations), "batch_allocations": \(batchAllocations)}
    """)
} catch {
    fail("\(error)")
}
