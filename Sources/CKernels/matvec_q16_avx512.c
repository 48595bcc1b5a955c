/*
 * matvec_q16_avx512.c — the 16-bit-activation decode mat-vec (matvec_q16.c)
 * for INT4 (GLM's q4_row and q4_group, GGUF's Q4_0) on CPUs with AVX-512
 * F/BW/VL/VNNI.
 *
 * Why: the AVX2 kernel widens every nibble to int16 for vpmaddwd, and that
 * costs more instructions per weight than the memory delivers weights on one
 * core. Here each activation q is split once per call into bytes,
 * q = 256 h + l with h = q >> 8 signed and l = q & 255 unsigned, and vpdpbusd
 * (unsigned x signed bytes, 4 per int32 lane) takes the weight nibbles
 * u = q_w + 8 (0..15, valid as either operand) directly: sum(u q) =
 * 256 sum(u h) + sum(l u), the first with h as the signed operand, the second
 * with l as the unsigned one; the zero point is matvec_q16.c's. Per 64 bytes
 * of weights (128 values, four 32-blocks): one load, an xor, two ands, a
 * shift, four vpdpbusd, a shift, a convert and an FMA on 512-bit registers,
 * where widening to int16 took twice the registers and ~40% more
 * instructions. Each 128-bit lane of the int32 sums holds one block, so one
 * FMA with a per-lane scale vector applies the four blocks' activation
 * scales. Exact in int32: a lane sums 8 products u h (15 x 128) times 256,
 * plus 8 of l u (255 x 15).
 *
 * Measured with bench/experiments/decode_cache_vs_dram.c (q4_row, one core):
 * 1.6x the AVX2 kernel on a cache-resident matrix (29.7 against 18.5 GB/s),
 * 1.3x from DRAM (18.1 against 13.8): see docs/performance.md for what holds
 * one core below the read bandwidth. The previous 512-bit kernel (int16
 * widening on zmm) measured ~1.1-1.3x the AVX2 one in cache.
 *
 * Q4_0 (blocks of an fp16 scale and 16 bytes of nibbles, 18 bytes each) takes
 * the same four vpdpbusd per four blocks: four 16-byte loads place the blocks'
 * nibbles in the four lanes, one word permute of the 72 bytes spreads the four
 * scales to their lanes, and per lane (dot s_x - zero) d is an FMS and an FMA,
 * with the zero-point terms 8 s_x sum(x) / 4 per lane made once per call.
 * Groups of exactly 128 take the same per-lane form with the group's scale
 * broadcast; it saves the per-group sums of the general group loop. One core,
 * bench/experiments/decode_cache_vs_dram: Q4_0 23 against 16.5 GB/s for AVX2
 * in cache, 16.5 against 13.5 from DRAM; groups of 128 27-28 against 16 in
 * cache (24 with the general group loop).
 *
 * Layout of the split activations, per four blocks ("quad"): h of the four
 * blocks' first halves (the low-nibble columns, matvec_q16.c's order) as 64
 * bytes, h of their second halves, then l likewise (256 bytes), and 16
 * floats each of lane scales and lane zero points. Whole quads cover q4_row,
 * Q4_0 and q4_group with groups of 128·j; the last 1-3 whole blocks take the
 * int16 path (lone_block), a partial last block the scalar one. The AVX2
 * kernel serves the rest: groups of 32 or 64 (a scale per one or two blocks
 * would split a quad) and Q8_0 (signed weight bytes would need an offset and
 * a second zero point here; the AVX2 kernel's 2-thread figures meet the target).
 */
#include "internal.h"
#include "simd_avx2.h"

#if GLMK_X86

#define Z_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define Z_INLINE static inline __attribute__((always_inline, target(Z_TARGET)))

enum { QUAD = 4 * GLMK_QK, QUAD_BYTES = 256, QUAD_LANES = 16 };

/// The activations as bytes, per quad of blocks (see the header).
typedef struct {
    uint8_t *bytes;     // quads x 256: h (signed) then l (unsigned)
    float *lane_scales; // quads x 16: block j's scale in lanes 4j .. 4j + 3
    float *lane_zeros;  // quads x 16: block j's zero-point term 8 s_x sum(x) / 4 in lanes 4j .. 4j + 3
} split_activations;

/// Bytes of one token's split activations (the three arrays, each 64-byte aligned).
static size_t split_activations_bytes(int64_t quads) {
    return GLMK_WS_ROUND((size_t)(quads * QUAD_BYTES)) + 2 * GLMK_WS_ROUND((size_t)(quads * QUAD_LANES) * sizeof(float));
}

/// Splits one token's activations into `s`, its arrays taken from the arena.
static glmk_status split_activations_make(split_activations *s, glmk_arena *arena, const int16_t *xq, const float *xs,
                                          const int32_t *sums, int64_t quads) {
    const size_t lane_bytes = (size_t)(quads * QUAD_LANES) * sizeof(float);
    s->bytes = glmk_arena_take(arena, (size_t)(quads * QUAD_BYTES));
    s->lane_scales = glmk_arena_take(arena, lane_bytes);
    s->lane_zeros = glmk_arena_take(arena, lane_bytes);
    if (!s->bytes || !s->lane_scales || !s->lane_zeros) return GLMK_ERR_INVALID_ARGUMENT; // a short workspace
    for (int64_t p = 0; p < quads; p++) {
        uint8_t *out = s->bytes + p * QUAD_BYTES;
        for (int half = 0; half < 2; half++)
            for (int b = 0; b < 4; b++)
                for (int j = 0; j < 16; j++) {
                    const int q = xq[p * QUAD + b * GLMK_QK + 16 * half + j];
                    out[half * 64 + b * 16 + j] = (uint8_t)(int8_t)(q >> 8); // floor(q / 256), in [-128, 127]
                    out[128 + half * 64 + b * 16 + j] = (uint8_t)(q & 0xFF);
                }
        for (int j = 0; j < QUAD_LANES; j++) {
            const int64_t block = p * 4 + j / 4;
            s->lane_scales[p * QUAD_LANES + j] = xs[block];
            s->lane_zeros[p * QUAD_LANES + j] = 2.0f * (xs[block] * (float)sums[block]); // 2 = 8 / 4 lanes
        }
    }
    return GLMK_OK;
}

/// One block on 256-bit registers from the int16 activations (the last 1-3
/// whole blocks after the quads): sum(u x) in 8 lanes as floats. `glm`: GLM's
/// two's-complement nibbles (flipped to u = q + 8), else Q4_0's (already u).
Z_INLINE __m256 lone_block(const uint8_t *nibble_bytes, const int16_t *x, int glm) {
    __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)nibble_bytes));
    if (glm) v = _mm256_xor_si256(v, _mm256_set1_epi16(0x88));
    const __m256i lo = _mm256_and_si256(v, _mm256_set1_epi16(0x0F)), hi = _mm256_srli_epi16(v, 4);
    const __m256i d = _mm256_dpwssd_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)x)), hi,
                                          _mm256_loadu_si256((const __m256i *)(x + 16)));
    return _mm256_cvtepi32_ps(d);
}

/// One quad of split activations in registers: h_lo, h_hi, l_lo, l_hi, and the
/// lane scales and zero points.
typedef struct {
    __m512i x[4];
    __m512 scale, zero;
} quad_activations;

Z_INLINE quad_activations load_quad(const split_activations *split, int64_t quad) {
    quad_activations a;
    for (int i = 0; i < 4; i++) a.x[i] = _mm512_load_si512(split->bytes + quad * QUAD_BYTES + 64 * i);
    a.scale = _mm512_load_ps(split->lane_scales + quad * QUAD_LANES);
    a.zero = _mm512_load_ps(split->lane_zeros + quad * QUAD_LANES);
    return a;
}

/// The int32 dot sum(u q) of 4 blocks against one quad of split activations
/// (x: h_lo, h_hi, l_lo, l_hi), the nibble bytes v holding block j in lane j.
Z_INLINE __m512i quad_dots(__m512i v, const __m512i x[4]) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i u_lo = _mm512_and_si512(v, low4), u_hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
    __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u_lo, x[0]);
    d = _mm512_dpbusd_epi32(d, u_hi, x[1]);
    d = _mm512_dpbusd_epi32(_mm512_slli_epi32(d, 8), x[2], u_lo);
    return _mm512_dpbusd_epi32(d, x[3], u_hi);
}

/// acc + (dot s_x - zero) d per lane: a quad of blocks whose weight scales d
/// differ per block (Q4_0) or need no per-group sums (groups of 128).
Z_INLINE __m512 add_scaled_quad(__m512 acc, __m512i v, const quad_activations *a, __m512 d) {
    return _mm512_fmadd_ps(_mm512_fmsub_ps(_mm512_cvtepi32_ps(quad_dots(v, a->x)), a->scale, a->zero), d, acc);
}

/// GLM INT4 rows (q4_row; q4_group with groups of 128·j): as rows_glm in matvec_q16_avx2.c.
Z_INLINE void z_rows_glm(int R, const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs,
                         const float *corr, const split_activations *split, float *out) {
    const int64_t group = w->group, per_row = glmk_scales_per_row(w->type, w->cols, w->group);
    const int64_t whole = w->cols / GLMK_QK;
    const __m512i flip = _mm512_set1_epi8((char)0x88);
    const uint8_t *rows[8];
    __m512 total[8];
    for (int r = 0; r < R; r++) { rows[r] = glmk_row_ptr(w, n0 + r); total[r] = _mm512_setzero_ps(); }
    int64_t g = 0;
    if (group == QUAD) // a scale per quad: as Q4_0 (lane zero points), not a group's sums per quad
        for (; g < whole / 4; g++) {
            const quad_activations a = load_quad(split, g);
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < R; r++) {
                const __m512i v = _mm512_xor_si512(_mm512_loadu_si512(rows[r] + g * (QUAD / 2)), flip);
                const __m512 s = _mm512_cvtph_ps(_mm256_set1_epi16((short)w->scales[(n0 + r) * per_row + g]));
                total[r] = add_scaled_quad(total[r], v, &a, s);
            }
        }
    for (; g * group < w->cols; g++) {
        const int64_t b0 = g * group / GLMK_QK, b_end = (g + 1) * group / GLMK_QK;
        const int64_t b1 = b_end < whole ? b_end : whole;
        __m512 acc[8];
        float zero_point = 0.0f;
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        int64_t b = b0;
        for (; b + 4 <= b1; b += 4) {
            zero_point += corr[b] + corr[b + 1] + corr[b + 2] + corr[b + 3];
            const quad_activations a = load_quad(split, b / 4);
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < R; r++) {
                const __m512i v = _mm512_xor_si512(_mm512_loadu_si512(rows[r] + b * (GLMK_QK / 2)), flip);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(quad_dots(v, a.x)), a.scale, acc[r]);
            }
        }
        for (; b < b1; b++) { // q4_row's last 1-3 whole blocks
            zero_point += corr[b];
            for (int r = 0; r < R; r++)
                acc[r] = _mm512_fmadd_ps(_mm512_zextps256_ps512(lone_block(rows[r] + b * (GLMK_QK / 2), xq + b * GLMK_QK, 1)),
                                         _mm512_set1_ps(xs[b]), acc[r]);
        }
        // the lane sum must lose 8·zero_point: zero_point / 2 from each of 16 lanes
        const __m512 zp = _mm512_set1_ps(zero_point * 0.5f);
        for (int r = 0; r < R; r++) {
            const __m512 s = _mm512_set1_ps(glmk_half(w->scales[(n0 + r) * per_row + g]));
            total[r] = _mm512_fmadd_ps(_mm512_sub_ps(acc[r], zp), s, total[r]);
        }
    }
    for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(total[r]);
    if (w->cols % GLMK_QK) // a partial last block: out of line, after the registers are done with
        for (int r = 0; r < R; r++) out[r] += glmk_q16_partial_block(w, n0 + r, xq, xs);
}

/// For a Q4_0 quad (72 bytes: 4 x (fp16 scale, 16 bytes of nibbles)): the word
/// of its first 64 bytes that lane i needs, block i / 4's scale at word 9 (i / 4).
static const uint16_t q4_0_scale_words[32] __attribute__((aligned(64))) = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};

/// Q4_0 rows: four blocks per step as in z_rows_glm, the nibbles gathered from
/// their 18-byte blocks with four 16-byte loads, the four fp16 block scales
/// spread to their lanes with one word permute. Per block and lane,
/// (dot s_x - 8 s_x sum(x) / 4) d: an FMS and an FMA.
Z_INLINE void z_rows_q4_0(int R, const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs,
                          const float *corr, const split_activations *split, float *out) {
    const int64_t blocks = w->cols / GLMK_QK, quads = blocks / 4;
    const __m512i scale_words = _mm512_load_si512(q4_0_scale_words);
    const glmk_block_q4_0 *rows[8];
    __m512 acc[8];
    for (int r = 0; r < R; r++) { rows[r] = (const glmk_block_q4_0 *)glmk_row_ptr(w, n0 + r); acc[r] = _mm512_setzero_ps(); }
    for (int64_t p = 0; p < quads; p++) {
        const quad_activations a = load_quad(split, p);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < R; r++) {
            const glmk_block_q4_0 *q = rows[r] + 4 * p;
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q[0].qs));
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)q[1].qs), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)q[2].qs), 2);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)q[3].qs), 3);
            const __m512i words = _mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(q));
            const __m512 d = _mm512_cvtph_ps(_mm512_castsi512_si256(words));
            acc[r] = add_scaled_quad(acc[r], v, &a, d);
        }
    }
    for (int64_t b = quads * 4; b < blocks; b++) // the last 1-3 blocks
        for (int r = 0; r < R; r++) {
            const __m256 block = _mm256_fmsub_ps(lone_block(rows[r][b].qs, xq + b * GLMK_QK, 0), _mm256_set1_ps(xs[b]),
                                                 _mm256_set1_ps(corr[b]));
            acc[r] = _mm512_fmadd_ps(_mm512_zextps256_ps512(block), _mm512_set1_ps(glmk_half(rows[r][b].d)), acc[r]);
        }
    for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

Z_INLINE void z_rows(int R, const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs, const float *corr,
                     const split_activations *split, float *out) {
    if (w->type == GLMK_TYPE_Q4_0) z_rows_q4_0(R, w, n0, xq, xs, corr, split, out);
    else z_rows_glm(R, w, n0, xq, xs, corr, split, out);
}

// Called through pointers by glmk_matvec_q16_rows_driver (matvec_q16.c).
__attribute__((target(Z_TARGET), noinline)) static void z_eight_rows(const glmk_matrix *w, int64_t n0, const int16_t *xq,
                                                                     const float *xs, const float *corr,
                                                                     const void *prepared, float *out) {
    z_rows(8, w, n0, xq, xs, corr, prepared, out);
}

__attribute__((target(Z_TARGET), noinline)) static void z_one_row(const glmk_matrix *w, int64_t n0, const int16_t *xq,
                                                                  const float *xs, const float *corr,
                                                                  const void *prepared, float *out) {
    z_rows(1, w, n0, xq, xs, corr, prepared, out);
}

static int quads_fit(const glmk_matrix *w) {
    return w->type == GLMK_TYPE_Q4_ROW || w->type == GLMK_TYPE_Q4_0 || (w->type == GLMK_TYPE_Q4_GROUP && w->group % QUAD == 0);
}

size_t glmk_matvec_q16_avx512_workspace(const glmk_matrix *w, int64_t m) {
    size_t bytes = glmk_q16_zero_points_bytes(w, m);
    if (quads_fit(w))
        bytes += GLMK_WS_ROUND((size_t)m * sizeof(split_activations)) + (size_t)m * split_activations_bytes((w->cols / GLMK_QK) / 4);
    return bytes;
}

glmk_status glmk_matvec_q16_avx512(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                   const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                   glmk_workspace ws) {
    const glmk_status status = glmk_check_matvec_q16(y, y_stride, w, xq, x_scales, x_sums, m);
    if (status != GLMK_OK) return status;
    if (!quads_fit(w)) return glmk_matvec_q16_avx2(y, y_stride, w, xq, x_scales, x_sums, m, bias, ws);
    glmk_arena arena = glmk_arena_of(ws);
    const float *corr = glmk_q16_zero_points(&arena, w, x_scales, x_sums, m);
    split_activations *split = glmk_arena_take(&arena, (size_t)m * sizeof(split_activations));
    if (!corr || !split) return GLMK_ERR_INVALID_ARGUMENT; // the workspace is smaller than glmk_workspace_bytes says
    const int64_t blocks = (w->cols + GLMK_QK - 1) / GLMK_QK, quads = (w->cols / GLMK_QK) / 4;
    for (int64_t t = 0; t < m; t++) {
        const glmk_status made = split_activations_make(&split[t], &arena, xq + t * w->cols, x_scales + t * blocks,
                                                        x_sums + t * blocks, quads);
        if (made != GLMK_OK) return made;
    }
    return glmk_matvec_q16_rows_driver(y, y_stride, w, xq, x_scales, corr, m, bias, split,
                                       sizeof(split_activations), z_eight_rows, z_one_row);
}

#endif
