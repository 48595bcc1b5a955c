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

/// 1 / x from the 12-bit hardware estimate and one Newton step (relative error
/// ~1e-7): three pipelined operations where vdivps is one slow one.
GLMK_AVX2_INLINE __m256 glmk_reciprocal256(__m256 x) {
    const __m256 r = _mm256_rcp_ps(x);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(x, r, _mm256_set1_ps(2.0f)));
}

/// erf(x), Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), odd symmetry.
GLMK_AVX2_INLINE __m256 glmk_erf256(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 t = glmk_reciprocal256(_mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 e = glmk_exp_nonpositive256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
    const __m256 y = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(y, sign);
}

/// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|); absolute error ~1e-7.
GLMK_AVX2_INLINE __m256 glmk_tanh256(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 e = glmk_exp_nonpositive256(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f)));
    const __m256 y = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), e), glmk_reciprocal256(_mm256_add_ps(_mm256_set1_ps(1.0f), e)));
    return _mm256_or_ps(y, sign);
}

#endif
#endif
