// ChatGLM6B.swift — ChatGLM-6B v1 (THUDM/chatglm-6b modeling_chatglm.py):
// GeLU FFN in its tanh form, 2D RoPE (half of each head by position, half by
// block position), a separate lm_head. Hugging Face config.json.

import Foundation
import KernelBridge

public enum ChatGLM6B: GLMArchitecture {
    public static let name = "chatglm"
    public static let rope = RoPEShape.Form.twoD
    public static let feedForward = ModelConfig.FeedForward.geluTanh

    /// ChatGLM-6B's released configuration.
    public static var presets: [String: ModelConfig] {
        let c = ModelConfig(architecture: name, layers: 28, hidden: 4096, heads: 32, headDim: 128, ffnInner: 16384, vocab: 130528,
                            contextLength: 2048, layerNormEps: 1e-5, ropeBase: 10000, rope: rope, feedForward: feedForward, tiedOutput: false,
                            tokens: SpecialTokens(mask: 130000, gmask: 130001, smask: nil, sop: 130004, eop: 130005, eos: 130005, pad: 3),
                            alpha: referenceAlpha)
        return ["chatglm-6b": c, "chatglm": c]
    }

    /// ChatGLM2/3 share the model type; their configs carry fields v1's never has.
    public static func recognises(checkpointConfig json: [String: Any]) -> Bool {
        (json["model_type"] as? String) == "chatglm" && !ChatGLM2.hasV2Fields(json)
    }

    /// The reference's GLMBlock takes `num_layers=28` as a default argument and
    /// ChatGLMModel never passes the real count, so every ChatGLM-6B-layout model
    /// scales its residuals by sqrt(2 * 28), whatever its depth. The golden tiny
    /// model (2 layers) confirms it: its layer outputs match sqrt(56), not 2.
    public static let referenceAlpha = Float(2 * 28).squareRoot()

    public static func config(fromCheckpoint json: [String: Any], source: String) throws -> ModelConfig {
        let r = ConfigReader(json: json, source: source)
        guard r.bool("position_encoding_2d", default: true) else {
            throw ModelFileError.badConfig(file: source, reason: "ChatGLM with position_encoding_2d = false is not supported")
        }
        let hidden = try r.int("hidden_size")
        let heads = try r.int("num_attention_heads")
        let eos = try r.tokenID("eos_token_id")
        let tokens = SpecialTokens(mask: try r.tokenID("mask_token_id"), gmask: try r.tokenID("gmask_token_id"), smask: nil,
                                   sop: try r.tokenID("bos_token_id"), eop: eos, eos: eos, pad: try r.optionalTokenID("pad_token_id"))
        return ModelConfig(architecture: name, layers: try r.int("num_layers"), hidden: hidden, heads: heads,
                           headDim: hidden / max(heads, 1), ffnInner: try r.optionalInt("inner_hidden_size") ?? 4 * hidden,
                           vocab: try r.int("vocab_size"), contextLength: try r.optionalInt("max_sequence_length") ?? 2048,
                           layerNormEps: try r.float("layernorm_epsilon", default: 1e-5), ropeBase: 10000, rope: rope,
                           feedForward: feedForward, tiedOutput: false, tokens: tokens, alpha: referenceAlpha)
    }

    /// modeling_chatglm.py `get_position_ids` (2D): before sop, (t, 0); from sop
    /// on, (mask position, t - sop + 1), so generated tokens keep counting blocks.
    public static func positions(at t: Int, layout: PromptLayout) -> (position: Int32, block: Int32) {
        guard t >= layout.sopIndex else { return (Int32(t), 0) }
        return (Int32(layout.maskIndex ?? t), Int32(t - layout.sopIndex + 1))
    }

    /// tokenization_chatglm.py's SPTokenizer: line breaks, tabs and space runs as pieces.
    public static func iceTextLayout(offset: Int32) -> TokenizerLayout { .chatglm(offset: offset) }
    /// ChatGLM's tokenizer ends every prompt with [gMASK]/[MASK] and sop only.
    public static let eosAfterBlankText = false

    /// modeling_chatglm.py `process_response`: strip, the training-date
    /// placeholder, and ASCII , ! : ; ? beside a CJK ideograph (U+4E00-U+9FFF)
    /// made full-width: first where the ideograph comes before, then after, each
    /// pass left to right without overlapping matches, as re.sub does.
    public static func postprocessResponse(_ text: String) -> String {
        var scalars = Array(text.trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "[[训练时间]]", with: "2023年", options: .literal).unicodeScalars)
        func isIdeograph(_ s: Unicode.Scalar) -> Bool { (0x4E00...0x9FFF).contains(s.value) }
        let pairs: [(Unicode.Scalar, Unicode.Scalar)] = [(",", "，"), ("!", "！"), (":", "："), (";", "；"), ("?", "？")]
        for (ascii, full) in pairs {
            var i = 0
            while i + 1 < scalars.count {   // ideograph then mark
                if isIdeograph(scalars[i]), scalars[i + 1] == ascii { scalars[i + 1] = full; i += 2 } else { i += 1 }
            }
            i = 0
            while i + 1 < scalars.count {   // mark then ideograph
                if scalars[i] == ascii, isIdeograph(scalars[i + 1]) { scalars[i] = full; i += 2 } else { i += 1 }
            }
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars)
        return String(out)
    }

    /// modeling_chatglm.py `chat`: a first turn is the query alone; with history,
    /// "[Round i]\n问：{q}\n答：{a}\n" per earlier turn, then "[Round n]\n问：{query}\n答：".
    public static func chatPrompt(history: [ChatTurn], query: String) -> String {
        guard !history.isEmpty else { return query }
        var prompt = ""
        for (i, turn) in history.enumerated() { prompt += "[Round \(i)]\n问：\(turn.query)\n答：\(turn.answer)\n" }
        return prompt + "[Round \(history.count)]\n问：\(query)\n答："
    }
}
