/*
 * matvec_q16.c — decode mat-vecs for the quantized weight types (INT4 and
 * Q8_0) with activations quantized to 16 bits per 32-block: the default
 * decode path.
 *
 * Why: with FP32 activations every INT4 weight costs an int->float conversion
 * and an FMA lane, which makes the mat-vec instruction bound at a fraction of
 * the memory bandwidth. With x as int16 the inner loop is vpmaddwd (16
 * multiply-accumulates per instruction, exact in int32) and one float FMA
 * per block. 16 bits per 32-block round each activation by at most
 * absmax / 65534 — 32x finer than fp16's relative step at the block's largest
 * value — which keeps every greedy token of the golden models and moves their
 * logits a tenth as much as the authors' own fp16 run (RuntimeTests), unlike 8 bits.
 *
 * Layout: the activations of a full 32-block are stored in the order the
 * weights' nibbles come out of one 16-byte load (glmk_q16_position), so the
 * kernels never shuffle weights:
 *   - Q4_0 and Q8_0: natural order (low nibbles are elements 0..15);
 *   - GLM INT4 (q4_row, q4_group): byte j holds column 2j (high nibble) and
 *     2j + 1 (low nibble), so a block stores its odd columns, then its even.
 * A trailing partial block (q4_row with cols % 32 != 0) stays in natural order.
 *
 * INT4 nibbles are used unsigned (u = q + 8; GLM's two's-complement nibbles
 * become q + 8 with an xor) and corrected with the block's activation sum:
 * sum((u - 8) x) = sum(u x) - 8 sum(x).
 */
#include "internal.h"
#include <float.h>
#include <math.h>

static int glm_int4_layout(glmk_type type) { return type == GLMK_TYPE_Q4_ROW || type == GLMK_TYPE_Q4_GROUP; }

/// Where column k goes in the quantized activation vector.
static int64_t q16_position(glmk_type type, int64_t k, int64_t cols) {
    const int64_t b = k / GLMK_QK, j = k % GLMK_QK;
    if (!glm_int4_layout(type) || (b + 1) * GLMK_QK > cols) return k;
    return b * GLMK_QK + (j & 1 ? j / 2 : 16 + j / 2);
}

glmk_status glmk_quantize_activations_q16(int16_t *xq, float *scales, int32_t *sums, const float *x, int64_t k,
                                          glmk_type weights) {
    if (!xq || !scales || !sums || !x || k <= 0 || !glmk_type_info_get(weights)) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t b = 0; b * GLMK_QK < k; b++) {
        const int64_t k0 = b * GLMK_QK, n = k - k0 < GLMK_QK ? k - k0 : GLMK_QK;
        float amax = 0.0f;
        int finite = 1;
        for (int64_t i = 0; i < n; i++) {
            const float a = fabsf(x[k0 + i]);
            finite &= a <= FLT_MAX; /* fmaxf would drop a NaN: keep it in the scale instead */
            amax = fmaxf(amax, a);
        }
        const float scale = finite ? amax / 32767.0f : NAN, inv = finite && scale > 0.0f ? 1.0f / scale : 0.0f;
        int32_t sum = 0;
        for (int64_t i = 0; i < n; i++) {
            long q = finite ? lrintf(x[k0 + i] * inv) : 0;
            q = q > 32767 ? 32767 : q < -32767 ? -32767 : q;
            xq[q16_position(weights, k0 + i, k)] = (int16_t)q;
            sum += (int32_t)q;
        }
        scales[b] = scale;
        sums[b] = sum;
    }
    return GLMK_OK;
}

glmk_status glmk_check_matvec_q16(const float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                  const float *x_scales, const int32_t *x_sums, int64_t m) {
    if (m <= 0 || (m > 1 && y_stride < w->rows)) return GLMK_ERR_INVALID_ARGUMENT;
    return glmk_check_integer_activations(y, w, xq, x_scales, x_sums, 1); // Q8_0 too: 16-bit x meets its int8 weights
}

float glmk_q16_partial_block(const glmk_matrix *w, int64_t row, const int16_t *xq, const float *xs) {
    const int64_t whole = w->cols / GLMK_QK;
    if (whole * GLMK_QK == w->cols) return 0.0f; // no partial block (and no xs[whole] to read)
    float scale = 0.0f;
    int32_t dot = 0;
    for (int64_t k = whole * GLMK_QK; k < w->cols; k++) dot += glmk_weight_q(w, row, k, &scale) * xq[k];
    return scale * xs[whole] * (float)dot;
}

size_t glmk_q16_zero_points_bytes(const glmk_matrix *w, int64_t m) {
    return GLMK_WS_ROUND((size_t)(m * ((w->cols + GLMK_QK - 1) / GLMK_QK)) * sizeof(float));
}

float *glmk_q16_zero_points(glmk_arena *a, const glmk_matrix *w, const float *x_scales, const int32_t *x_sums, int64_t m) {
    const int64_t count = m * ((w->cols + GLMK_QK - 1) / GLMK_QK);
    float *corr = glmk_arena_take(a, (size_t)count * sizeof(float));
    if (corr)
        for (int64_t b = 0; b < count; b++) corr[b] = x_scales[b] * (float)x_sums[b];
    return corr;
}

glmk_status glmk_matvec_q16_rows_driver(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                        const float *x_scales, const float *corr, int64_t m, const float *bias,
                                        const void *prepared, size_t prepared_bytes, glmk_q16_rows eight,
                                        glmk_q16_rows one) {
    const int64_t blocks = (w->cols + GLMK_QK - 1) / GLMK_QK, groups = w->rows / 8;
    // Each group of 8 rows serves every token before the next group: the rows come
    // from memory once per call. A token's arithmetic does not depend on m or on
    // which thread runs its group, so each row of y equals the one-token call's.
#define Q16_TOKEN_ARGS(t) xq + (t) * w->cols, x_scales + (t) * blocks, corr + (t) * blocks, \
        prepared ? (const uint8_t *)prepared + (size_t)(t) * prepared_bytes : NULL
    GLMK_PARALLEL_FOR(g, 0, groups, m * w->rows * w->cols,
                      for (int64_t t = 0; t < m; t++) eight(w, g * 8, Q16_TOKEN_ARGS(t), y + t * y_stride + g * 8));
    for (int64_t n = groups * 8; n < w->rows; n++)
        for (int64_t t = 0; t < m; t++) one(w, n, Q16_TOKEN_ARGS(t), y + t * y_stride + n);
#undef Q16_TOKEN_ARGS
    if (bias)
        for (int64_t t = 0; t < m; t++)
            for (int64_t n = 0; n < w->rows; n++) y[t * y_stride + n] += bias[n];
    return GLMK_OK;
}

glmk_status glmk_matvec_q16_scalar(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                   const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                   glmk_workspace ws) {
    (void)ws;
    const glmk_status status = glmk_check_matvec_q16(y, y_stride, w, xq, x_scales, x_sums, m);
    if (status != GLMK_OK) return status;
    const int64_t blocks = (w->cols + GLMK_QK - 1) / GLMK_QK;
    for (int64_t t = 0; t < m; t++, y += y_stride, xq += w->cols, x_scales += blocks)
        for (int64_t n = 0; n < w->rows; n++) {
            double total = 0.0;
            for (int64_t b = 0; b * GLMK_QK < w->cols; b++) {
                const int64_t k0 = b * GLMK_QK, count = w->cols - k0 < GLMK_QK ? w->cols - k0 : GLMK_QK;
                int64_t dot = 0;
                float scale = 0.0f; // one weight scale per 32-block: a block's, a row's or a group's (32·j)
                for (int64_t i = 0; i < count; i++)
                    dot += (int64_t)glmk_weight_q(w, n, k0 + i, &scale) * xq[q16_position(w->type, k0 + i, w->cols)];
                total += (double)scale * (double)x_scales[b] * (double)dot;
            }
            y[n] = (float)total + (bias ? bias[n] : 0.0f);
        }
    return GLMK_OK;
}
