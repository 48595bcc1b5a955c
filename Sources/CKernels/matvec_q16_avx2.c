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

glmk_status glmk_matvec_q16_avx2(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                 const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                 glmk_workspace ws) {
    const glmk_status status = glmk_check_matvec_q16(y, y_stride, w, xq, x_scales, x_sums, m);
    if (status != GLMK_OK) return status;
    glmk_arena arena = glmk_arena_of(ws);
    const float *corr = glmk_q16_zero_points(&arena, w, x_scales, x_sums, m);
    if (!corr) return GLMK_ERR_INVALID_ARGUMENT; // the workspace is smaller than glmk_workspace_bytes says
    return glmk_matvec_q16_rows_driver(y, y_stride, w, xq, x_scales, corr, m, bias, NULL, 0, eight_rows, one_row);
}


#endif
