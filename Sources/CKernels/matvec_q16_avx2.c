/*
 * matvec_q16_avx2.c — the 16-bit-activation mat-vec for AVX2: each pair dot
 * is vpmaddwd (16 int16 products summed pairwise into 8 int32) twice and an add.
 */
#include "internal.h"
#include "simd_avx2.h"

#if GLMK_X86

#define Q16_FN(name) name##_avx2
#define Q16_TARGET "avx2,fma,f16c"
#define Q16_DOT(a0, b0, a1, b1) _mm256_add_epi32(_mm256_madd_epi16(a0, b0), _mm256_madd_epi16(a1, b1))
#include "matvec_q16_rows.h"

#endif
