/*
 * matvec_q16_avx2.c — the 16-bit-activation mat-vec (matvec_q16.c: layout and
 * zero-point algebra) for AVX2. Each pair dot is vpmaddwd (16 int16 products
 * summed pairwise into 8 int32) twice and an add.
 *
 * The row loops are fully unrolled (the compiler leaves an 8-row q4_0 body rolled,
 * with its accumulators in memory, unless told). Eight rows per pass share every
 * activation load and scale broadcast (four streamed ~20% slower from DRAM: the
 * activations are as many bytes per row as INT4 weights); each block's integer
 * dot becomes float once (cvt + FMA with the block's scale).
 *
 * Several tokens (batched decode, one token of each of m sequences) take the
 * token functions below: the same arithmetic per row and token, so each
 * token's output is bit for bit its one-token product, with each block's
 * nibbles unpacked once for up to 4 tokens and the weights read from memory once.
 */
#include "internal.h"
#include "simd_avx2.h"

#if GLMK_X86

/// 8 int32 lanes of a0·b0 + a1·b1 over int16 pairs.
GLMK_AVX2_INLINE __m256i pair_dot(__m256i a0, __m256i b0, __m256i a1, __m256i b1) {
    return _mm256_add_epi32(_mm256_madd_epi16(a0, b0), _mm256_madd_epi16(a1, b1));
}

/// 16 bytes of nibbles as two vectors of 16 int16 lanes: lo = low nibbles,
/// hi = high nibbles, both as u = q + 8 (GLM's signed nibbles flipped with xor 8).
GLMK_AVX2_INLINE void nibbles(const uint8_t *p, int glm, __m256i *lo, __m256i *hi) {
    __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
    // Keep the widening first: otherwise the compiler splits the nibbles on bytes
    // and widens twice, 5 operations instead of 3.
    __asm__("" : "+x"(v));
    if (glm) v = _mm256_xor_si256(v, _mm256_set1_epi16(0x88));
    *lo = _mm256_and_si256(v, _mm256_set1_epi16(0x0F));
    *hi = _mm256_srli_epi16(v, 4);
}

/// An fp16 scale in all 8 lanes: a 16-bit broadcast and one vcvtph2ps (converting
/// the scalar first and broadcasting the float costs one operation more).
GLMK_AVX2_INLINE __m256 half8(uint16_t h) { return _mm256_cvtph_ps(_mm_set1_epi16((short)h)); }

/// GLM INT4 rows n0 .. n0 + R - 1 (q4_row: one group of `cols`; q4_group: groups of 32·j).
/// corr[b] = x_scale[b] · x_sum[b]: the zero-point term, the same for every row.
GLMK_AVX2_INLINE void rows_glm(int R, const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs,
                                 const float *corr, float *out) {
    const int64_t group = w->group, per_row = glmk_scales_per_row(w->type, w->cols, w->group);
    const int64_t whole = w->cols / GLMK_QK;
    const uint8_t *rows[8];
    __m256 total[8];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) { rows[r] = glmk_row_ptr(w, n0 + r); total[r] = _mm256_setzero_ps(); }
    for (int64_t g = 0; g * group < w->cols; g++) {
        const int64_t b0 = g * group / GLMK_QK, b_end = (g + 1) * group / GLMK_QK;
        const int64_t b1 = b_end < whole ? b_end : whole;
        __m256 acc[8];
        float zero_point = 0.0f;
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
        for (int64_t b = b0; b < b1; b++) {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + b * GLMK_QK));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(xq + b * GLMK_QK + 16));
            const __m256 scale = _mm256_broadcast_ss(xs + b);
            zero_point += corr[b];
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < R; r++) {
                __m256i lo, hi;
                nibbles(rows[r] + b * (GLMK_QK / 2), 1, &lo, &hi);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot(lo, x0, hi, x1)), scale, acc[r]);
            }
        }
        // the sum over 8 lanes must lose 8·corr per block: subtract corr from every lane
        const __m256 zp = _mm256_set1_ps(zero_point);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) {
            const __m256 s = _mm256_set1_ps(glmk_half(w->scales[(n0 + r) * per_row + g]));
            total[r] = _mm256_fmadd_ps(_mm256_sub_ps(acc[r], zp), s, total[r]);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) out[r] = glmk_hsum256(total[r]);
    if (w->cols % GLMK_QK) // a partial last block: out of line, after the registers are done with
        for (int r = 0; r < R; r++) out[r] += glmk_q16_partial_block(w, n0 + r, xq, xs);
}

/// Q4_0 rows: a weight scale per block.
GLMK_AVX2_INLINE void rows_q4_0(int R, const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs,
                                  const float *corr, float *out) {
    const glmk_block_q4_0 *rows[8];
    __m256 acc[8];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) { rows[r] = (const glmk_block_q4_0 *)glmk_row_ptr(w, n0 + r); acc[r] = _mm256_setzero_ps(); }
    for (int64_t b = 0; b < w->cols / GLMK_QK; b++) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + b * GLMK_QK));
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(xq + b * GLMK_QK + 16));
        const __m256 scale = _mm256_broadcast_ss(xs + b), zp = _mm256_broadcast_ss(corr + b);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) {
            __m256i lo, hi;
            nibbles(rows[r][b].qs, 0, &lo, &hi);
            const __m256 block = _mm256_fmsub_ps(_mm256_cvtepi32_ps(pair_dot(lo, x0, hi, x1)), scale, zp);
            acc[r] = _mm256_fmadd_ps(block, half8(rows[r][b].d), acc[r]);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) out[r] = glmk_hsum256(acc[r]);
}

/// Q8_0 rows: signed weights, a scale per block, no zero point.
GLMK_AVX2_INLINE void rows_q8_0(int R, const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs,
                                  float *out) {
    const glmk_block_q8_0 *rows[8];
    __m256 acc[8];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) { rows[r] = (const glmk_block_q8_0 *)glmk_row_ptr(w, n0 + r); acc[r] = _mm256_setzero_ps(); }
    for (int64_t b = 0; b < w->cols / GLMK_QK; b++) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + b * GLMK_QK));
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(xq + b * GLMK_QK + 16));
        const __m256 scale = _mm256_broadcast_ss(xs + b);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) {
            const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)rows[r][b].qs));
            const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(rows[r][b].qs + 16)));
            const __m256 block = _mm256_mul_ps(_mm256_cvtepi32_ps(pair_dot(w0, x0, w1, x1)), scale);
            acc[r] = _mm256_fmadd_ps(block, half8(rows[r][b].d), acc[r]);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) out[r] = glmk_hsum256(acc[r]);
}

/// R rows of any supported type; R is a literal at each call so the row loops unroll.
GLMK_AVX2_INLINE void rows(int R, const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs,
                             const float *corr, float *out) {
    switch (w->type) {
    case GLMK_TYPE_Q4_0: rows_q4_0(R, w, n0, xq, xs, corr, out); break;
    case GLMK_TYPE_Q8_0: rows_q8_0(R, w, n0, xq, xs, out); break;
    default: rows_glm(R, w, n0, xq, xs, corr, out); break;
    }
}

// The row functions glmk_matvec_q16_rows_driver (matvec_q16.c) calls through pointers, so
// one outer loop serves every instruction set.
__attribute__((target("avx2,fma,f16c"), noinline)) static void eight_rows(const glmk_matrix *w, int64_t n0,
        const int16_t *xq, const float *xs, const float *corr, const void *prepared, float *out) {
    (void)prepared;
    rows(8, w, n0, xq, xs, corr, out);
}

__attribute__((target("avx2,fma,f16c"), noinline)) static void one_row(const glmk_matrix *w, int64_t n0,
        const int16_t *xq, const float *xs, const float *corr, const void *prepared, float *out) {
    (void)prepared;
    rows(1, w, n0, xq, xs, corr, out);
}

// MARK: - Several tokens per pass (batched decode)
//
// The same arithmetic per (row, token) as the row functions above, in the same
// order, so each token's result is bit for bit the one-token call's; but each
// block's nibbles are unpacked once for up to 4 tokens, and a pair of rows
// stays in L1 while every token passes, so the weights come from memory once.

/// Up to 4 tokens' activations, scales and zero-point terms.
typedef struct {
    const int16_t *xq[4];
    const float *xs[4], *corr[4];
} token_inputs;

/// GLM INT4 rows n0, n0 + R - 1 for T tokens: rows_glm per token.
GLMK_AVX2_INLINE void tokens_glm(int R, int T, const glmk_matrix *w, int64_t n0, const token_inputs *in, float *const out[4]) {
    const int64_t group = w->group, per_row = glmk_scales_per_row(w->type, w->cols, w->group);
    const int64_t whole = w->cols / GLMK_QK;
    const uint8_t *rows[2];
    __m256 total[2][4];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) {
        rows[r] = glmk_row_ptr(w, n0 + r);
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < T; t++) total[r][t] = _mm256_setzero_ps();
    }
    for (int64_t g = 0; g * group < w->cols; g++) {
        const int64_t b0 = g * group / GLMK_QK, b_end = (g + 1) * group / GLMK_QK;
        const int64_t b1 = b_end < whole ? b_end : whole;
        __m256 acc[2][4];
        float zero_point[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++)
            _Pragma("clang loop unroll(full)")
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
        for (int64_t b = b0; b < b1; b++) {
            __m256i lo[2], hi[2];
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < R; r++) nibbles(rows[r] + b * (GLMK_QK / 2), 1, &lo[r], &hi[r]);
            _Pragma("clang loop unroll(full)")
            for (int t = 0; t < T; t++) {
                const __m256i x0 = _mm256_loadu_si256((const __m256i *)(in->xq[t] + b * GLMK_QK));
                const __m256i x1 = _mm256_loadu_si256((const __m256i *)(in->xq[t] + b * GLMK_QK + 16));
                const __m256 scale = _mm256_broadcast_ss(in->xs[t] + b);
                zero_point[t] += in->corr[t][b];
                _Pragma("clang loop unroll(full)")
                for (int r = 0; r < R; r++)
                    acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot(lo[r], x0, hi[r], x1)), scale, acc[r][t]);
            }
        }
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < T; t++) {
            const __m256 zp = _mm256_set1_ps(zero_point[t]);
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < R; r++) {
                const __m256 s = _mm256_set1_ps(glmk_half(w->scales[(n0 + r) * per_row + g]));
                total[r][t] = _mm256_fmadd_ps(_mm256_sub_ps(acc[r][t], zp), s, total[r][t]);
            }
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int t = 0; t < T; t++)
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) out[t][r] = glmk_hsum256(total[r][t]);
    if (w->cols % GLMK_QK)
        for (int t = 0; t < T; t++)
            for (int r = 0; r < R; r++) out[t][r] += glmk_q16_partial_block(w, n0 + r, in->xq[t], in->xs[t]);
}

/// Q4_0 rows for T tokens: rows_q4_0 per token.
GLMK_AVX2_INLINE void tokens_q4_0(int R, int T, const glmk_matrix *w, int64_t n0, const token_inputs *in, float *const out[4]) {
    const glmk_block_q4_0 *rows[2];
    __m256 acc[2][4];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) {
        rows[r] = (const glmk_block_q4_0 *)glmk_row_ptr(w, n0 + r);
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < w->cols / GLMK_QK; b++) {
        __m256i lo[2], hi[2];
        __m256 d[2];
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) {
            nibbles(rows[r][b].qs, 0, &lo[r], &hi[r]);
            d[r] = half8(rows[r][b].d);
        }
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < T; t++) {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(in->xq[t] + b * GLMK_QK));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(in->xq[t] + b * GLMK_QK + 16));
            const __m256 scale = _mm256_broadcast_ss(in->xs[t] + b), zp = _mm256_broadcast_ss(in->corr[t] + b);
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < R; r++) {
                const __m256 block = _mm256_fmsub_ps(_mm256_cvtepi32_ps(pair_dot(lo[r], x0, hi[r], x1)), scale, zp);
                acc[r][t] = _mm256_fmadd_ps(block, d[r], acc[r][t]);
            }
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int t = 0; t < T; t++)
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) out[t][r] = glmk_hsum256(acc[r][t]);
}

/// Q8_0 rows for T tokens: rows_q8_0 per token.
GLMK_AVX2_INLINE void tokens_q8_0(int R, int T, const glmk_matrix *w, int64_t n0, const token_inputs *in, float *const out[4]) {
    const glmk_block_q8_0 *rows[2];
    __m256 acc[2][4];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < R; r++) {
        rows[r] = (const glmk_block_q8_0 *)glmk_row_ptr(w, n0 + r);
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < w->cols / GLMK_QK; b++) {
        __m256i w0[2], w1[2];
        __m256 d[2];
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) {
            w0[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)rows[r][b].qs));
            w1[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(rows[r][b].qs + 16)));
            d[r] = half8(rows[r][b].d);
        }
        _Pragma("clang loop unroll(full)")
        for (int t = 0; t < T; t++) {
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(in->xq[t] + b * GLMK_QK));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(in->xq[t] + b * GLMK_QK + 16));
            const __m256 scale = _mm256_broadcast_ss(in->xs[t] + b);
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < R; r++) {
                const __m256 block = _mm256_mul_ps(_mm256_cvtepi32_ps(pair_dot(w0[r], x0, w1[r], x1)), scale);
                acc[r][t] = _mm256_fmadd_ps(block, d[r], acc[r][t]);
            }
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int t = 0; t < T; t++)
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) out[t][r] = glmk_hsum256(acc[r][t]);
}

GLMK_AVX2_INLINE void tokens(int R, int T, const glmk_matrix *w, int64_t n0, const token_inputs *in, float *const out[4]) {
    switch (w->type) {
    case GLMK_TYPE_Q4_0: tokens_q4_0(R, T, w, n0, in, out); break;
    case GLMK_TYPE_Q8_0: tokens_q8_0(R, T, w, n0, in, out); break;
    default: tokens_glm(R, T, w, n0, in, out); break;
    }
}

/// R rows (1 or 2) for T tokens (1 to 4), each combination its own unrolled body.
__attribute__((target("avx2,fma,f16c"), noinline)) static void token_pass(int R, int T, const glmk_matrix *w, int64_t n0,
                                                                          const token_inputs *in, float *const out[4]) {
#define TOKEN_CASE(r, t) case (r) * 8 + (t): tokens(r, t, w, n0, in, out); break;
    switch (R * 8 + T) {
        TOKEN_CASE(1, 1) TOKEN_CASE(1, 2) TOKEN_CASE(1, 3) TOKEN_CASE(1, 4)
        TOKEN_CASE(2, 1) TOKEN_CASE(2, 2) TOKEN_CASE(2, 3) TOKEN_CASE(2, 4)
    default: break;
    }
#undef TOKEN_CASE
}

/// m > 1 tokens: pairs of rows in parallel, each pair serving the tokens 4 at a time.
static void batched_tokens(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq, const float *x_scales,
                           const float *corr, int64_t m) {
    const int64_t blocks = (w->cols + GLMK_QK - 1) / GLMK_QK, pairs = (w->rows + 1) / 2;
    GLMK_PARALLEL_FOR(p, 0, pairs, m * w->rows * w->cols, {
        const int64_t n0 = p * 2;
        const int R = w->rows - n0 >= 2 ? 2 : 1;
        for (int64_t t0 = 0; t0 < m; t0 += 4) {
            const int T = m - t0 >= 4 ? 4 : (int)(m - t0);
            token_inputs in;
            float *out[4];
            for (int t = 0; t < T; t++) {
                in.xq[t] = xq + (t0 + t) * w->cols;
                in.xs[t] = x_scales + (t0 + t) * blocks;
                in.corr[t] = corr + (t0 + t) * blocks;
                out[t] = y + (t0 + t) * y_stride + n0;
            }
            token_pass(R, T, w, n0, &in, out);
        }
    });
}

glmk_status glmk_matvec_q16_avx2(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                 const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                 glmk_workspace ws) {
    const glmk_status status = glmk_check_matvec_q16(y, y_stride, w, xq, x_scales, x_sums, m);
    if (status != GLMK_OK) return status;
    glmk_arena arena = glmk_arena_of(ws);
    const float *corr = glmk_q16_zero_points(&arena, w, x_scales, x_sums, m);
    if (!corr) return GLMK_ERR_INVALID_ARGUMENT; // the workspace is smaller than glmk_workspace_bytes says
    if (m == 1) return glmk_matvec_q16_rows_driver(y, y_stride, w, xq, x_scales, corr, m, bias, NULL, 0, eight_rows, one_row);
    batched_tokens(y, y_stride, w, xq, x_scales, corr, m);
    if (bias)
        for (int64_t t = 0; t < m; t++)
            for (int64_t n = 0; n < w->rows; n++) y[t * y_stride + n] += bias[n];
    return GLMK_OK;
}


#endif
