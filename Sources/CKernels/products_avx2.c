/*
 * products_avx2.c — AVX2/FMA weight x activation products.
 *  - Row dot products, one per weight type, unpack in registers and FMA
 *    against FP32 activations (decode: mat-vec, memory bound).
 *  - Row dequantization per type feeds the one shared FP32 mat-mat below
 *    (prefill: compute bound): W panels of 16 rows x KC are dequantized,
 *    transposed into (KC, 16), and a 6 x 16 register tile runs FMAs over them.
 */
#include "internal.h"
#include "simd_avx2.h"
#include <stdlib.h>

#if GLMK_X86

// MARK: - Row dot products

GLMK_AVX2_INLINE __m256 fma_i8x16(__m128i q, const float *x, __m256 acc) {
    acc = _mm256_fmadd_ps(glmk_i8x8_to_ps(q), _mm256_loadu_ps(x), acc);
    return _mm256_fmadd_ps(glmk_i8x8_to_ps(_mm_srli_si128(q, 8)), _mm256_loadu_ps(x + 8), acc);
}

GLMK_AVX2 static float dot_f32(const float *w, const float *x, int64_t k) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= k; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float sum = glmk_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < k; i++) sum += w[i] * x[i];
    return sum;
}

GLMK_AVX2 static float dot_f16(const uint16_t *w, const float *x, int64_t k) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
    }
    float sum = glmk_hsum256(_mm256_add_ps(a0, a1));
    for (; i < k; i++) sum += glmk_fp16_to_fp32(w[i]) * x[i];
    return sum;
}

GLMK_AVX2 static float dot_q8_0(const glmk_block_q8_0 *blocks, const float *x, int64_t k) {
    __m256 total = _mm256_setzero_ps();
    for (int64_t b = 0; b < k / GLMK_QK; b++, x += GLMK_QK) {
        const __m128i q0 = _mm_loadu_si128((const __m128i *)blocks[b].qs);
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(blocks[b].qs + 16));
        __m256 acc = fma_i8x16(q0, x, _mm256_setzero_ps());
        acc = fma_i8x16(q1, x + 16, acc);
        total = _mm256_fmadd_ps(_mm256_set1_ps(glmk_half(blocks[b].d)), acc, total);
    }
    return glmk_hsum256(total);
}

GLMK_AVX2 static float dot_q4_0(const glmk_block_q4_0 *blocks, const float *x, int64_t k) {
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    __m256 total = _mm256_setzero_ps();
    for (int64_t b = 0; b < k / GLMK_QK; b++, x += GLMK_QK) {
        const __m128i bytes = _mm_loadu_si128((const __m128i *)blocks[b].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(bytes, mask), eight);                     // elements 0..15
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), eight);  // elements 16..31
        __m256 acc = fma_i8x16(lo, x, _mm256_setzero_ps());
        acc = fma_i8x16(hi, x + 16, acc);
        total = _mm256_fmadd_ps(_mm256_set1_ps(glmk_half(blocks[b].d)), acc, total);
    }
    return glmk_hsum256(total);
}

/// GLM INT4 (row or group scales): per group, 32 columns per step from 16
/// bytes, the group's scale applied once to the group's vector sum.
GLMK_AVX2 static float dot_q4(const glmk_matrix *w, int64_t row, const float *x) {
    const uint8_t *r = glmk_row_ptr(w, row);
    const int64_t groups = glmk_scales_per_row(w->type, w->cols, w->group);
    const uint16_t *scales = w->scales + row * groups;
    __m256 total = _mm256_setzero_ps();
    float tail = 0.0f;
    for (int64_t g = 0; g < groups; g++) {
        const int64_t k0 = g * w->group;
        const int64_t end = k0 + w->group < w->cols ? k0 + w->group : w->cols;
        const float scale = glmk_half(scales[g]);
        __m256 acc = _mm256_setzero_ps();
        int64_t k = k0;
        for (; k + 32 <= end; k += 32) {
            __m128i first, second;
            glmk_q4_unpack32(r + k / 2, &first, &second);
            acc = fma_i8x16(first, x + k, acc);
            acc = fma_i8x16(second, x + k + 16, acc);
        }
        float rest = 0.0f;
        for (; k < end; k++) rest += (float)glmk_q4_at(r, k) * x[k];
        total = _mm256_fmadd_ps(_mm256_set1_ps(scale), acc, total);
        tail += scale * rest;
    }
    return glmk_hsum256(total) + tail;
}

float glmk_dot_row_avx2(const glmk_matrix *w, int64_t row, const float *x) {
    const uint8_t *r = glmk_row_ptr(w, row);
    switch (w->type) {
    case GLMK_TYPE_F32: return dot_f32((const float *)r, x, w->cols);
    case GLMK_TYPE_F16: return dot_f16((const uint16_t *)r, x, w->cols);
    case GLMK_TYPE_Q8_0: return dot_q8_0((const glmk_block_q8_0 *)r, x, w->cols);
    case GLMK_TYPE_Q4_0: return dot_q4_0((const glmk_block_q4_0 *)r, x, w->cols);
    case GLMK_TYPE_Q4_ROW:
    case GLMK_TYPE_Q4_GROUP: return dot_q4(w, row, x);
    default: return 0.0f;
    }
}

/// Four f32 or f16 rows at once: each activation load serves four rows (x is
/// 48 KB at GLM-130B's width, more than L1), and the four accumulators are
/// independent FMA chains. Returns 0 (nothing written) for other types.
GLMK_AVX2 static int dot_4rows_float(const glmk_matrix *w, int64_t n0, const float *x, float *out) {
    if (w->type != GLMK_TYPE_F32 && w->type != GLMK_TYPE_F16) return 0;
    const int f16 = w->type == GLMK_TYPE_F16;
    const uint8_t *rows[4];
    __m256 acc[4];
    for (int r = 0; r < 4; r++) { rows[r] = glmk_row_ptr(w, n0 + r); acc[r] = _mm256_setzero_ps(); }
    int64_t k = 0;
    for (; k + 8 <= w->cols; k += 8) {
        const __m256 xv = _mm256_loadu_ps(x + k);
        for (int r = 0; r < 4; r++) {
            const __m256 wv = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)rows[r] + k)))
                                  : _mm256_loadu_ps((const float *)rows[r] + k);
            acc[r] = _mm256_fmadd_ps(wv, xv, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) {
        float sum = glmk_hsum256(acc[r]);
        for (int64_t j = k; j < w->cols; j++)
            sum += (f16 ? glmk_fp16_to_fp32(((const uint16_t *)rows[r])[j]) : ((const float *)rows[r])[j]) * x[j];
        out[r] = sum;
    }
    return 1;
}

// MARK: - Row dequantization

GLMK_AVX2_INLINE void store_i8x16(float *out, __m128i q, __m256 scale) {
    _mm256_storeu_ps(out, _mm256_mul_ps(glmk_i8x8_to_ps(q), scale));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(glmk_i8x8_to_ps(_mm_srli_si128(q, 8)), scale));
}

GLMK_AVX2 static void dequant_q4(float *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t count) {
    const uint8_t *r = glmk_row_ptr(w, row);
    const int64_t end = k0 + count;
    for (int64_t k = k0; k < end;) {
        // one segment: the part of [k, end) inside the current group (one scale)
        const int64_t group_end = (k / w->group + 1) * w->group;
        const int64_t seg_end = group_end < end ? group_end : end;
        const float scale = glmk_q4_scale(w, row, k);
        const __m256 vscale = _mm256_set1_ps(scale);
        if ((k & 1) == 0) {
            for (; k + 32 <= seg_end; k += 32) {
                __m128i first, second;
                glmk_q4_unpack32(r + k / 2, &first, &second);
                store_i8x16(out + (k - k0), first, vscale);
                store_i8x16(out + (k - k0) + 16, second, vscale);
            }
        }
        for (; k < seg_end; k++) out[k - k0] = scale * (float)glmk_q4_at(r, k);
    }
}

GLMK_AVX2 glmk_status glmk_dequantize_row_avx2(float *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t count) {
    const glmk_status status = glmk_check_dequantize(out, w, row, k0, count);
    if (status != GLMK_OK) return status;
    const uint8_t *r = glmk_row_ptr(w, row);
    switch (w->type) {
    case GLMK_TYPE_F32:
        memcpy(out, (const float *)r + k0, (size_t)count * sizeof(float));
        break;
    case GLMK_TYPE_F16: {
        const uint16_t *h = (const uint16_t *)r + k0;
        int64_t i = 0;
        for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
        for (; i < count; i++) out[i] = glmk_fp16_to_fp32(h[i]);
        break;
    }
    case GLMK_TYPE_Q8_0:
    case GLMK_TYPE_Q4_0: {
        // whole blocks with SIMD; a trailing partial block goes through the scalar path
        const int64_t whole = count / GLMK_QK;
        const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
        for (int64_t b = 0; b < whole; b++) {
            float *o = out + b * GLMK_QK;
            const int64_t index = k0 / GLMK_QK + b;
            if (w->type == GLMK_TYPE_Q8_0) {
                const glmk_block_q8_0 *blk = (const glmk_block_q8_0 *)r + index;
                const __m256 d = _mm256_set1_ps(glmk_half(blk->d));
                store_i8x16(o, _mm_loadu_si128((const __m128i *)blk->qs), d);
                store_i8x16(o + 16, _mm_loadu_si128((const __m128i *)(blk->qs + 16)), d);
            } else {
                const glmk_block_q4_0 *blk = (const glmk_block_q4_0 *)r + index;
                const __m256 d = _mm256_set1_ps(glmk_half(blk->d));
                const __m128i bytes = _mm_loadu_si128((const __m128i *)blk->qs);
                store_i8x16(o, _mm_sub_epi8(_mm_and_si128(bytes, mask), eight), d);
                store_i8x16(o + 16, _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), eight), d);
            }
        }
        if (whole * GLMK_QK < count)
            return glmk_dequantize_row_scalar(out + whole * GLMK_QK, w, row, k0 + whole * GLMK_QK, count - whole * GLMK_QK);
        break;
    }
    case GLMK_TYPE_Q4_ROW:
    case GLMK_TYPE_Q4_GROUP:
        dequant_q4(out, w, row, k0, count);
        break;
    default:
        return GLMK_ERR_UNSUPPORTED;
    }
    return GLMK_OK;
}

// MARK: - Mat-vec (decode)

glmk_status glmk_matvec_avx2(float *y, const glmk_matrix *w, const float *x, const float *bias) {
    const glmk_status status = glmk_check_product(y, w, x);
    if (status != GLMK_OK) return status;
    const int64_t rows = w->rows;
    const int64_t quads = (w->type == GLMK_TYPE_F32 || w->type == GLMK_TYPE_F16) ? rows / 4 : 0;
    GLMK_PARALLEL_FOR(q, 0, quads, rows * w->cols, dot_4rows_float(w, q * 4, x, y + q * 4));
    GLMK_PARALLEL_FOR(n, quads * 4, rows, (rows - quads * 4) * w->cols, y[n] = glmk_dot_row_avx2(w, n, x));
    if (bias)
        for (int64_t n = 0; n < rows; n++) y[n] += bias[n];
    return GLMK_OK;
}

// MARK: - Mat-mat (prefill)

enum { MR = 6, NR = 16 };

/// C (mr, 16) += X (mr, kc) @ P (kc, 16), X packed as (kc, 6). mr is a literal at
/// every call site, so the loops unroll and the 12 accumulators stay in registers.
/// C is read only at the end: the products do not wait for its rows (far apart in
/// Y, often a cache and TLB miss each), and the caller prefetches the next tile's.
GLMK_AVX2_INLINE void tile_kernel(int mr, int64_t kc, const float *xp, const float *panel, float *c, int64_t c_stride) {
    __m256 acc[MR][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(panel + k * NR);
        const __m256 b1 = _mm256_load_ps(panel + k * NR + 8);
        for (int i = 0; i < mr; i++) {
            const __m256 a = _mm256_broadcast_ss(xp + k * MR + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm256_storeu_ps(c + i * c_stride, _mm256_add_ps(acc[i][0], _mm256_loadu_ps(c + i * c_stride)));
        _mm256_storeu_ps(c + i * c_stride + 8, _mm256_add_ps(acc[i][1], _mm256_loadu_ps(c + i * c_stride + 8)));
    }
}

GLMK_AVX2 static void tile(int mr, int64_t kc, const float *xp, const float *panel, float *c, int64_t c_stride) {
    switch (mr) {
    case 6: tile_kernel(6, kc, xp, panel, c, c_stride); break;
    case 5: tile_kernel(5, kc, xp, panel, c, c_stride); break;
    case 4: tile_kernel(4, kc, xp, panel, c, c_stride); break;
    case 3: tile_kernel(3, kc, xp, panel, c, c_stride); break;
    case 2: tile_kernel(2, kc, xp, panel, c, c_stride); break;
    default: tile_kernel(1, kc, xp, panel, c, c_stride); break;
    }
}

const glmk_fp32_tile glmk_tile_avx2 = {.mr = MR, .nr = NR, .run = tile};

/// X[t0 .. t0 + mr - 1, k0 .. k0 + kc) as (kc, mr): the tile kernel's broadcasts read
/// mr contiguous floats per k instead of mr rows k floats apart (a multiple of 4 KB at
/// GLM-130B's widths, so all of them fell in one L1 set). Rows past m are zero.
GLMK_AVX2 static void pack_tile(float *xp, int mr, const float *x, int64_t x_stride, int64_t m, int64_t t0, int64_t k0, int64_t kc) {
    for (int i = 0; i < mr; i++) {
        const float *row = x + (t0 + i) * x_stride + k0;
        if (t0 + i < m)
            for (int64_t k = 0; k < kc; k++) xp[k * mr + i] = row[k];
        else
            for (int64_t k = 0; k < kc; k++) xp[k * mr + i] = 0.0f;
    }
}

/// panel (kc, nr) = rows (nr, kc)^T, 8 x 8 blocks in registers (the scalar loop was
/// ~15% of a 128-token prefill: the panel is rebuilt for every K-block).
GLMK_AVX2 static void transpose_panel(float *panel, int nr, const float *rows, int64_t row_stride, int64_t kc) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int64_t j = 0; j < nr; j += 8) glmk_transpose8x8(panel + k * nr + j, nr, rows + j * row_stride + k, row_stride);
    for (; k < kc; k++)
        for (int64_t j = 0; j < nr; j++) panel[k * nr + j] = rows[j * row_stride + k];
}

/// A thread's panel buffers: the tile's nr rows as dequantized (nr, kc_max) and transposed (kc_max, nr).
typedef struct {
    float *rows, *panel;
    int64_t kc_max;
} panel_scratch;

/// Y[:, n0 : n0 + nr] += X[:, k0 : k0 + kc] W[n0 : n0 + nr, k0 : k0 + kc]^T for all m
/// tokens: the panel's rows are dequantized into (kc, tile nr) and every mr-token tile
/// of the packed X runs over it.
GLMK_AVX2 static void matmul_panel(float *y, int64_t y_stride, const glmk_matrix *w, const float *xp, int64_t m,
                                   int64_t n0, int64_t k0, int64_t kc, const panel_scratch *scratch, const glmk_fp32_tile *tl) {
    const int MRt = tl->mr, NRt = tl->nr;
    const int64_t nr = w->rows - n0 < NRt ? w->rows - n0 : NRt;
    float *rows = scratch->rows, *panel = scratch->panel;
    float edge[GLMK_TILE_MR_MAX * GLMK_TILE_NR_MAX]; // a tile's outputs when the panel has fewer rows than the tile
    for (int64_t j = 0; j < NRt; j++) {
        if (j < nr) glmk_dequantize_row_avx2(rows + j * scratch->kc_max, w, n0 + j, k0, kc);
        else memset(rows + j * scratch->kc_max, 0, (size_t)kc * sizeof(float));
    }
    transpose_panel(panel, NRt, rows, scratch->kc_max, kc);

    for (int64_t t = 0; t < m; t += MRt) {
        const int mr = (int)(m - t < MRt ? m - t : MRt);
        const float *xt = xp + (t / MRt) * kc * MRt;
        float *yt = y + t * y_stride + n0;
        if (t + MRt < m)
            for (int i = 0; i < MRt && t + MRt + i < m; i++) _mm_prefetch((const char *)(yt + (MRt + i) * y_stride), _MM_HINT_T0);
        if (nr == NRt) {
            tl->run(mr, kc, xt, panel, yt, y_stride);
        } else {
            for (int i = 0; i < mr; i++)
                for (int64_t j = 0; j < NRt; j++) edge[i * NRt + j] = j < nr ? yt[i * y_stride + j] : 0.0f;
            tl->run(mr, kc, xt, panel, edge, NRt);
            for (int i = 0; i < mr; i++)
                for (int64_t j = 0; j < nr; j++) yt[i * y_stride + j] = edge[i * NRt + j];
        }
    }
}

/// X's packed K-block (shared) and each thread's panel rows and panel, in bytes.
static int64_t block_kc(const glmk_matrix *w) {
    const int64_t kc = glmk_matmul_kc();
    return w->cols < kc ? w->cols : kc;
}

static void matmul_piece_bytes(const glmk_matrix *w, int64_t m, const glmk_fp32_tile *tl, size_t *shared, size_t *per_thread) {
    const int64_t kc_max = block_kc(w);
    const int mr = tl->mr;
    *shared = GLMK_WS_ROUND((size_t)(((m + mr - 1) / mr) * mr * kc_max) * sizeof(float));
    *per_thread = 2 * GLMK_WS_ROUND((size_t)(tl->nr * kc_max) * sizeof(float));
}

size_t glmk_matmul_tiled_workspace(const glmk_matrix *w, int64_t m, const glmk_fp32_tile *tl) {
    if (m <= 0 || w->cols <= 0) return 0;
    size_t shared, per_thread;
    matmul_piece_bytes(w, m, tl, &shared, &per_thread);
    return shared + (size_t)glmk_workspace_threads() * per_thread;
}

size_t glmk_matmul_avx2_workspace(const glmk_matrix *w, int64_t m) { return glmk_matmul_tiled_workspace(w, m, &glmk_tile_avx2); }

glmk_status glmk_matmul_tiled(float *y, int64_t y_stride, const glmk_matrix *w, const float *x, int64_t x_stride, int64_t m,
                              const float *bias, glmk_workspace ws, const glmk_fp32_tile *tl) {
    const glmk_status status = glmk_check_product(y, w, x);
    if (status != GLMK_OK) return status;
    if (m <= 0 || y_stride < w->rows || x_stride < w->cols) return GLMK_ERR_INVALID_ARGUMENT;
    const int mr = tl->mr;
    const int64_t kc_max = block_kc(w);
    const int64_t panels = (w->rows + tl->nr - 1) / tl->nr, tiles = (m + mr - 1) / mr;
    const int threads = glmk_workspace_threads();
    size_t shared, per_thread;
    matmul_piece_bytes(w, m, tl, &shared, &per_thread);
    glmk_arena arena = glmk_arena_of(ws);
    // X's K-block packed once and shared by all threads' panels (tiles x kc x mr floats)
    float *xp = glmk_arena_take(&arena, shared);
    uint8_t *thread_scratch = glmk_arena_take(&arena, (size_t)threads * per_thread);
    if (!xp || !thread_scratch) return GLMK_ERR_INVALID_ARGUMENT; // the workspace is smaller than glmk_workspace_bytes says
#pragma omp parallel if (m * w->rows * w->cols >= GLMK_PARALLEL_MIN_WORK) num_threads(threads)
    {
        panel_scratch scratch = {.kc_max = kc_max};
        scratch.rows = (float *)(thread_scratch + (size_t)omp_get_thread_num() * per_thread);
        scratch.panel = scratch.rows + per_thread / 2 / sizeof(float);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < m; t++)
            for (int64_t n = 0; n < w->rows; n++) y[t * y_stride + n] = bias ? bias[n] : 0.0f;
        for (int64_t k0 = 0; k0 < w->cols; k0 += kc_max) {
            const int64_t kc = w->cols - k0 < kc_max ? w->cols - k0 : kc_max;
#pragma omp for schedule(static)
            for (int64_t t = 0; t < tiles; t++) pack_tile(xp + t * kc * mr, mr, x, x_stride, m, t * mr, k0, kc);
#pragma omp for schedule(static)
            for (int64_t p = 0; p < panels; p++) matmul_panel(y, y_stride, w, xp, m, p * tl->nr, k0, kc, &scratch, tl);
        }
    }
    return GLMK_OK;
}

glmk_status glmk_matmul_avx2(float *y, int64_t y_stride, const glmk_matrix *w, const float *x,
                             int64_t x_stride, int64_t m, const float *bias, glmk_workspace ws) {
    return glmk_matmul_tiled(y, y_stride, w, x, x_stride, m, bias, ws, &glmk_tile_avx2);
}

// MARK: - Embedding lookup

glmk_status glmk_embedding_avx2(float *out, const glmk_matrix *table, const int32_t *ids, int64_t count) {
    const glmk_status status = glmk_check_embedding(out, table, ids, count);
    if (status != GLMK_OK) return status;
    for (int64_t t = 0; t < count; t++) {
        const glmk_status s = glmk_dequantize_row_avx2(out + t * table->cols, table, ids[t], 0, table->cols);
        if (s != GLMK_OK) return s;
    }
    return GLMK_OK;
}

#endif
