// ModelKeys.swift — every metadata key and tensor name of our GLM model files,
// in one place (documented in docs/model-format.md). Keys under the
// architecture's prefix follow GGUF's conventions (`<arch>.block_count`, ...).

public enum ModelKeys {
    public static let architecture = "general.architecture"
    public static let name = "general.name"
    public static let fileType = "general.file_type_name"

    public static func contextLength(_ arch: String) -> String { "\(arch).context_length" }
    public static func embeddingLength(_ arch: String) -> String { "\(arch).embedding_length" }
    public static func blockCount(_ arch: String) -> String { "\(arch).block_count" }
    public static func feedForwardLength(_ arch: String) -> String { "\(arch).feed_forward_length" }
    public static func headCount(_ arch: String) -> String { "\(arch).attention.head_count" }
    /// Key/value heads (grouped-query attention); absent means head_count.
    public static func headCountKV(_ arch: String) -> String { "\(arch).attention.head_count_kv" }
    /// Values of each head RoPE turns; absent means the form's (the whole head 1D, half 2D).
    public static func ropeDimensionCount(_ arch: String) -> String { "\(arch).rope.dimension_count" }
    public static func keyLength(_ arch: String) -> String { "\(arch).attention.key_length" }
    public static func layerNormEps(_ arch: String) -> String { "\(arch).attention.layer_norm_epsilon" }
    public static func ropeBase(_ arch: String) -> String { "\(arch).rope.freq_base" }
    public static func vocabSize(_ arch: String) -> String { "\(arch).vocab_size" }
    /// ChatFormat's name: how the model's chats become prompts (the kin; absent for v1).
    public static func chatFormat(_ arch: String) -> String { "\(arch).chat_format" }
    /// DeepNorm's residual scale alpha (x * alpha + sublayer(x)).
    public static func residualAlpha(_ arch: String) -> String { "\(arch).residual_alpha" }

    // Special tokens: GGUF's standard ids plus GLM's mask and piece tokens.
    public static let bosToken = "tokenizer.ggml.bos_token_id"
    public static let eosToken = "tokenizer.ggml.eos_token_id"
    public static let padToken = "tokenizer.ggml.padding_token_id"
    public static let maskToken = "tokenizer.glm.mask_token_id"
    public static let gmaskToken = "tokenizer.glm.gmask_token_id"
    public static let smaskToken = "tokenizer.glm.smask_token_id"
    public static let sopToken = "tokenizer.glm.sop_token_id"
    public static let eopToken = "tokenizer.glm.eop_token_id"
}

/// Tensor names in the model file. Shapes are row-major (rows, cols).
public enum TensorNames {
    public static let tokenEmbedding = "token_embd.weight"          // (vocab, hidden)
    public static let outputNormWeight = "output_norm.weight"       // (hidden)
    public static let outputNormBias = "output_norm.bias"           // (hidden)
    public static let output = "output.weight"                      // (vocab, hidden), untied models only

    public static func attentionNormWeight(_ i: Int) -> String { "blk.\(i).attn_norm.weight" }  // (hidden)
    public static func attentionNormBias(_ i: Int) -> String { "blk.\(i).attn_norm.bias" }      // (hidden), LayerNorm only
    /// (3 hidden, hidden) with rows per head [q|k|v] (DeepNorm architectures), or
    /// ((heads + 2 kv heads) head_dim, hidden) as [all q | all k | all v] (the pre-norm kin).
    public static func qkvWeight(_ i: Int) -> String { "blk.\(i).attn_qkv.weight" }
    public static func qkvBias(_ i: Int) -> String { "blk.\(i).attn_qkv.bias" }          // (QKV rows), when the model has one
    /// GLM-4-0414's RMSNorm of the attention's output before its residual add.
    public static func postAttentionNormWeight(_ i: Int) -> String { "blk.\(i).post_attention_norm.weight" } // (hidden)
    /// GLM-4-0414's RMSNorm of the feed-forward's output before its residual add.
    public static func postFFNNormWeight(_ i: Int) -> String { "blk.\(i).post_ffw_norm.weight" }              // (hidden)
    public static func attentionOutputWeight(_ i: Int) -> String { "blk.\(i).attn_output.weight" }  // (hidden, hidden)
    public static func attentionOutputBias(_ i: Int) -> String { "blk.\(i).attn_output.bias" }      // (hidden)
    public static func ffnNormWeight(_ i: Int) -> String { "blk.\(i).ffn_norm.weight" }  // (hidden)
    public static func ffnNormBias(_ i: Int) -> String { "blk.\(i).ffn_norm.bias" }      // (hidden)
    public static func ffnUpWeight(_ i: Int) -> String { "blk.\(i).ffn_up.weight" }      // (up rows, hidden)
    public static func ffnUpBias(_ i: Int) -> String { "blk.\(i).ffn_up.bias" }          // (up rows)
    public static func ffnDownWeight(_ i: Int) -> String { "blk.\(i).ffn_down.weight" }  // (hidden, inner)
    public static func ffnDownBias(_ i: Int) -> String { "blk.\(i).ffn_down.bias" }      // (hidden)
}
