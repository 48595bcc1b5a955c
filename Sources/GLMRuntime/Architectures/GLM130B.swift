// GLM130B.swift — GLM-130B (THUDM/GLM-130B with SwissArmyTransformer): GeGLU
// FFN (x1 * gelu_erf(x2)), 1D RoPE over the whole head, tied output embedding.
// Its checkpoints carry no Hugging Face config; the config.json beside them
// holds the SAT arguments (see Tests/KernelTests/Fixtures/glm-130b-tiny).

import KernelBridge

public enum GLM130B: GLMArchitecture {
    public static let name = "glm130b"
    public static let rope = RoPEShape.Form.oneD
    public static let feedForward = ModelConfig.FeedForward.gegluErf

    /// GLM-130B's released configuration (70 layers, hidden 12288, 96 heads, GeGLU inner 32768, vocabulary 150528).
    public static let released = ModelConfig(
        architecture: name, layers: 70, hidden: 12288, heads: 96, headDim: 128, ffnInner: 32768, vocab: 150528,
        contextLength: 2048, layerNormEps: 1e-5, ropeBase: 10000, rope: rope, feedForward: feedForward, tiedOutput: true,
        tokens: SpecialTokens(mask: 150000, gmask: 150001, smask: 150002, sop: 150004, eop: 150005, eos: 20002, pad: nil),
        alpha: (2.0 * 70).squareRoot())
    public static var presets: [String: ModelConfig] { ["glm-130b": released, "glm130b": released] }

    /// The SAT arguments of the released checkpoint, for a checkpoint folder that carries none (--preset glm-130b).
    public static var checkpointPresets: [String: [String: Any]] { ["glm-130b": checkpointPreset] }
    nonisolated(unsafe) static let checkpointPreset: [String: Any] = [ // plain values, never mutated
        "model_type": "glm-130b (preset)", "num_layers": released.layers, "hidden_size": released.hidden,
        "num_attention_heads": released.heads, "inner_hidden_size": released.ffnInner, "vocab_size": released.vocab,
        "max_sequence_length": released.contextLength, "layernorm_epsilon": 1e-5,
        "special_token_ids": ["[MASK]": 150000, "[gMASK]": 150001, "[sMASK]": 150002, "eod": 150003, "sop": 150004,
                              "eop": 150005, "eos": 20002],
    ]

    public static func recognises(checkpointConfig json: [String: Any]) -> Bool {
        if let type = json["model_type"] as? String, type.lowercased().hasPrefix("glm-130b") || type == "glm130b" { return true }
        return json["sat_args"] != nil && json["position_encoding_2d"] as? Bool != true
    }

    public static func config(fromCheckpoint json: [String: Any], source: String) throws -> ModelConfig {
        let r = ConfigReader(json: json, source: source)
        let hidden = try r.int("hidden_size")
        let heads = try r.int("num_attention_heads")
        guard let special = json["special_token_ids"] as? [String: Any] else {
            throw ModelFileError.badConfig(file: source, reason: "missing 'special_token_ids' ([MASK], [gMASK], sop, eop, eos)")
        }
        let ids = ConfigReader(json: special, source: source + " special_token_ids")
        let tokens = SpecialTokens(mask: try ids.tokenID("[MASK]"), gmask: try ids.tokenID("[gMASK]"), smask: try ids.optionalTokenID("[sMASK]"),
                                   sop: try ids.tokenID("sop"), eop: try ids.tokenID("eop"), eos: try ids.tokenID("eos"),
                                   pad: try ids.optionalTokenID("pad"))
        let layers = try r.int("num_layers")
        return ModelConfig(architecture: name, layers: layers, hidden: hidden, heads: heads,
                           headDim: try r.optionalInt("hidden_size_per_attention_head") ?? hidden / max(heads, 1),
                           ffnInner: try r.int("inner_hidden_size"), vocab: try r.int("vocab_size"),
                           contextLength: try r.optionalInt("max_sequence_length") ?? 2048,
                           layerNormEps: try r.float("layernorm_epsilon", default: 1e-5), ropeBase: 10000, rope: rope,
                           feedForward: feedForward, tiedOutput: true, tokens: tokens, alpha: Float(2 * layers).squareRoot())
    }

    /// GLM-130B generate.py `get_masks_and_position_ids`: positions count up; for
    /// a [MASK] prompt every index from sop on takes the mask's position.
    public static func positions(at t: Int, layout: PromptLayout) -> (position: Int32, block: Int32) {
        if let mask = layout.maskIndex, !layout.isGMask, t >= layout.sopIndex { return (Int32(mask), 0) }
        return (Int32(t), 0)
    }

    /// icetk (GLM-130B generate.py's tokenizer): the offset only; <n> decodes to a line break.
    public static func iceTextLayout(offset: Int32) -> TokenizerLayout { .icetk(offset: offset) }
    /// generate.py's fill_blanks appends eos when the text does not end in a mask.
    public static let eosAfterBlankText = true
}
