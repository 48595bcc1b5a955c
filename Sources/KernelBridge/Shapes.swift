// Shapes.swift — strided views for attention and RoPE: (token, head, head_dim)
// tensors inside flat FP32 arrays, e.g. q, k and v sharing one fused QKV row.

/// Attention over a KV cache with GLM's mask: key j is visible to the query at
/// absolute position p when j < bidirectionalLength or j <= p.
public struct AttentionShape: Sendable, Equatable {
    public var queries: Int
    public var keys: Int
    public var heads: Int
    public var headDim: Int
    /// Absolute position (cache index) of query 0; queries are consecutive.
    public var firstQueryPosition: Int
    /// Keys [0, bidirectionalLength) are seen by every query (GLM's context part).
    public var bidirectionalLength: Int
    /// Multiplies q.k; 1/sqrt(headDim) unless set.
    public var scale: Float
    public var qTokenStride: Int, qHeadStride: Int
    public var kvTokenStride: Int, kvHeadStride: Int
    public var outTokenStride: Int, outHeadStride: Int
    /// Where query 0 and output 0 start in their arrays (one row of a batch's buffer).
    public var qOffset = 0, outOffset = 0
    /// Query heads per key/value head (grouped-query attention): query head h reads
    /// k/v head h / kvGroup, so k and v hold heads / kvGroup heads. 1: multi-head.
    public var kvGroup = 1

    /// Key/value heads the cache holds.
    public var kvHeads: Int { heads / max(kvGroup, 1) }

    /// Dense (token, head, head_dim) layouts for q, k/v and out.
    public init(queries: Int, keys: Int, heads: Int, headDim: Int, firstQueryPosition: Int,
                bidirectionalLength: Int, scale: Float? = nil) {
        self.queries = queries
        self.keys = keys
        self.heads = heads
        self.headDim = headDim
        self.firstQueryPosition = firstQueryPosition
        self.bidirectionalLength = bidirectionalLength
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
        qTokenStride = heads * headDim
        qHeadStride = headDim
        kvTokenStride = heads * headDim
        kvHeadStride = headDim
        outTokenStride = heads * headDim
        outHeadStride = headDim
    }

    /// Elements a (count, heads, headDim) view with these strides reaches.
    static func extent(count: Int, heads: Int, headDim: Int, tokenStride: Int, headStride: Int) -> Int {
        (count - 1) * tokenStride + (heads - 1) * headStride + headDim
    }
}

/// Rotary embedding over (tokens, heads, headDim) with strides.
public struct RoPEShape: Sendable, Equatable {
    public enum Form: Sendable, CaseIterable {
        /// Rotate-half over the whole head by position (GLM-130B).
        case oneD
        /// Rotate-half: the first half of the head by position, the second by block position (ChatGLM-6B).
        case twoD
        /// Adjacent pairs (2i, 2i + 1) of the head's first rotaryDim values by position, the
        /// rest unrotated (ChatGLM2/3, GLM-4).
        case interleaved
    }
    public var tokens: Int
    public var heads: Int
    public var headDim: Int
    public var tokenStride: Int
    public var headStride: Int
    /// 1D: all of headDim rotates by position (GLM-130B). 2D: the first half by
    /// position, the second half by block position (ChatGLM-6B).
    public var form: Form
    /// > 0: each head's vector and the one this many floats after it rotate
    /// together (Q and K of a fused QKV row in one pass); 0: one vector per head.
    public var pairOffset: Int
    /// The dimension each rotation acts on: headDim (1D), headDim / 2 (2D), or the
    /// rotated leading part of the head (interleaved; half of it unless given).
    public var rotaryDim: Int

    public init(tokens: Int, heads: Int, headDim: Int, form: Form, tokenStride: Int? = nil, headStride: Int? = nil,
                pairOffset: Int = 0, rotaryDim: Int? = nil) {
        self.tokens = tokens
        self.heads = heads
        self.headDim = headDim
        self.form = form
        self.tokenStride = tokenStride ?? heads * headDim
        self.headStride = headStride ?? headDim
        self.pairOffset = pairOffset
        self.rotaryDim = rotaryDim ?? (form == .oneD ? headDim : headDim / 2)
    }
}

public enum GeLUForm: Sendable {
    /// 0.5 x (1 + erf(x / sqrt 2)): GLM-130B's GeGLU.
    case erf
    /// 0.5 x (1 + tanh(0.79788456 (x + 0.044715 x^3))): ChatGLM-6B.
    case tanh
}

/// One element-wise step of an unfused layer.
public enum ElementwiseStep: Sendable, Equatable {
    /// out = a + b, b one row broadcast over the rows (a bias add).
    case addRow
    /// out = a * scalar + b.
    case scaleAdd(Float)
    /// out = a * b.
    case mul
    /// out = gelu(a).
    case gelu(GeLUForm)
    /// out = silu(a) = a sigmoid(a).
    case silu
    /// out = silu(a) * b: SwiGLU's gate times its up half, one pass.
    case siluMul
}

/// `rows` rows of `n` values inside a flat array: element (r, i) is at offset + r * stride + i.
public struct RowsView: Sendable, Equatable {
    public var offset: Int
    public var stride: Int
    public init(offset: Int = 0, stride: Int) {
        self.offset = offset
        self.stride = stride
    }
}
