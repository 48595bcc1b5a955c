// Tolerances.swift — every error bound the kernel tests use, in one place,
// each with the reason for its value. Errors are normalised:
// nmse(actual, expected) = sum((a - e)^2) / sum(e^2), so a bound of 1e-10 means
// a relative RMS error of 1e-5.

enum Tolerance {
    /// SIMD vs scalar reference for FP32 arithmetic (products, attention,
    /// LayerNorm, RoPE). Both paths read bit-identical weights (the quantized
    /// types dequantize to the same exact products q * scale), so they differ only
    /// in summation order and FMA contraction: float accumulation of K terms has
    /// a relative error around sqrt(K) * 6e-8, i.e. nmse ~1e-13 for our K <= 1000.
    /// 1e-10 leaves three orders of margin and still catches any wrong index,
    /// which gives nmse ~1. Products are normalised by sum |w x| per output
    /// (see ProductKernelTests), the scale their rounding error is bounded by.
    static let fp32Kernel: Double = 1e-10

    /// SIMD vs reference for kernels with polynomial transcendental functions
    /// (erf: |error| <= 1.5e-7 absolute; exp, tanh: ~1e-7 relative). A 1e-7
    /// relative error is nmse 1e-14; the bound matches fp32Kernel.
    static let transcendental: Double = 1e-10

    /// The kernels against textbook formulas evaluated in Double in the test.
    /// Same reasoning as fp32Kernel: the kernels round to float once per step.
    static let formula: Double = 1e-10

    /// Quantization error of FP32 -> type on N(0, 1) data, per type. For a
    /// uniform quantizer with step s the error variance is s^2 / 12:
    ///  - f16: relative step 2^-10 -> nmse ~ 2^-20 / 12 ~ 8e-8.
    ///  - q8_0: step = absmax / 127 with absmax ~ 2.5 sigma over 32 values -> ~3e-5.
    ///  - q4_0: step = absmax / 8 (16 levels) -> ~8e-3.
    ///  - q4_row: step = absmax / 7 with absmax ~ 3.5 sigma over a long row -> ~2e-2.
    ///  - q4_group: absmax over 32..128 values, between q4_0 and q4_row.
    /// Each bound is about twice the expected value: a broken quantizer (wrong
    /// scale, wrong nibble) lands at nmse >= 0.1.
    static func quantization(_ type: String) -> Double {
        switch type {
        case "f32": return 0
        case "f16": return 2e-7
        case "q8_0": return 1e-4
        case "q4_0": return 2e-2
        case "q4_row": return 5e-2
        default: return 4e-2
        }
    }
}
