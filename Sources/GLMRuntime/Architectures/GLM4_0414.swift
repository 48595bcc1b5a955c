// GLM4_0414.swift — GLM-4-0414 as transformers' Glm4ForCausalLM has it (`model_type:
// glm4`): GLM-4-9B's layer with an RMSNorm on each branch's output before its
// residual add (post_self_attn_layernorm, post_mlp_layernorm).

import KernelBridge

public enum GLM4_0414: GLMArchitecture {
    public static let name = "glm4"
    public static let rope = GLM4.rope
    public static let feedForward = GLM4.feedForward
    public static let norm = GLM4.norm
    public static let residual = ModelConfig.Residual.sandwich

    public static func recognises(checkpointConfig json: [String: Any]) -> Bool { (json["model_type"] as? String) == "glm4" }

    public static func config(fromCheckpoint json: [String: Any], source: String) throws -> ModelConfig {
        try GLM4.transformersConfig(json, source: source, architecture: name, residual: residual)
    }

    public static func checkpointTensors(_ c: ModelConfig) -> [CheckpointNames.Entry] { GLM4.transformersTensors(c) }


    public static func chatPieces(format: ChatFormat?, system: String?, history: [ChatTurn], query: String) -> [PromptPiece]? {
        GLM4.chatPieces(format: format, system: system, history: history, query: query)
    }
}
