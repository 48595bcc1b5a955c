// CheckpointNames.swift — which reference-code parameter fills which model-file
// tensor, with the shape it must have. GLM-130B (SAT) and ChatGLM-6B (Hugging
// Face) share the `transformer.*` names; only ChatGLM has `lm_head`.

public enum CheckpointNames {
    public struct Entry: Sendable {
        public let name: String          // in the model file
        /// In the reference state_dict; several are stacked by rows (GLM-4's q, k and v into one QKV).
        public let checkpoints: [String]
        public let shape: [Int]          // row-major

        public init(name: String, checkpoint: String, shape: [Int]) { (self.name, checkpoints, self.shape) = (name, [checkpoint], shape) }
        public init(name: String, stacking checkpoints: [String], shape: [Int]) { (self.name, self.checkpoints, self.shape) = (name, checkpoints, shape) }
    }

    public static func plan(_ c: ModelConfig) -> [Entry] {
        let h = c.hidden
        var entries = [Entry(name: TensorNames.tokenEmbedding, checkpoint: "transformer.word_embeddings.weight", shape: [c.vocab, h])]
        for i in 0..<c.layers {
            let p = "transformer.layers.\(i)."
            entries += [
                Entry(name: TensorNames.attentionNormWeight(i), checkpoint: p + "input_layernorm.weight", shape: [h]),
                Entry(name: TensorNames.attentionNormBias(i), checkpoint: p + "input_layernorm.bias", shape: [h]),
                Entry(name: TensorNames.qkvWeight(i), checkpoint: p + "attention.query_key_value.weight", shape: [3 * h, h]),
                Entry(name: TensorNames.qkvBias(i), checkpoint: p + "attention.query_key_value.bias", shape: [3 * h]),
                Entry(name: TensorNames.attentionOutputWeight(i), checkpoint: p + "attention.dense.weight", shape: [h, h]),
                Entry(name: TensorNames.attentionOutputBias(i), checkpoint: p + "attention.dense.bias", shape: [h]),
                Entry(name: TensorNames.ffnNormWeight(i), checkpoint: p + "post_attention_layernorm.weight", shape: [h]),
                Entry(name: TensorNames.ffnNormBias(i), checkpoint: p + "post_attention_layernorm.bias", shape: [h]),
                Entry(name: TensorNames.ffnUpWeight(i), checkpoint: p + "mlp.dense_h_to_4h.weight", shape: [c.ffnUpRows, h]),
                Entry(name: TensorNames.ffnUpBias(i), checkpoint: p + "mlp.dense_h_to_4h.bias", shape: [c.ffnUpRows]),
                Entry(name: TensorNames.ffnDownWeight(i), checkpoint: p + "mlp.dense_4h_to_h.weight", shape: [h, c.ffnInner]),
                Entry(name: TensorNames.ffnDownBias(i), checkpoint: p + "mlp.dense_4h_to_h.bias", shape: [h]),
            ]
        }
        entries += [
            Entry(name: TensorNames.outputNormWeight, checkpoint: "transformer.final_layernorm.weight", shape: [h]),
            Entry(name: TensorNames.outputNormBias, checkpoint: "transformer.final_layernorm.bias", shape: [h]),
        ]
        if !c.tiedOutput { entries.append(Entry(name: TensorNames.output, checkpoint: "lm_head.weight", shape: [c.vocab, h])) }
        return entries
    }
}
