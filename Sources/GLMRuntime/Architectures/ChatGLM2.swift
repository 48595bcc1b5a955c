// ChatGLM2.swift — ChatGLM2-6B and ChatGLM3-6B (THUDM's modeling_chatglm.py of
// chatglm2/3): pre-norm RMSNorm layers, grouped-query attention ("multi-query"
// with multi_query_group_num key/value heads) over one fused QKV matrix whose
// rows are [q (heads) | k (groups) | v (groups)], RoPE on adjacent pairs of the
// first half of each head, SwiGLU, causal attention throughout, a separate
// output layer. Hugging Face config.json, `model_type: chatglm` as v1's.

import Foundation
import KernelBridge

public enum ChatGLM2: GLMArchitecture {
    public static let name = "chatglm2"
    public static let rope = RoPEShape.Form.interleaved
    public static let feedForward = ModelConfig.FeedForward.swiglu
    public static let norm = ModelConfig.Norm.rmsNorm
    public static let residual = ModelConfig.Residual.preNorm

    /// Fields of ChatGLM2/3's configuration that v1's never has.
    static func hasV2Fields(_ json: [String: Any]) -> Bool {
        ["multi_query_attention", "rmsnorm", "kv_channels", "padded_vocab_size", "add_qkv_bias"].contains { json[$0] != nil }
    }

    public static func recognises(checkpointConfig json: [String: Any]) -> Bool {
        (json["model_type"] as? String) == "chatglm" && hasV2Fields(json)
    }

    public static func config(fromCheckpoint json: [String: Any], source: String) throws -> ModelConfig {
        let r = ConfigReader(json: json, source: source)
        try r.require("rmsnorm", is: true, "LayerNorm in a ChatGLM2-layout model")
        try r.require("post_layer_norm", is: true, "a model without the final norm")
        try r.require("apply_residual_connection_post_layernorm", is: false, "the residual taken after the norm")
        let hidden = try r.int("hidden_size")
        let heads = try r.int("num_attention_heads")
        let headDim = try r.optionalInt("kv_channels") ?? hidden / max(heads, 1)
        let groups = r.bool("multi_query_attention", default: false) ? try r.int("multi_query_group_num") : heads
        // RotaryEmbedding(kv_channels // 2): the first half of each head turns; rope_ratio scales the base (ChatGLM3-32k)
        let base = 10000 * (try r.float("rope_ratio", default: 1))
        let eos = try r.eosTokenID()
        // ChatGLM2 and ChatGLM3 share the layout; ChatGLM2 chats in rounds of text, ChatGLM3 with role tokens
        let hubName = (json["_name_or_path"] as? String ?? "").lowercased()
        var config = ModelConfig(architecture: name, layers: try r.int("num_layers"), hidden: hidden, heads: heads, headDim: headDim,
                           ffnInner: try r.int("ffn_hidden_size"), vocab: try r.int("padded_vocab_size", "vocab_size"),
                           contextLength: try r.optionalInt("seq_length") ?? 8192, layerNormEps: try r.float("layernorm_epsilon", default: 1e-5),
                           ropeBase: base, rope: rope, feedForward: feedForward, tiedOutput: false,
                           tokens: .unknown(eos: eos, pad: try r.optionalTokenID("pad_token_id")), alpha: 1, kvHeads: groups,
                           norm: norm, residual: residual, rotaryDim: headDim / 2,
                           qkvBias: r.bool("add_qkv_bias", default: false), linearBias: r.bool("add_bias_linear", default: false))
        config.chatFormat = hubName.contains("chatglm2") ? .rounds : .roles
        return config
    }

    public static func checkpointTensors(_ c: ModelConfig) -> [CheckpointNames.Entry] {
        let h = c.hidden
        typealias E = CheckpointNames.Entry
        var entries = [E(name: TensorNames.tokenEmbedding, checkpoint: "transformer.embedding.word_embeddings.weight", shape: [c.vocab, h])]
        for i in 0..<c.layers {
            let p = "transformer.encoder.layers.\(i)."
            entries += [E(name: TensorNames.attentionNormWeight(i), checkpoint: p + "input_layernorm.weight", shape: [h]),
                        E(name: TensorNames.qkvWeight(i), checkpoint: p + "self_attention.query_key_value.weight", shape: [c.qkvWidth, h])]
            if c.qkvBias { entries.append(E(name: TensorNames.qkvBias(i), checkpoint: p + "self_attention.query_key_value.bias", shape: [c.qkvWidth])) }
            entries.append(E(name: TensorNames.attentionOutputWeight(i), checkpoint: p + "self_attention.dense.weight", shape: [h, c.attentionWidth]))
            if c.linearBias { entries.append(E(name: TensorNames.attentionOutputBias(i), checkpoint: p + "self_attention.dense.bias", shape: [h])) }
            entries += [E(name: TensorNames.ffnNormWeight(i), checkpoint: p + "post_attention_layernorm.weight", shape: [h]),
                        E(name: TensorNames.ffnUpWeight(i), checkpoint: p + "mlp.dense_h_to_4h.weight", shape: [c.ffnUpRows, h])]
            if c.linearBias { entries.append(E(name: TensorNames.ffnUpBias(i), checkpoint: p + "mlp.dense_h_to_4h.bias", shape: [c.ffnUpRows])) }
            entries.append(E(name: TensorNames.ffnDownWeight(i), checkpoint: p + "mlp.dense_4h_to_h.weight", shape: [h, c.ffnInner]))
            if c.linearBias { entries.append(E(name: TensorNames.ffnDownBias(i), checkpoint: p + "mlp.dense_4h_to_h.bias", shape: [h])) }
        }
        entries += [E(name: TensorNames.outputNormWeight, checkpoint: "transformer.encoder.final_layernorm.weight", shape: [h]),
                    E(name: TensorNames.output, checkpoint: "transformer.output_layer.weight", shape: [c.vocab, h])]
        return entries
    }


    public static func chatPieces(format: ChatFormat?, system: String?, history: [ChatTurn], query: String) -> [PromptPiece]? {
        if format == .rounds {
            // ChatGLM2's build_prompt: rounds from 1, each "问：" and "答：" after a blank line
            var text = ""
            for (i, turn) in history.enumerated() { text += "[Round \(i + 1)]\n\n问：\(turn.query)\n\n答：\(turn.answer)\n\n" }
            text += "[Round \(history.count + 1)]\n\n问：\(query)\n\n答："
            return [.special("[gMASK]"), .special("<sop>"), .text(text)]
        }
        // ChatGLM3's build_single_message: the role token, encode(f"{metadata}\n"), then encode(message) apart
        return roleMessages(system: system, history: history, query: query) { [.text("\n"), .text($0)] }
    }

    /// [gMASK] sop, then each message (system, the turns, the query) as its role token and
    /// `body`, then <|assistant|>: the role template ChatGLM3 and GLM-4 share.
    static func roleMessages(system: String?, history: [ChatTurn], query: String, body: (String) -> [PromptPiece]) -> [PromptPiece] {
        var pieces: [PromptPiece] = [.special("[gMASK]"), .special("<sop>")]
        if let system, !system.isEmpty { pieces += [.special("<|system|>")] + body(system) }
        for turn in history {
            pieces += [.special("<|user|>")] + body(turn.query)
            pieces += [.special("<|assistant|>")] + body(turn.answer)
        }
        return pieces + [.special("<|user|>")] + body(query) + [.special("<|assistant|>")]
    }
}
