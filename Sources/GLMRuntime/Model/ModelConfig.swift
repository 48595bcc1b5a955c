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

    /// The tokens that end a generation: eop and eos (GLM-130B generate.py).
    public var endTokens: [Int32] { eop == eos ? [eop] : [eop, eos] }
}

public struct ModelConfig: Sendable, Codable, Equatable {
    public enum FeedForward: String, Sendable, Codable {
        /// x1 * gelu_erf(x2) with [x1 | x2] = up(x): GLM-130B.
        case gegluErf = "geglu"
        /// gelu_tanh(up(x)): ChatGLM-6B.
        case geluTanh = "gelu_tanh"
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
    public init(architecture: String, layers: Int, hidden: Int, heads: Int, headDim: Int, ffnInner: Int, vocab: Int,
                contextLength: Int, layerNormEps: Float, ropeBase: Float, rope: RoPEShape.Form, feedForward: FeedForward,
                tiedOutput: Bool, tokens: SpecialTokens, alpha: Float) {
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
    }

    /// Rows of the up projection: 2 * inner for GeGLU, inner for GeLU.
    public var ffnUpRows: Int { feedForward == .gegluErf ? 2 * ffnInner : ffnInner }
    /// Dimension each rotation acts on.
    public var rotaryDim: Int { rope == .twoD ? headDim / 2 : headDim }

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
        guard heads * headDim == hidden else { throw fail("heads (\(heads)) x head dim (\(headDim)) must equal hidden (\(hidden))") }
        guard headDim % (rope == .twoD ? 4 : 2) == 0 else { throw fail("head dim \(headDim) does not fit \(rope) RoPE") }
        guard headDim <= 512 else { throw fail("head dim \(headDim) is above the kernels' 512") }
        let optional = [("smask", tokens.smask), ("pad", tokens.pad)].compactMap { name, id in id.map { (name, $0) } }
        for (name, id) in [("mask", tokens.mask), ("gmask", tokens.gmask), ("sop", tokens.sop), ("eop", tokens.eop), ("eos", tokens.eos)] + optional {
            guard id >= 0, Int(id) < vocab else { throw fail("special token \(name) = \(id) is outside the vocabulary (\(vocab))") }
        }
    }
}

extension RoPEShape.Form: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        self = s == "2d" ? .twoD : .oneD
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(self == .twoD ? "2d" : "1d")
    }
}
