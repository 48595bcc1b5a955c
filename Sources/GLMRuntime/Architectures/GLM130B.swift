// GLM130B.swift — GLM-130B (THUDM/GLM-130B with SwissArmyTransformer): GeGLU
// FFN (x1 * gelu_erf(x2)), 1D RoPE over the whole head, tied output embedding.
// Its checkpoints carry no Hugging Face config; the config.json beside them
// holds the SAT arguments (see Tests/KernelTests/Fixtures/glm-130b-tiny).

import KernelBridge

public enum GLM130B: GLMArchitecture {
    public static let name = "glm130b"

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
                           layerNormEps: try r.float("layernorm_epsilon", default: 1e-5), ropeBase: 10000, rope: .oneD,
                           feedForward: .gegluErf, tiedOutput: true, tokens: tokens, alpha: Float(2 * layers).squareRoot())
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
