/*
 * fp16.c — IEEE half <-> single conversions in portable C (round to nearest
 * even), so the scalar path needs neither F16C nor compiler-rt's helpers.
 */
#include "internal.h"

uint16_t glmk_fp32_to_fp16(float value) {
    uint32_t x;
    memcpy(&x, &value, sizeof x);
    const uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t a = x & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (a > 0x7F800000u ? 0x0200u : 0)); // inf, nan
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // rounds past 65504: inf
    if (a < 0x38800000u) {
        // Below the smallest normal half (2^-14): adding 0.5f puts the half's
        // subnormal ulp (2^-24) in the float's last mantissa bit, so the FPU rounds for us.
        float f;
        memcpy(&f, &a, sizeof f);
        f += 0.5f;
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        return (uint16_t)(sign | (bits - 0x3F000000u));
    }
    const uint32_t mantissa_odd = (a >> 13) & 1u;
    a += ((uint32_t)(15 - 127) << 23) + 0xFFFu + mantissa_odd; // rebias and round half to even
    return (uint16_t)(sign | (a >> 13));
}

float glmk_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1Fu;
    const uint32_t mantissa = h & 0x3FFu;
    uint32_t bits;
    if (exponent == 0) {
        float f = (float)mantissa * 5.9604644775390625e-8f; // mantissa * 2^-24, exact
        memcpy(&bits, &f, sizeof bits);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

#if GLMK_X86
#include <immintrin.h>
__attribute__((target("avx2,f16c"))) static void to_fp16_f16c(uint16_t *dst, const float *src, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < count; i++) dst[i] = glmk_fp32_to_fp16(src[i]);
}
#endif

void glmk_fp32_to_fp16_array(uint16_t *dst, const float *src, int64_t count) {
#if GLMK_X86
    if (glmk_isa_supported(GLMK_ISA_AVX2)) return to_fp16_f16c(dst, src, count); // vcvtps2ph rounds to nearest even too
#endif
    for (int64_t i = 0; i < count; i++) dst[i] = glmk_fp32_to_fp16(src[i]);
}
