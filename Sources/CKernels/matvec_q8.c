/*
 * matvec_q8.c — the INT4 mat-vec with 8-bit activations (decode). FP32
 * activations make an INT4 mat-vec instruction bound: every weight needs a
 * conversion to float and an FMA lane. Quantizing x once per call to 8 bits
 * per 32-block turns the inner loop into integer dot products
 * (vpmaddubsw + vpmaddwd: 32 multiply-accumulates in two instructions) and
 * one FMA per block. Weight nibbles are used unsigned (q + 8) and corrected
 * with the block's activation sum: sum((u - 8) * qx) = sum(u * qx) - 8 * sum(qx).
 */
#include "internal.h"
#include "simd_avx2.h"
#include <float.h>
#include <math.h>

glmk_status glmk_quantize_activations(int8_t *xq, float *scales, int32_t *sums, const float *x, int64_t k) {
    if (!xq || !scales || !sums || !x || k <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t b = 0; b * GLMK_QK < k; b++) {
        const int64_t k0 = b * GLMK_QK, n = k - k0 < GLMK_QK ? k - k0 : GLMK_QK;
        float amax = 0.0f;
        int finite = 1;
        for (int64_t i = 0; i < n; i++) {
            const float a = fabsf(x[k0 + i]);
            finite &= a <= FLT_MAX; /* fmaxf would drop a NaN: a NaN scale carries it to the output */
            amax = fmaxf(amax, a);
        }
        const float scale = finite ? amax / 127.0f : NAN, inv = finite && scale > 0.0f ? 1.0f / scale : 0.0f;
        int32_t sum = 0;
        for (int64_t i = 0; i < n; i++) {
            xq[k0 + i] = finite ? (int8_t)lrintf(x[k0 + i] * inv) : 0;
            sum += xq[k0 + i];
        }
        scales[b] = scale;
        sums[b] = sum;
    }
    return GLMK_OK;
}

glmk_status glmk_quantize_activation_rows(int8_t *xq, float *scales, int32_t *sums, const float *x, int64_t m, int64_t k) {
    if (!xq || !scales || !sums || !x || m <= 0 || k <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    const int64_t blocks = (k + GLMK_QK - 1) / GLMK_QK;
    GLMK_PARALLEL_FOR(t, 0, m, m * k, glmk_quantize_activations(xq + t * k, scales + t * blocks, sums + t * blocks, x + t * k, k));
    return GLMK_OK;
}

glmk_status glmk_check_integer_activations(const float *y, const glmk_matrix *w, const void *xq, const float *x_scales,
                                           const int32_t *x_sums, int q8_0_too) {
    if (!y || !xq || !x_scales || !x_sums) return GLMK_ERR_INVALID_ARGUMENT;
    const glmk_status status = glmk_matrix_validate(w);
    if (status != GLMK_OK) return status;
    switch (w->type) {
    case GLMK_TYPE_Q4_0: case GLMK_TYPE_Q4_ROW: return GLMK_OK;
    case GLMK_TYPE_Q4_GROUP: return w->group % GLMK_QK == 0 ? GLMK_OK : GLMK_ERR_UNSUPPORTED;
    case GLMK_TYPE_Q8_0: return q8_0_too ? GLMK_OK : GLMK_ERR_UNSUPPORTED;
    default: return GLMK_ERR_UNSUPPORTED;
    }
}

glmk_status glmk_check_matvec_q8(const float *y, const glmk_matrix *w, const int8_t *xq, const float *x_scales, const int32_t *x_sums) {
    return glmk_check_integer_activations(y, w, xq, x_scales, x_sums, 0);
}

glmk_status glmk_matvec_q8_scalar(float *y, const glmk_matrix *w, const int8_t *xq, const float *x_scales,
                                  const int32_t *x_sums, const float *bias) {
    const glmk_status status = glmk_check_matvec_q8(y, w, xq, x_scales, x_sums);
    if (status != GLMK_OK) return status;
    for (int64_t n = 0; n < w->rows; n++) {
        double total = 0.0;
        for (int64_t b = 0; b * GLMK_QK < w->cols; b++) {
            const int64_t k0 = b * GLMK_QK, count = w->cols - k0 < GLMK_QK ? w->cols - k0 : GLMK_QK;
            int32_t dot = 0;
            float scale = 0.0f;
            for (int64_t i = 0; i < count; i++) dot += glmk_weight_q(w, n, k0 + i, &scale) * xq[k0 + i];
            // one weight scale per 32-block: a Q4_0 block, or a row / group of 32·j
            total += (double)scale * (double)x_scales[b] * (double)dot;
        }
        y[n] = (float)total + (bias ? bias[n] : 0.0f);
    }
    return GLMK_OK;
}

#if GLMK_X86

/// Sum over one 32-block of u * qx as 8 int32 lanes (u unsigned 0..15, qx signed).
GLMK_AVX2_INLINE __m256i block_dot(__m256i u, const int8_t *xq) {
    const __m256i p16 = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)xq));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/// One block's integer dot with the nibble zero point removed: sum((u - 8) * qx)
/// spread over 8 lanes (8 * sum(qx) is subtracted as sum(qx) from each lane).
GLMK_AVX2_INLINE __m256 block_value(__m256i u, const int8_t *xq, int32_t xsum) {
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(block_dot(u, xq), _mm256_set1_epi32(xsum)));
}

GLMK_AVX2 static float row_q4_0(const glmk_matrix *w, int64_t row, const int8_t *xq, const float *xs, const int32_t *sums) {
    const glmk_block_q4_0 *blocks = (const glmk_block_q4_0 *)glmk_row_ptr(w, row);
    const __m128i mask = _mm_set1_epi8(0x0F);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(); // two chains hide the FMA latency
    const int64_t count = w->cols / GLMK_QK;
    for (int64_t b = 0; b < count; b++) {
        const __m128i bytes = _mm_loadu_si128((const __m128i *)blocks[b].qs);
        // low nibbles are elements 0..15, high nibbles 16..31: already in x's order
        const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), _mm_and_si128(bytes, mask));
        const __m256 scale = _mm256_set1_ps(glmk_half(blocks[b].d) * xs[b]);
        if (b & 1) acc1 = _mm256_fmadd_ps(scale, block_value(u, xq + b * GLMK_QK, sums[b]), acc1);
        else acc0 = _mm256_fmadd_ps(scale, block_value(u, xq + b * GLMK_QK, sums[b]), acc0);
    }
    return glmk_hsum256(_mm256_add_ps(acc0, acc1));
}

GLMK_AVX2 static float row_q4(const glmk_matrix *w, int64_t row, const int8_t *xq, const float *xs, const int32_t *sums) {
    const uint8_t *r = glmk_row_ptr(w, row);
    const int64_t per_row = glmk_scales_per_row(w->type, w->cols, w->group);
    const uint16_t *scales = w->scales + row * per_row;
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float tail = 0.0f;
    const int64_t whole = w->cols / GLMK_QK;
    const int64_t blocks_per_scale = w->group / GLMK_QK > 0 ? w->group / GLMK_QK : 1;
    for (int64_t b = 0; b < whole; b++) {
        const __m128i bytes = _mm_loadu_si128((const __m128i *)(r + b * 16));
        const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
        // the even column is the high nibble: interleave back to column order, then q + 8 = nibble ^ 8
        const __m256i u = _mm256_set_m128i(_mm_xor_si128(_mm_unpackhi_epi8(hi, lo), eight), _mm_xor_si128(_mm_unpacklo_epi8(hi, lo), eight));
        const __m256 scale = _mm256_set1_ps(glmk_half(scales[b / blocks_per_scale]) * xs[b]);
        if (b & 1) acc1 = _mm256_fmadd_ps(scale, block_value(u, xq + b * GLMK_QK, sums[b]), acc1);
        else acc0 = _mm256_fmadd_ps(scale, block_value(u, xq + b * GLMK_QK, sums[b]), acc0);
    }
    if (whole * GLMK_QK < w->cols) { // a shorter last block (per-row scales, cols % 32 != 0)
        int32_t dot = 0;
        for (int64_t k = whole * GLMK_QK; k < w->cols; k++) dot += glmk_q4_at(r, k) * xq[k];
        tail = glmk_half(scales[(whole * GLMK_QK) / w->group]) * xs[whole] * (float)dot;
    }
    return glmk_hsum256(_mm256_add_ps(acc0, acc1)) + tail;
}

glmk_status glmk_matvec_q8_avx2(float *y, const glmk_matrix *w, const int8_t *xq, const float *x_scales,
                                const int32_t *x_sums, const float *bias) {
    const glmk_status status = glmk_check_matvec_q8(y, w, xq, x_scales, x_sums);
    if (status != GLMK_OK) return status;
    const int64_t rows = w->rows;
    const int q4_0 = w->type == GLMK_TYPE_Q4_0;
    GLMK_PARALLEL_FOR(n, 0, rows, rows * w->cols, {
        const float dot = q4_0 ? row_q4_0(w, n, xq, x_scales, x_sums) : row_q4(w, n, xq, x_scales, x_sums);
        y[n] = dot + (bias ? bias[n] : 0.0f);
    });
    return GLMK_OK;
}

#endif
