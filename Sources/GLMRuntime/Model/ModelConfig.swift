// ModelConfig.swift — the hyperparameters of a GLM-family model, read from the
// model file's metadata (ModelKeys) or from a checkpoint's config.json (through
// the architecture that knows its layout).

import KernelBridge

public struct SpecialTokens: Sendable, Codable, Equatable {
    public var mask: Int32       // [MASK]: fill a short blank inside the text
    public var gmask: Int32      // [gMASK]: generate a long continuation
    public var smask: Int32?     // [sMASK]: sentence blank (GLM-130B)
    public var sop: Int32        // start of piece: generation begins after it
    public var eop: Int32        // end of piece
    public var eos: Int32        // end of text
    public var pad: Int32?

    public init(mask: Int32, gmask: Int32, smask: Int32?, sop: Int32, eop: Int32, eos: Int32, pad: Int32?) {
        (self.mask, self.gmask, self.smask, self.sop, self.eop, self.eos, self.pad) = (mask, gmask, smask, sop, eop, eos, pad)
    }

    /// A checkpoint whose config names only eos (the kin's, without a tokenizer beside it):
    /// every GLM token is eos until a tokenizer numbers them (CheckpointTokenizer).
    public static func unknown(eos: Int32, pad: Int32?) -> SpecialTokens {
        SpecialTokens(mask: eos, gmask: eos, smask: nil, sop: eos, eop: eos, eos: eos, pad: pad)
    }

    /// The tokens that end a generation: eop and eos (GLM-130B generate.py).
    public var endTokens: [Int32] { eop == eos ? [eop] : [eop, eos] }
}

public struct ModelConfig: Sendable, Codable, Equatable {
    public enum FeedForward: String, Sendable, Codable {
        /// x1 * gelu_erf(x2) with [x1 | x2] = up(x): GLM-130B.
        case gegluErf = "geglu"
        /// gelu_tanh(up(x)): ChatGLM-6B.
        case geluTanh = "gelu_tanh"
        /// silu(g) * u with [g | u] = up(x): ChatGLM2/3, GLM-4.
        case swiglu
    }

    /// The layer's normalisation.
    public enum Norm: String, Sendable, Codable {
        /// LayerNorm with weight and bias (GLM-130B, ChatGLM-6B).
        case layerNorm = "layernorm"
        /// RMSNorm, weight only (ChatGLM2/3, GLM-4).
        case rmsNorm = "rmsnorm"
    }

    /// Where the norms sit around each sublayer.
    public enum Residual: String, Sendable, Codable {
        /// Post-LN DeepNorm: x = LN(x * alpha + f(x)) (GLM-130B, ChatGLM-6B).
        case deepNorm = "deepnorm"
        /// Pre-norm: x = x + f(norm(x)), a final norm before the output (ChatGLM2/3, GLM-4-9B).
        case preNorm = "prenorm"
        /// Pre-norm with a norm on each branch's output as well: x = x + norm'(f(norm(x))) (GLM-4-0414).
        case sandwich
    }

    /// The architecture name in the model file (`general.architecture`).
    public var architecture: String
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    public var headDim: Int
    /// Width of the FFN's inner activation (the up projection is 2x this for GeGLU).
    public var ffnInner: Int
    public var vocab: Int
    public var contextLength: Int
    public var layerNormEps: Float
    public var ropeBase: Float
    public var rope: RoPEShape.Form
    public var feedForward: FeedForward
    /// Output projection shares the word embedding (GLM-130B) or is its own `lm_head` (ChatGLM).
    public var tiedOutput: Bool
    public var tokens: SpecialTokens
    /// DeepNorm's residual scale: sqrt(2 * layers) in the GLM-130B paper; the
    /// architecture decides (ChatGLM-6B's reference code always uses sqrt(2 * 28)).
    public var alpha: Float
    /// Key/value heads: heads for multi-head attention, fewer for grouped-query attention.
    public var kvHeads: Int
    public var norm: Norm
    public var residual: Residual
    /// Values of each head the rotary embedding turns, when the model says (the kin's
    /// partial rotary factor); nil: the form's own (see rotaryDim).
    public var declaredRotaryDim: Int?
    /// Whether the QKV product has a bias, and whether the other products do.
    public var qkvBias: Bool, linearBias: Bool
    /// How the model chats, when it has a template of its own beyond the architecture's text one.
    public var chatFormat: ChatFormat?

    public init(architecture: String, layers: Int, hidden: Int, heads: Int, headDim: Int, ffnInner: Int, vocab: Int,
                contextLength: Int, layerNormEps: Float, ropeBase: Float, rope: RoPEShape.Form, feedForward: FeedForward,
                tiedOutput: Bool, tokens: SpecialTokens, alpha: Float, kvHeads: Int? = nil, norm: Norm = .layerNorm,
                residual: Residual = .deepNorm, rotaryDim: Int? = nil, qkvBias: Bool = true, linearBias: Bool = true,
                chatFormat: ChatFormat? = nil) {
        self.architecture = architecture
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.headDim = headDim
        self.ffnInner = ffnInner
        self.vocab = vocab
        self.contextLength = contextLength
        self.layerNormEps = layerNormEps
        self.ropeBase = ropeBase
        self.rope = rope
        self.feedForward = feedForward
        self.tiedOutput = tiedOutput
        self.tokens = tokens
        self.alpha = alpha
        self.kvHeads = kvHeads ?? heads
        self.norm = norm
        self.residual = residual
        declaredRotaryDim = rotaryDim
        self.qkvBias = qkvBias
        self.linearBias = linearBias
        self.chatFormat = chatFormat
    }

    /// Rows of the up projection: 2 * inner for the gated forms (GeGLU, SwiGLU), inner for GeLU.
    public var ffnUpRows: Int { feedForward == .geluTanh ? ffnInner : 2 * ffnInner }
    /// Values of each head the rotary embedding turns (see RoPEShape.rotaryDim): the whole
    /// head (1D), half of it (2D), or the declared part (interleaved; half unless declared).
    public var rotaryDim: Int { declaredRotaryDim ?? (rope == .oneD ? headDim : headDim / 2) }
    /// Floats of one token's attention output (the output projection's input): heads x head dim,
    /// the hidden size except for kin that project heads to another width.
    public var attentionWidth: Int { heads * headDim }
    /// Query heads per key/value head.
    public var kvGroup: Int { heads / max(kvHeads, 1) }
    /// Floats of one token's fused QKV row: [q (heads) | k (kv heads) | v (kv heads)], or per head [q|k|v].
    public var qkvWidth: Int { (heads + 2 * kvHeads) * headDim }
    /// Whether keys before sop are seen by every query (GLM's blank-filling prefix); the
    /// pre-norm kin are causal throughout.
    public var bidirectionalPrefix: Bool { residual == .deepNorm }

    /// Checks relations the forward pass relies on; `source` names the file for errors.
    public func validate(source: String) throws {
        func fail(_ reason: String) -> ModelFileError { .badConfig(file: source, reason: reason) }
        guard layers > 0, hidden > 0, heads > 0, headDim > 0, ffnInner > 0, vocab > 0, contextLength > 0 else {
            throw fail("every size must be positive (layers \(layers), hidden \(hidden), heads \(heads), head dim \(headDim), inner \(ffnInner), vocab \(vocab), context \(contextLength))")
        }
        // sizes far beyond any real model are corrupt metadata: they would overflow
        // products or build plans of millions of steps (GLM-130B: 70 layers,
        // hidden 12288, inner 32768, vocabulary 150528, context 2048)
        for (name, value, limit) in [("layers", layers, 4096), ("hidden", hidden, 1 << 17), ("heads", heads, 4096),
                                     ("inner", ffnInner, 1 << 20), ("vocabulary", vocab, 1 << 22), ("context", contextLength, 1 << 20)] {
            guard value <= limit else { throw fail("\(name) \(value) exceeds \(limit), far beyond any GLM model") }
        }
        guard layerNormEps.isFinite, layerNormEps > 0, layerNormEps < 1, ropeBase.isFinite, ropeBase > 1 else {
            throw fail("layer-norm eps \(layerNormEps) must lie in (0, 1) and the RoPE base \(ropeBase) above 1")
        }
        guard alpha > 0, alpha.isFinite else { throw fail("residual alpha \(alpha) must be a positive number") }
        // DeepNorm's fused QKV layout and its checkpoints need heads x head dim = hidden; the
        // pre-norm kin project their heads back to the hidden size from whatever width they have
        guard heads * headDim == hidden || residual != .deepNorm else {
            throw fail("heads (\(heads)) x head dim (\(headDim)) must equal hidden (\(hidden))")
        }
        guard heads * headDim <= 1 << 17 else { throw fail("heads x head dim \(heads * headDim) exceeds \(1 << 17)") }
        guard kvHeads > 0, kvHeads <= heads, heads % kvHeads == 0 else {
            throw fail("\(heads) query heads do not split into groups over \(kvHeads) key/value heads")
        }
        guard kvHeads == heads || residual != .deepNorm else { throw fail("grouped-query attention needs a pre-norm architecture") }
        guard headDim % (rope == .twoD ? 4 : 2) == 0 else { throw fail("head dim \(headDim) does not fit \(rope) RoPE") }
        guard rotaryDim > 0, rotaryDim % 2 == 0, rotaryDim <= headDim, rope == .interleaved || rotaryDim == (rope == .oneD ? headDim : headDim / 2) else {
            throw fail("rotary dimension \(rotaryDim) does not fit \(rope) RoPE over a \(headDim)-value head")
        }
        guard headDim <= 512 else { throw fail("head dim \(headDim) is above the kernels' 512") }
        let optional = [("smask", tokens.smask), ("pad", tokens.pad)].compactMap { name, id in id.map { (name, $0) } }
        for (name, id) in [("mask", tokens.mask), ("gmask", tokens.gmask), ("sop", tokens.sop), ("eop", tokens.eop), ("eos", tokens.eos)] + optional {
            guard id >= 0, Int(id) < vocab else { throw fail("special token \(name) = \(id) is outside the vocabulary (\(vocab))") }
        }
    }
}

extension RoPEShape.Form: Codable {
    public var codedName: String {
        switch self {
        case .oneD: return "1d"
        case .twoD: return "2d"
        case .interleaved: return "interleaved"
        }
    }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let form = Self.allCases.first(where: { $0.codedName == s }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown RoPE form '\(s)'"))
        }
        self = form
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(codedName)
    }
}
