/*
 * q4_0_matvec_4rows.c — an example GLMRuntime kernel plugin: the Q4_0 mat-vec
 * (decode) with a different blocking from the built-in one. It walks four
 * weight rows at once, so each 32-value slice of x is loaded and converted
 * once and used by four rows' blocks, and keeps four accumulators live.
 *
 * Build: SwiftPM builds it as the dynamic library product GLMExamplePlugin
 * (libGLMExamplePlugin.so); see docs/writing-a-kernel-plugin.md.
 *
 * The EXAMPLE_PLUGIN_BREAK_* macros exist for the runtime's tests, which
 * compile broken variants of this file to check each rejection path.
 */
#include "example_plugin.h"
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint16_t d;
    uint8_t qs[16]; // byte j: element j (low nibble), element j + 16 (high nibble); w = d * (q - 8)
} block_q4_0;

#define TARGET __attribute__((target("avx2,fma,f16c")))

TARGET static float fp16_to_fp32(uint16_t h) {
    return _cvtsh_ss(h); // F16C, part of the AVX2 ISA bit this kernel requires
}

/// 32 weights of one Q4_0 block as two vectors of 16 int8 (q - 8): elements 0..15 and 16..31.
TARGET static inline void unpack(const block_q4_0 *b, __m128i *lo, __m128i *hi) {
    const __m128i bytes = _mm_loadu_si128((const __m128i *)b->qs);
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    *lo = _mm_sub_epi8(_mm_and_si128(bytes, mask), eight);
    *hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), eight);
}

TARGET static inline __m256 dot16(__m128i q, __m256 x0, __m256 x1) {
    const __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    const __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
    return _mm256_fmadd_ps(b, x1, _mm256_mul_ps(a, x0));
}

TARGET static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Rows r .. r + count (count <= 4) of y.
TARGET static void rows4(float *y, const glm_plugin_matrix *w, const float *x, const float *bias, int64_t r, int count) {
    const int64_t blocks = w->cols / 32;
    const block_q4_0 *row[4];
    __m256 acc[4];
    for (int i = 0; i < 4; i++) {
        row[i] = (const block_q4_0 *)((const uint8_t *)w->data + (r + (i < count ? i : 0)) * w->row_bytes);
        acc[i] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; b++) {
        const float *xb = x + b * 32;
        const __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
        const __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
        for (int i = 0; i < 4; i++) {
            __m128i lo, hi;
            unpack(&row[i][b], &lo, &hi);
            const __m256 s = _mm256_add_ps(dot16(lo, x0, x1), dot16(hi, x2, x3));
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(fp16_to_fp32(row[i][b].d)), s, acc[i]);
        }
    }
    for (int i = 0; i < count; i++) {
#ifdef EXAMPLE_PLUGIN_BREAK_RESULTS
        y[r + i] = hsum(acc[i]) * 1.01f + (bias ? bias[r + i] : 0.0f); // 1% off: must fail verification
#elif defined(EXAMPLE_PLUGIN_BREAK_NULL_BIAS)
        y[r + i] = hsum(acc[i]) + bias[r + i]; // crashes when the runtime passes no bias
#else
        y[r + i] = hsum(acc[i]) + (bias ? bias[r + i] : 0.0f);
#endif
    }
}

#ifdef EXAMPLE_PLUGIN_BREAK_RACY
static atomic_int calls_in_flight; // state shared by every call: wrong when two overlap
#endif

static int matvec_q4_0(float *y, const glm_plugin_matrix *w, const float *x, const float *bias) {
    if (!y || !w || !x || !w->data || w->type != 3 || w->cols % 32 != 0 || w->rows <= 0) return 1;
#ifdef EXAMPLE_PLUGIN_BREAK_RACY
    const int overlapped = atomic_fetch_add(&calls_in_flight, 1) > 0;
    usleep(2000);
#endif
    const int64_t groups = (w->rows + 3) / 4;
#ifdef EXAMPLE_PLUGIN_BREAK_SLOW
    for (int repeat = 0; repeat < 40; repeat++) // the same work forty times over
#endif
#pragma omp parallel for schedule(static) if (w->rows * w->cols >= 65536)
    for (int64_t g = 0; g < groups; g++) {
        const int64_t r = g * 4;
        rows4(y, w, x, bias, r, (int)(w->rows - r < 4 ? w->rows - r : 4));
    }
#ifdef EXAMPLE_PLUGIN_BREAK_OVERRUN
    y[w->rows] = 0.0f; // one float past the output
#endif
#ifdef EXAMPLE_PLUGIN_BREAK_NAN_LARGE
    if (w->rows > 1024) y[w->rows - 1] = NAN; // only shapes beyond small tests
#endif
#ifdef EXAMPLE_PLUGIN_BREAK_NAN_AT_RUNTIME
    if (w->cols == 64) y[0] = NAN; // a width verification does not try
#endif
#ifdef EXAMPLE_PLUGIN_BREAK_RACY
    if (overlapped) y[0] += 1.0f;
    atomic_fetch_sub(&calls_in_flight, 1);
#endif
    return 0;
}

static const glm_plugin_kernel kernels[] = {
#ifdef EXAMPLE_PLUGIN_BREAK_NULL_FUNCTION
    {.operation = "matvec.q4_0", .isa_required = GLM_PLUGIN_ISA_AVX2_FMA, .matvec = NULL},
#elif defined(EXAMPLE_PLUGIN_BREAK_UNKNOWN_OPERATION)
    {.operation = "matvec.q3_k", .isa_required = GLM_PLUGIN_ISA_AVX2_FMA, .matvec = matvec_q4_0},
#else
    {.operation = "matvec.q4_0", .isa_required = GLM_PLUGIN_ISA_AVX2_FMA, .matvec = matvec_q4_0},
#endif
};

static const glm_plugin plugin = {
#ifdef EXAMPLE_PLUGIN_BREAK_ABI_VERSION
    .abi_version = GLM_PLUGIN_ABI_VERSION + 1,
#else
    .abi_version = GLM_PLUGIN_ABI_VERSION,
#endif
#ifdef EXAMPLE_PLUGIN_BREAK_STRUCT_SIZE
    .struct_size = sizeof(glm_plugin) - 8,
#else
    .struct_size = sizeof(glm_plugin),
#endif
    .name = "example-q4",
    .version = "1.0.0",
    .priority = 100,
    .kernel_count = sizeof kernels / sizeof kernels[0],
    .kernels = kernels,
};

#ifndef EXAMPLE_PLUGIN_BREAK_MISSING_ENTRY
const glm_plugin *glm_plugin_init(void) { return &plugin; }
#endif
