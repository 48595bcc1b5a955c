// GLM4.swift — GLM-4-9B as transformers' GlmForCausalLM has it (`model_type:
// glm`): pre-norm RMSNorm layers, grouped-query attention with separate q, k, v
// projections (stacked into one QKV matrix [q | k | v] on conversion) with
// biases, RoPE on adjacent pairs of the first partial_rotary_factor of each
// head, a fused gate-up SwiGLU, causal attention, an untied lm_head.

import Foundation
import KernelBridge

public enum GLM4: GLMArchitecture {
    public static let name = "glm"
    public static let rope = RoPEShape.Form.interleaved
    public static let feedForward = ModelConfig.FeedForward.swiglu
    public static let norm = ModelConfig.Norm.rmsNorm
    public static let residual = ModelConfig.Residual.preNorm

    public static func recognises(checkpointConfig json: [String: Any]) -> Bool { (json["model_type"] as? String) == "glm" }

    public static func config(fromCheckpoint json: [String: Any], source: String) throws -> ModelConfig {
        try transformersConfig(json, source: source, architecture: name, residual: residual)
    }

    /// GlmConfig and Glm4Config share their fields; only the residual form differs.
    static func transformersConfig(_ json: [String: Any], source: String, architecture: String,
                                   residual: ModelConfig.Residual) throws -> ModelConfig {
        let r = ConfigReader(json: json, source: source)
        if let act = json["hidden_act"], act as? String != "silu" {
            throw ModelFileError.badConfig(file: source, reason: "'hidden_act' is \(act): only silu (SwiGLU) is supported")
        }
        let hidden = try r.int("hidden_size")
        let heads = try r.int("num_attention_heads")
        let headDim = try r.optionalInt("head_dim") ?? hidden / max(heads, 1)
        let factor = try r.float("partial_rotary_factor", default: 0.5)
        // checked before the product becomes an Int: a huge factor would trap the conversion
        guard factor > 0, factor <= 1 else {
            throw ModelFileError.badConfig(file: source, reason: "'partial_rotary_factor' \(factor) must lie in (0, 1]")
        }
        let rotary = Int(Float(headDim) * factor)
        let tied = r.bool("tie_word_embeddings", default: false)
        return ModelConfig(architecture: architecture, layers: try r.int("num_hidden_layers"), hidden: hidden, heads: heads, headDim: headDim,
                           ffnInner: try r.int("intermediate_size"), vocab: try r.int("vocab_size"),
                           contextLength: try r.optionalInt("max_position_embeddings") ?? 8192,
                           layerNormEps: try r.float("rms_norm_eps", default: 1.5625e-7), ropeBase: try r.float("rope_theta", default: 10000),
                           rope: rope, feedForward: feedForward, tiedOutput: tied,
                           tokens: .unknown(eos: try r.eosTokenID(), pad: try r.optionalTokenID("pad_token_id")), alpha: 1,
                           kvHeads: try r.optionalInt("num_key_value_heads") ?? heads, norm: norm, residual: residual, rotaryDim: rotary,
                           qkvBias: r.bool("attention_bias", default: true), linearBias: false, chatFormat: .roles)
    }

    public static func checkpointTensors(_ c: ModelConfig) -> [CheckpointNames.Entry] { transformersTensors(c) }

    /// transformers' names; GLM-4-0414 adds the two branch-output norms.
    static func transformersTensors(_ c: ModelConfig) -> [CheckpointNames.Entry] {
        let h = c.hidden
        typealias E = CheckpointNames.Entry
        var entries = [E(name: TensorNames.tokenEmbedding, checkpoint: "model.embed_tokens.weight", shape: [c.vocab, h])]
        for i in 0..<c.layers {
            let p = "model.layers.\(i)."
            let qkv = ["q_proj", "k_proj", "v_proj"].map { p + "self_attn.\($0)" }
            entries += [E(name: TensorNames.attentionNormWeight(i), checkpoint: p + "input_layernorm.weight", shape: [h]),
                        E(name: TensorNames.qkvWeight(i), stacking: qkv.map { $0 + ".weight" }, shape: [c.qkvWidth, h])]
            if c.qkvBias { entries.append(E(name: TensorNames.qkvBias(i), stacking: qkv.map { $0 + ".bias" }, shape: [c.qkvWidth])) }
            entries.append(E(name: TensorNames.attentionOutputWeight(i), checkpoint: p + "self_attn.o_proj.weight", shape: [h, c.attentionWidth]))
            if c.residual == .sandwich {
                entries.append(E(name: TensorNames.postAttentionNormWeight(i), checkpoint: p + "post_self_attn_layernorm.weight", shape: [h]))
            }
            entries += [E(name: TensorNames.ffnNormWeight(i), checkpoint: p + "post_attention_layernorm.weight", shape: [h]),
                        E(name: TensorNames.ffnUpWeight(i), checkpoint: p + "mlp.gate_up_proj.weight", shape: [c.ffnUpRows, h]),
                        E(name: TensorNames.ffnDownWeight(i), checkpoint: p + "mlp.down_proj.weight", shape: [h, c.ffnInner])]
            if c.residual == .sandwich {
                entries.append(E(name: TensorNames.postFFNNormWeight(i), checkpoint: p + "post_mlp_layernorm.weight", shape: [h]))
            }
        }
        entries.append(E(name: TensorNames.outputNormWeight, checkpoint: "model.norm.weight", shape: [h]))
        if !c.tiedOutput { entries.append(E(name: TensorNames.output, checkpoint: "lm_head.weight", shape: [c.vocab, h])) }
        return entries
    }


    /// GLM-4's chat template: "<|role|>\n" and the text, tokenized as one piece of text.
    public static func chatPieces(format: ChatFormat?, system: String?, history: [ChatTurn], query: String) -> [PromptPiece]? {
        ChatGLM2.roleMessages(system: system, history: history, query: query) { [.text("\n" + $0)] }
    }
}
