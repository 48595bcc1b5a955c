/*
 * matmul_q8.c — INT4 mat-mat (prefill) with activations quantized to 8 bits per
 * 32-block (glmk_quantize_activations, one row per token) and integer dot
 * products: Y[t, n] = sum_b s_w(n, b) s_x(t, b) sum_{k in b} q_w(n, k) q_x(t, k).
 *
 * The fast kernel needs AVX-512 VNNI (vpdpbusd: 64 multiply-accumulates in one
 * 512-bit instruction, and 32 vector registers). With AVX2 alone an int8 dot
 * costs vpmaddubsw + vpmaddwd + vpaddd, and with a float
 * step per 32-block for the activation scales that is no faster than the FP32
 * GEMM, so there the kernel reports UNSUPPORTED and the runtime keeps FP32.
 *
 * Layout: per 16-row weight panel and K-block, weights become bytes u = q + 8
 * as (k/4, 16 rows, 4): one 64-byte load is 16 rows x 4 columns, vpdpbusd's
 * unsigned operand. Each token's 4 bytes of x are broadcast as the signed
 * operand. A 6-token x 16-row tile keeps 6 int32 accumulators for the current
 * block and 12 float ones; per block the int32 sums lose the zero point (8 x the
 * block's activation sum), become float and take the activation scale; the
 * weight scale applies once per run of blocks that share it (q8_tile_kernel).
 * The 256-bit form of this tile would need 36 registers; the 512-bit one needs
 * 18 and half the instructions (Zen 4 runs both at the same vpdpbusd rate).
 *
 * Loop order: threads split the 16-row panels; per panel, over K-blocks of 512,
 * the weights are unpacked once (8 KB, in L1) and every 6-token tile of X runs
 * over them. X is packed once per call with each K-block's tiles contiguous, so a
 * panel pass reads one stream. The panel's outputs build up in a contiguous
 * m x 16 buffer and reach Y once: Y's rows are a page or more apart at GLM-130B's
 * widths, and updating them in place every K-block cost ~20% (TLB walks, misses).
 */
#include "internal.h"
#include "simd_avx2.h"
#include <stdlib.h>

glmk_status glmk_check_matmul_q8(const float *y, int64_t y_stride, const glmk_matrix *w, const int8_t *xq,
                                 const float *x_scales, const int32_t *x_sums, int64_t m) {
    if (m <= 0 || y_stride < w->rows) return GLMK_ERR_INVALID_ARGUMENT;
    return glmk_check_matvec_q8(y, w, xq, x_scales, x_sums);
}

/// The reference: the 8-bit-activation mat-vec, token by token.
glmk_status glmk_matmul_q8_scalar(float *y, int64_t y_stride, const glmk_matrix *w, const int8_t *xq,
                                  const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                  glmk_workspace ws) {
    (void)ws;
    const glmk_status status = glmk_check_matmul_q8(y, y_stride, w, xq, x_scales, x_sums, m);
    if (status != GLMK_OK) return status;
    const int64_t blocks = (w->cols + GLMK_QK - 1) / GLMK_QK;
    for (int64_t t = 0; t < m; t++) {
        const glmk_status s = glmk_matvec_q8_scalar(y + t * y_stride, w, xq + t * w->cols, x_scales + t * blocks,
                                                    x_sums + t * blocks, bias);
        if (s != GLMK_OK) return s;
    }
    return GLMK_OK;
}

int glmk_matmul_q8_fast_available(void) {
    return glmk_isa_supported(GLMK_ISA_AVX512); // 0 where the build is not x86
}

#if GLMK_X86

#define GLMK_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))
#define GLMK_VNNI_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))

enum { Q8_MR = 6, Q8_NR = 16, Q8_KC = 512, Q8_BLOCKS = Q8_KC / GLMK_QK };


/// Row `row`'s weights k0 .. k0 + kc - 1 as bytes u = q + 8 (columns past the
/// matrix: 8, a zero weight), 32 at a time from 16 bytes of nibbles.
GLMK_AVX2 static void unpack_row_u8(uint8_t *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t kc) {
    const uint8_t *r = glmk_row_ptr(w, row);
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    int64_t k = 0;
    for (; k + GLMK_QK <= kc && k0 + k + GLMK_QK <= w->cols; k += GLMK_QK) {
        __m128i first, second;
        if (w->type == GLMK_TYPE_Q4_0) {
            const __m128i bytes = _mm_loadu_si128((const __m128i *)((const glmk_block_q4_0 *)r)[(k0 + k) / GLMK_QK].qs);
            first = _mm_and_si128(bytes, mask);                       // elements 0..15
            second = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);   // elements 16..31
        } else {
            glmk_q4_unpack32(r + (k0 + k) / 2, &first, &second); // q in column order; + 8 folds into its sign extension
            first = _mm_add_epi8(first, eight);
            second = _mm_add_epi8(second, eight);
        }
        _mm_storeu_si128((__m128i *)(out + k), first);
        _mm_storeu_si128((__m128i *)(out + k + 16), second);
    }
    for (; k < kc; k++) {
        float scale;
        out[k] = (uint8_t)(k0 + k < w->cols ? glmk_weight_q(w, row, k0 + k, &scale) + 8 : 8);
    }
}

/// out[g][r] = in[r][g] for 4 x 4 four-byte groups: rows of `in` are `in_stride`
/// bytes apart, rows of `out` 64 bytes (16 four-byte groups).
GLMK_AVX2_INLINE void transpose_groups4x4(uint8_t *out, const uint8_t *in, int64_t in_stride) {
    const __m128i r0 = _mm_loadu_si128((const __m128i *)in), r1 = _mm_loadu_si128((const __m128i *)(in + in_stride));
    const __m128i r2 = _mm_loadu_si128((const __m128i *)(in + 2 * in_stride));
    const __m128i r3 = _mm_loadu_si128((const __m128i *)(in + 3 * in_stride));
    const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpackhi_epi32(r0, r1);
    const __m128i t2 = _mm_unpacklo_epi32(r2, r3), t3 = _mm_unpackhi_epi32(r2, r3);
    _mm_storeu_si128((__m128i *)out, _mm_unpacklo_epi64(t0, t2));
    _mm_storeu_si128((__m128i *)(out + 64), _mm_unpackhi_epi64(t0, t2));
    _mm_storeu_si128((__m128i *)(out + 128), _mm_unpacklo_epi64(t1, t3));
    _mm_storeu_si128((__m128i *)(out + 192), _mm_unpackhi_epi64(t1, t3));
}

/// Panel rows n0 .. n0 + 15 (rows past the matrix are zero), columns k0 .. k0 + kc:
/// bytes (kc/4, 16, 4) and scales (kc/32, 16).
GLMK_AVX2 static void pack_panel(uint8_t *bytes, float *scales, const glmk_matrix *w, int64_t n0, int64_t k0, int64_t kc) {
    uint8_t row_bytes[Q8_NR][Q8_KC] __attribute__((aligned(32)));
    const int64_t per_row = glmk_scales_per_row(w->type, w->cols, w->group);
    for (int64_t j = 0; j < Q8_NR; j++) {
        const int64_t row = n0 + j;
        if (row < w->rows) unpack_row_u8(row_bytes[j], w, row, k0, kc);
        else memset(row_bytes[j], 8, (size_t)kc);
        for (int64_t b = 0; b * GLMK_QK < kc; b++) {
            const int64_t col = k0 + b * GLMK_QK;
            float scale = 0.0f;
            if (row < w->rows && col < w->cols)
                scale = w->type == GLMK_TYPE_Q4_0 ? glmk_half(((const glmk_block_q4_0 *)glmk_row_ptr(w, row))[col / GLMK_QK].d)
                                                  : glmk_half(w->scales[row * per_row + col / w->group]);
            scales[b * Q8_NR + j] = scale;
        }
    }
    // 4-byte groups to their (k/4, row) slots, 4 rows x 4 groups at a time (kc is a multiple of 32)
    for (int64_t j = 0; j < Q8_NR; j += 4)
        for (int64_t k4 = 0; k4 < kc / 4; k4 += 4) transpose_groups4x4(bytes + (k4 * Q8_NR + j) * 4, &row_bytes[j][k4 * 4], Q8_KC);
}

/// The int32 dot products of block b (32 columns) for the tile's mr tokens x 16 rows:
/// one 64-byte load is the 16 rows' 4 columns, vpdpbusd's unsigned operand.
GLMK_VNNI_INLINE void q8_block_dots(int mr, int64_t b, const int32_t *xp, const uint8_t *panel, __m512i dot[Q8_MR]) {
    for (int i = 0; i < mr; i++) dot[i] = _mm512_setzero_si512();
    for (int64_t s = 0; s < GLMK_QK / 4; s++) {
        const int64_t k4 = b * (GLMK_QK / 4) + s;
        const __m512i w = _mm512_load_si512((const void *)(panel + k4 * Q8_NR * 4));
        for (int i = 0; i < mr; i++) dot[i] = _mm512_dpbusd_epi32(dot[i], w, _mm512_set1_epi32(xp[k4 * Q8_MR + i]));
    }
}

/// C (mr, 16, rows contiguous) += the tile's products over kc columns (a multiple of 32).
/// xp: (kc/4, 6) int32 (4 bytes of x per token), xs / xsum8: (kc/32, 6).
///
/// The weight scale is constant over runs of `scale_blocks` blocks (1 for Q4_0, 4
/// for groups of 128, the whole K-block for q4_row). Within a run every block
/// takes only its activation scale, acc_run += (dot_b - 8 xsum_b) s_x(b): the
/// zero-point subtraction runs on an integer pipe, the convert and the FMA share
/// the pipes of vpdpbusd (one FMA per 8 vpdpbusd caps the tile at ~89% of the
/// int8 peak). The weight scale applies once per run, acc += acc_run s_w, so for
/// q4_row and groups of 128 the float step is (nearly) one FMA per block instead
/// of a multiply and an FMA: measured on L1-resident operands, 87-89% of the int8
/// peak against 80% with per-block weight scales.
GLMK_VNNI_INLINE void q8_tile_kernel(int mr, int64_t scale_blocks, int64_t kc, const int32_t *xp, const float *xs,
                                     const int32_t *xsum8, const uint8_t *panel, const float *pscales, float *c) {
    __m512 acc[Q8_MR], acc_run[Q8_MR];
    for (int i = 0; i < mr; i++) acc[i] = acc_run[i] = _mm512_setzero_ps();
    const int64_t blocks = kc / GLMK_QK;
    int64_t in_run = 0;
    for (int64_t b = 0; b < blocks; b++) {
        __m512i dot[Q8_MR];
        q8_block_dots(mr, b, xp, panel, dot);
        for (int i = 0; i < mr; i++) {
            const __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(dot[i], _mm512_set1_epi32(xsum8[b * Q8_MR + i])));
            acc_run[i] = _mm512_fmadd_ps(d, _mm512_set1_ps(xs[b * Q8_MR + i]), acc_run[i]);
        }
        if (++in_run == scale_blocks || b + 1 == blocks) {
            in_run = 0;
            const __m512 sw = _mm512_load_ps(pscales + b * Q8_NR);
            for (int i = 0; i < mr; i++) {
                acc[i] = _mm512_fmadd_ps(acc_run[i], sw, acc[i]);
                acc_run[i] = _mm512_setzero_ps();
            }
        }
    }
    for (int i = 0; i < mr; i++) _mm512_storeu_ps(c + i * Q8_NR, _mm512_add_ps(acc[i], _mm512_loadu_ps(c + i * Q8_NR)));
}

/// The tile kernel with mr as a literal (registers, unrolled loops).
GLMK_VNNI static void q8_tile(int mr, int64_t scale_blocks, int64_t kc, const int32_t *xp, const float *xs,
                              const int32_t *xsum8, const uint8_t *panel, const float *pscales, float *c) {
#define Q8_TILE(MR) q8_tile_kernel(MR, scale_blocks, kc, xp, xs, xsum8, panel, pscales, c)
    switch (mr) {
    case 6: Q8_TILE(6); break;
    case 5: Q8_TILE(5); break;
    case 4: Q8_TILE(4); break;
    case 3: Q8_TILE(3); break;
    case 2: Q8_TILE(2); break;
    default: Q8_TILE(1); break;
    }
#undef Q8_TILE
}

/// How many 32-blocks in a row share one weight scale, counted from a K-block's
/// start: a divisor of Q8_BLOCKS (runs never straddle a K-block).
static int64_t scale_run_blocks(const glmk_matrix *w) {
    if (w->type == GLMK_TYPE_Q4_ROW) return Q8_BLOCKS;
    if (w->type != GLMK_TYPE_Q4_GROUP) return 1;
    int64_t run = Q8_BLOCKS;
    while ((w->group / GLMK_QK) % run != 0) run /= 2;
    return run;
}

/// The quantized X, packed per (K-block, 6-token tile): the 4-byte groups as
/// (Q8_KC/4, 6) int32, scales and 8 x the sums (the zero point of u = q + 8) as
/// (Q8_BLOCKS, 6). A K-block's tiles are
/// contiguous, so the tiles that run over one packed panel are one stream.
/// Tokens past m and columns past k are zero (a zero activation adds nothing).
typedef struct {
    int32_t *groups;
    float *scales;
    int32_t *sums8;
    int64_t tiles, kblocks;
} packed_x;

static inline int64_t x_slot(const packed_x *p, int64_t kblock, int64_t tile) { return kblock * p->tiles + tile; }

static void pack_x_tile(const packed_x *p, int64_t t, const int8_t *xq, const float *x_scales, const int32_t *x_sums,
                        int64_t m, int64_t k) {
    const int64_t kb = (k + GLMK_QK - 1) / GLMK_QK;
    for (int64_t kblock = 0; kblock < p->kblocks; kblock++) {
        int32_t *g = p->groups + x_slot(p, kblock, t) * (Q8_KC / 4 * Q8_MR);
        float *scales = p->scales + x_slot(p, kblock, t) * (Q8_BLOCKS * Q8_MR);
        int32_t *sums8 = p->sums8 + x_slot(p, kblock, t) * (Q8_BLOCKS * Q8_MR);
        for (int i = 0; i < Q8_MR; i++) {
            const int64_t token = t * Q8_MR + i;
            for (int64_t c4 = 0; c4 < Q8_KC / 4; c4++) {
                const int64_t col = kblock * Q8_KC + c4 * 4;
                uint8_t bytes[4] = {0, 0, 0, 0};
                if (token < m && col + 4 <= k) memcpy(bytes, xq + token * k + col, 4);
                else
                    for (int j = 0; j < 4; j++)
                        if (token < m && col + j < k) bytes[j] = (uint8_t)xq[token * k + col + j];
                memcpy(&g[c4 * Q8_MR + i], bytes, 4);
            }
            for (int64_t b = 0; b < Q8_BLOCKS; b++) {
                const int64_t block = kblock * Q8_BLOCKS + b;
                const int inside = token < m && block < kb;
                scales[b * Q8_MR + i] = inside ? x_scales[token * kb + block] : 0.0f;
                sums8[b * Q8_MR + i] = inside ? 8 * x_sums[token * kb + block] : 0;
            }
        }
    }
}

/// Y[:, n0 : n0 + 16) = bias + X W[n0 : n0 + 16)^T. The panel's outputs for all m
/// tokens build up over the K-blocks in `acc` (m x 16, contiguous) and reach Y once,
/// each tile's rows right after its last K-block so the stores (misses: Y's rows
/// are a page or more apart at GLM-130B's widths) drain while later tiles compute.
/// Updating Y in place every K-block cost ~20% (TLB walks, misses).
GLMK_VNNI static void q8_panel(float *y, int64_t y_stride, const glmk_matrix *w, const packed_x *px, int64_t m,
                               int64_t n0, const float *bias, float *acc) {
    uint8_t panel[Q8_KC / 4 * Q8_NR * 4] __attribute__((aligned(64)));
    float pscales[Q8_BLOCKS * Q8_NR] __attribute__((aligned(64)));
    float row_bias[Q8_NR] = {0};
    const int64_t nr = w->rows - n0 < Q8_NR ? w->rows - n0 : Q8_NR;
    if (bias) memcpy(row_bias, bias + n0, (size_t)nr * sizeof(float));
    const int64_t width = (w->cols + GLMK_QK - 1) / GLMK_QK * GLMK_QK, scale_blocks = scale_run_blocks(w);
    memset(acc, 0, (size_t)(m * Q8_NR) * sizeof(float));
    for (int64_t k0 = 0; k0 < width; k0 += Q8_KC) {
        const int64_t kc = width - k0 < Q8_KC ? width - k0 : Q8_KC;
        pack_panel(panel, pscales, w, n0, k0, kc);
        for (int64_t t = 0; t < m; t += Q8_MR) {
            const int mr = (int)(m - t < Q8_MR ? m - t : Q8_MR);
            const int64_t slot = x_slot(px, k0 / Q8_KC, t / Q8_MR);
            q8_tile(mr, scale_blocks, kc, px->groups + slot * (Q8_KC / 4 * Q8_MR), px->scales + slot * (Q8_BLOCKS * Q8_MR),
                    px->sums8 + slot * (Q8_BLOCKS * Q8_MR), panel, pscales, acc + t * Q8_NR);
            if (k0 + kc == width)
                for (int i = 0; i < mr; i++)
                    for (int64_t j = 0; j < nr; j++) y[(t + i) * y_stride + n0 + j] = acc[(t + i) * Q8_NR + j] + row_bias[j];
        }
    }
}

/// The packed activations (shared) and one accumulator block per thread.
typedef struct {
    size_t groups, scales, sums8, acc;
} q8_pieces;

static q8_pieces q8_piece_bytes(const glmk_matrix *w, int64_t m) {
    const int64_t tiles = (m + Q8_MR - 1) / Q8_MR;
    const size_t slots = (size_t)(tiles * ((w->cols + Q8_KC - 1) / Q8_KC));
    q8_pieces p = {slots * (Q8_KC / 4 * Q8_MR) * sizeof(int32_t), slots * (Q8_BLOCKS * Q8_MR) * sizeof(float),
                   slots * (Q8_BLOCKS * Q8_MR) * sizeof(int32_t), (size_t)(tiles * Q8_MR * Q8_NR) * sizeof(float)};
    return p;
}

size_t glmk_matmul_q8_vnni_workspace(const glmk_matrix *w, int64_t m) {
    if (!glmk_matmul_q8_fast_available() || m <= 0) return 0;
    const q8_pieces p = q8_piece_bytes(w, m);
    return GLMK_WS_ROUND(p.groups) + GLMK_WS_ROUND(p.scales) + GLMK_WS_ROUND(p.sums8) +
           (size_t)glmk_workspace_threads() * GLMK_WS_ROUND(p.acc);
}

glmk_status glmk_matmul_q8_vnni(float *y, int64_t y_stride, const glmk_matrix *w, const int8_t *xq,
                                const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                glmk_workspace ws) {
    const glmk_status status = glmk_check_matmul_q8(y, y_stride, w, xq, x_scales, x_sums, m);
    if (status != GLMK_OK) return status;
    if (!glmk_matmul_q8_fast_available()) return GLMK_ERR_UNSUPPORTED;
    const int64_t tiles = (m + Q8_MR - 1) / Q8_MR, panels = (w->rows + Q8_NR - 1) / Q8_NR;
    packed_x px = {.tiles = tiles, .kblocks = (w->cols + Q8_KC - 1) / Q8_KC};
    const q8_pieces bytes = q8_piece_bytes(w, m);
    const int threads = glmk_workspace_threads();
    glmk_arena arena = glmk_arena_of(ws);
    px.groups = glmk_arena_take(&arena, bytes.groups);
    px.scales = glmk_arena_take(&arena, bytes.scales);
    px.sums8 = glmk_arena_take(&arena, bytes.sums8);
    float *accs = glmk_arena_take(&arena, (size_t)threads * GLMK_WS_ROUND(bytes.acc));
    if (!px.groups || !px.scales || !px.sums8 || !accs) return GLMK_ERR_INVALID_ARGUMENT; // a short workspace
#pragma omp parallel if (m * w->rows * w->cols >= GLMK_PARALLEL_MIN_WORK) num_threads(threads)
    {
        float *acc = accs + (size_t)omp_get_thread_num() * (GLMK_WS_ROUND(bytes.acc) / sizeof(float));
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) pack_x_tile(&px, t, xq, x_scales, x_sums, m, w->cols);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < panels; p++) q8_panel(y, y_stride, w, &px, m, p * Q8_NR, bias, acc);
    }
    return GLMK_OK;
}

#endif
