// KinShapeTests.swift — the kin at shapes the golden models do not have, from
// checkpoints written here with random weights: heads x head dim unlike the
// hidden size, one key/value head for all queries (multi-query) and as many as
// the queries (multi-head), every linear bias, a tied output, a rotary part
// that is not half the head, rope_ratio. No reference logits exist for them;
// what must hold is what holds for the golden ones: the cached steps equal the
// uncached pass, the fused plan the unfused one, a batch each sequence alone.

import Foundation
import GLMRuntime
import Testing

/// A safetensors file of FP32 tensors.
private func writeSafeTensors(_ tensors: [(String, [Int], [Float])], to path: String) throws {
    var header: [String: Any] = [:], data = [UInt8](), offset = 0
    for (name, shape, values) in tensors {
        precondition(values.count == shape.reduce(1, *))
        header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * values.count]]
        values.withUnsafeBytes { data += $0 }
        offset += 4 * values.count
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var out = withUnsafeBytes(of: UInt64(json.count).littleEndian) { [UInt8]($0) }
    out += json
    out += data
    try Data(out).write(to: URL(fileURLWithPath: path))
}

private struct Seeded {
    var state: UInt64
    mutating func normals(_ n: Int, scale: Float) -> [Float] {
        (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(state >> 40) / Float(1 << 24)
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let v = Float(state >> 40) / Float(1 << 24)
            return scale * (-2 * log(max(u, 1e-7))).squareRoot() * cos(2 * .pi * v)
        }
    }
}

/// A checkpoint folder of `config` with a random tensor of every shape `names` lists.
private func checkpoint(_ name: String, config: [String: Any], tensors: [(String, [Int])]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-kin-shape-\(getpid())-\(name)").path
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
    var rng = Seeded(state: 7)
    let values = tensors.map { t -> (String, [Int], [Float]) in
        let n = t.1.reduce(1, *)
        if t.0.hasSuffix("norm.weight") { return (t.0, t.1, rng.normals(n, scale: 0.1).map { 1 + $0 }) }
        return (t.0, t.1, rng.normals(n, scale: t.1.count == 2 ? 2 / Float(t.1[1]).squareRoot() : 0.05))
    }
    try writeSafeTensors(values, to: dir + "/model.safetensors")
    return dir
}

private func chatGLM2Checkpoint() throws -> String {
    // hidden 96, 3 query heads of 40 (width 120) over one key/value head, every bias, rope_ratio 2
    let (h, heads, d, inner, vocab, layers) = (96, 3, 40, 160, 200, 3)
    let config: [String: Any] = ["model_type": "chatglm", "hidden_size": h, "num_attention_heads": heads, "kv_channels": d,
                                 "multi_query_attention": true, "multi_query_group_num": 1, "ffn_hidden_size": inner,
                                 "padded_vocab_size": vocab, "num_layers": layers, "seq_length": 256, "rmsnorm": true,
                                 "add_qkv_bias": true, "add_bias_linear": true, "layernorm_epsilon": 1e-5, "rope_ratio": 2,
                                 "post_layer_norm": true, "eos_token_id": 2, "_name_or_path": "THUDM/chatglm2-6b"]
    let qkv = (heads + 2) * d
    var t: [(String, [Int])] = [("transformer.embedding.word_embeddings.weight", [vocab, h]),
                                ("transformer.encoder.final_layernorm.weight", [h]), ("transformer.output_layer.weight", [vocab, h])]
    for i in 0..<layers {
        let p = "transformer.encoder.layers.\(i)."
        t += [(p + "input_layernorm.weight", [h]), (p + "self_attention.query_key_value.weight", [qkv, h]),
              (p + "self_attention.query_key_value.bias", [qkv]), (p + "self_attention.dense.weight", [h, heads * d]),
              (p + "self_attention.dense.bias", [h]), (p + "post_attention_layernorm.weight", [h]),
              (p + "mlp.dense_h_to_4h.weight", [2 * inner, h]), (p + "mlp.dense_h_to_4h.bias", [2 * inner]),
              (p + "mlp.dense_4h_to_h.weight", [h, inner]), (p + "mlp.dense_4h_to_h.bias", [h])]
    }
    return try checkpoint("chatglm2", config: config, tensors: t)
}

private func glm4Checkpoint() throws -> String {
    // hidden 64, 4 heads of 24 (width 96) with their own key/value heads, 3/4 of each head rotated, tied output
    let (h, heads, d, inner, vocab, layers) = (64, 4, 24, 96, 150, 2)
    let config: [String: Any] = ["model_type": "glm4", "hidden_size": h, "num_attention_heads": heads, "head_dim": d,
                                 "num_key_value_heads": heads, "intermediate_size": inner, "vocab_size": vocab,
                                 "num_hidden_layers": layers, "partial_rotary_factor": 0.75, "rms_norm_eps": 1e-6,
                                 "rope_theta": 5000.0, "attention_bias": true, "tie_word_embeddings": true, "hidden_act": "silu",
                                 "eos_token_id": [2, 3]]
    var t: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, h]), ("model.norm.weight", [h])]
    for i in 0..<layers {
        let p = "model.layers.\(i)."
        t += [(p + "input_layernorm.weight", [h])]
        for proj in ["q_proj", "k_proj", "v_proj"] { t += [(p + "self_attn.\(proj).weight", [heads * d, h]), (p + "self_attn.\(proj).bias", [heads * d])] }
        t += [(p + "self_attn.o_proj.weight", [h, heads * d]), (p + "post_self_attn_layernorm.weight", [h]),
              (p + "post_attention_layernorm.weight", [h]), (p + "mlp.gate_up_proj.weight", [2 * inner, h]),
              (p + "mlp.down_proj.weight", [h, inner]), (p + "post_mlp_layernorm.weight", [h])]
    }
    return try checkpoint("glm4", config: config, tensors: t)
}

@Suite("The kin at other shapes", .serialized)
struct KinShapeTests {
    @Test("cached steps equal the uncached pass, fused the unfused, a batch each sequence alone", arguments: ["chatglm2", "glm4"])
    func otherShapes_areConsistent(kind: String) throws {
        let folder = kind == "chatglm2" ? try chatGLM2Checkpoint() : try glm4Checkpoint()
        let path = folder + "/model.gguf"
        _ = try ModelConverter(type: .f32).convert(folder: folder, to: path)
        let model = try GLMModel(path: path)
        let c = model.config
        if kind == "chatglm2" {
            #expect(c.kvHeads == 1 && c.attentionWidth == 120 && c.hidden == 96 && c.linearBias && c.ropeBase == 20000 && c.chatFormat == .rounds)
        } else {
            #expect(c.kvHeads == 4 && c.attentionWidth == 96 && c.rotaryDim == 18 && c.tiedOutput && c.residual == .sandwich && c.tokens.eos == 2)
        }
        let prompt: [Int32] = [5, 17, 42, 99, 3, 77, 120, 8, 64, 31, 11]
        let full = try InferenceSession(model: model, capacity: 64).forward(prompt, allLogits: true)
        let bound = 1e-4 * full.map(abs).max()!
        let cached = try InferenceSession(model: model, capacity: 64)
        var steps = try cached.forward(Array(prompt.prefix(6)), allLogits: true)
        for t in 6..<prompt.count { steps += try cached.forward([prompt[t]]) }
        #expect(maxAbsDiff(steps, full) <= bound, "\(kind): cached vs uncached \(maxAbsDiff(steps, full))")
        let unfused = try InferenceSession(model: model, capacity: 64, fusion: false).forward(prompt, allLogits: true)
        #expect(maxAbsDiff(unfused, full) <= bound, "\(kind): fused vs unfused \(maxAbsDiff(unfused, full))")

        let decoder = try BatchDecoder(model: model, maxSequences: 2)
        var sequences: [BatchDecoder.Sequence] = [], alone: [[Float]] = []
        for p in [Array(prompt.prefix(4)), Array(prompt.suffix(7))] {
            let s = try decoder.makeSequence(capacity: 32)
            try decoder.beginPrefill(s, prompt: p)
            _ = try decoder.continuePrefill(layers: c.layers)
            sequences.append(s)
            let session = try InferenceSession(model: model, capacity: 32)
            _ = try session.forward(p)
            alone.append(try session.forward([9]))
        }
        let batched = try decoder.decode(sequences, tokens: [9, 9])
        #expect(Array(batched[0..<c.vocab]) == alone[0] && Array(batched[c.vocab..<(2 * c.vocab)]) == alone[1], "\(kind): batch vs alone")
    }
}
