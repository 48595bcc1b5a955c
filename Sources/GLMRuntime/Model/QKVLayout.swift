// QKVLayout.swift — where each head's q, k and v sit in one token's row of the
// fused QKV product. GLM-130B and ChatGLM-6B interleave them per head
// ([q0 k0 v0 | q1 k1 v1 | ...], as their query_key_value weight is laid out);
// the pre-norm kin put all queries first, then the key/value heads
// ([q0 .. qH | k0 .. kG | v0 .. vG]), which grouped-query attention needs.

public struct QKVLayout: Sendable, Equatable {
    /// Floats per token row.
    public let tokenStride: Int
    /// Floats between consecutive query heads, and between consecutive key (value) heads.
    public let headStride: Int
    /// Where head 0's key and value start in the row.
    public let keyOffset: Int, valueOffset: Int

    public init(config c: ModelConfig) {
        let d = c.headDim
        tokenStride = c.qkvWidth
        if c.residual == .deepNorm {
            (headStride, keyOffset, valueOffset) = (3 * d, d, 2 * d)
        } else {
            (headStride, keyOffset, valueOffset) = (d, c.heads * d, (c.heads + c.kvHeads) * d)
        }
    }
}
