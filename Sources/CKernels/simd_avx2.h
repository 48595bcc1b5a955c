/*
 * simd_avx2.h — AVX2/FMA building blocks shared by the *_avx2.c files: nibble
 * unpacking, horizontal sums, and vector exp / erf / tanh for the softmax and
 * GeLU kernels. Every function is compiled for AVX2 through the target
 * attribute, so the rest of the library keeps the build machine's baseline ISA.
 */
#ifndef GLMK_SIMD_AVX2_H
#define GLMK_SIMD_AVX2_H
#if GLMK_X86
#include <immintrin.h>

#define GLMK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define GLMK_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/// fp16 -> fp32 with F16C: one instruction, where the portable conversion is a
/// call with branches (which dominated the INT4 block loops).
GLMK_AVX2_INLINE float glmk_half(uint16_t h) { return _cvtsh_ss(h); }

GLMK_AVX2_INLINE float glmk_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

GLMK_AVX2_INLINE float glmk_hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// 8 int8 lanes (the low 8 bytes of v) to 8 floats.
GLMK_AVX2_INLINE __m256 glmk_i8x8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/// 16 bytes of GLM INT4 (32 values, the even column in the high nibble) to
/// 32 sign-extended int8 in column order: first = columns 0..15, second = 16..31.
GLMK_AVX2_INLINE void glmk_q4_unpack32(const uint8_t *p, __m128i *first, __m128i *second) {
    const __m128i bytes = _mm_loadu_si128((const __m128i *)p);
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_and_si128(bytes, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    // (v ^ 8) - 8 sign-extends a 4-bit two's complement value
    *first = _mm_sub_epi8(_mm_xor_si128(_mm_unpacklo_epi8(hi, lo), eight), eight);
    *second = _mm_sub_epi8(_mm_xor_si128(_mm_unpackhi_epi8(hi, lo), eight), eight);
}

/// e^x for x <= 0 (all softmax and GeLU need): Cody-Waite reduction
/// x = n ln2 + r, a degree-6 polynomial for e^r on |r| <= ln2/2 (relative error
/// ~1e-7), 2^n built in the exponent bits (n in [-126, 0], one field). Inputs
/// below -87.3 flush to ~1e-38.
GLMK_AVX2_INLINE __m256 glmk_exp_nonpositive256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

/// out[k][j] = in[j][k] for an 8 x 8 block of 32-bit values (floats, or int32 pairs read
/// as floats): rows are read at `in_stride`, written at `out_stride` (in elements).
GLMK_AVX2_INLINE void glmk_transpose8x8(float *out, int64_t out_stride, const float *in, int64_t in_stride) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(in + i * in_stride);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    // r0..r3: columns 0, 1, 2, 3 of rows 0-3 (low lanes) and columns 4-7 (high lanes); r4..r7 likewise for rows 4-7
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

/// silu(x) = x sigmoid(x), the sigmoid from e^-|x| so the exponential never overflows:
/// 1 / (1 + e) for x >= 0, e / (1 + e) below (relative error ~1e-7 from the exp).
GLMK_AVX2_INLINE __m256 glmk_silu256(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 e = glmk_exp_nonpositive256(_mm256_or_ps(x, sign)); // e^-|x|
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 numerator = _mm256_blendv_ps(one, e, x);             // x's sign bit picks e
    return _mm256_mul_ps(x, _mm256_div_ps(numerator, _mm256_add_ps(one, e)));
}

/// x P(x^2) / Q(x^2) with x clamped to [-c, c]: the form of the erf and tanh below
/// (both odd and saturating; f(c) rounds to +-1 in float32). P and Q are given
/// highest power first; tools/fit_activation_approximations.py fits them. About 15
/// FMA-pipe operations per 8 values, where the previous exp-based forms took ~30.
GLMK_AVX2_INLINE __m256 glmk_odd_rational256(__m256 x, float c, const float *p, int p_count, const float *q, int q_count) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-c)), _mm256_set1_ps(c));
    const __m256 t = _mm256_mul_ps(x, x);
    __m256 num = _mm256_set1_ps(p[0]), den = _mm256_set1_ps(q[0]);
    for (int i = 1; i < p_count; i++) num = _mm256_fmadd_ps(num, t, _mm256_set1_ps(p[i]));
    for (int i = 1; i < q_count; i++) den = _mm256_fmadd_ps(den, t, _mm256_set1_ps(q[i]));
    // one vdivps: measured faster than rcp + Newton here, and exact to rounding
    return _mm256_div_ps(_mm256_mul_ps(x, num), den);
}

/// erf(x), absolute error <= 4e-7 in float32 (3e-8 in exact arithmetic).
GLMK_AVX2_INLINE __m256 glmk_erf256(__m256 x) {
    static const float p[] = {2.034732264e-06f, 2.874807841e-04f, 3.868370988e-03f, 5.306061352e-02f, 1.927650124e-01f, 1.128379022e+00f};
    static const float q[] = {3.807068786e-05f, 1.188126568e-03f, 1.517238166e-02f, 1.150850195e-01f, 5.041652104e-01f, 1.0f};
    return glmk_odd_rational256(x, 3.92f, p, 6, q, 6);
}

/// tanh(x), absolute error <= 4e-7 in float32 (3e-8 in exact arithmetic).
GLMK_AVX2_INLINE __m256 glmk_tanh256(__m256 x) {
    static const float p[] = {1.318411574e-08f, 2.047173470e-05f, 3.486575255e-03f, 1.337319181e-01f, 9.999999063e-01f};
    static const float q[] = {7.702614037e-07f, 3.271375114e-04f, 2.584195305e-02f, 4.670648866e-01f, 1.0f};
    return glmk_odd_rational256(x, 9.0f, p, 5, q, 5);
}

/// gelu(x) = 0.5 x (1 + erf(x / sqrt 2)), the form GLM-130B's GeGLU uses.
GLMK_AVX2_INLINE __m256 glmk_gelu_erf256(__m256 x) {
    const __m256 half_x = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    return _mm256_fmadd_ps(half_x, glmk_erf256(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f))), half_x);
}

/// gelu(x) = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), ChatGLM-6B's form.
GLMK_AVX2_INLINE __m256 glmk_gelu_tanh256(__m256 x) {
    const __m256 half_x = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    const __m256 inner = _mm256_mul_ps(x, _mm256_fmadd_ps(_mm256_set1_ps(0.7978845608028654f * 0.044715f), _mm256_mul_ps(x, x),
                                                          _mm256_set1_ps(0.7978845608028654f)));
    return _mm256_fmadd_ps(half_x, glmk_tanh256(inner), half_x);
}

#endif
#endif
