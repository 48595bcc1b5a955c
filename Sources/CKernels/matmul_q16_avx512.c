/*
 * matmul_q16_avx512.c — the default prefill for INT4 weights (q4_row, q4_group
 * with groups of 32·j, Q4_0) on AVX-512 VNNI: activations quantized to 16 bits
 * per 32-block exactly as the decode default's (matvec_q16.c: scale = absmax /
 * 32767, round to nearest), weights as their signed integers, integer dot
 * products with vpdpwssd (pairs of int16, exact in int32), then per block the
 * weight scale times the activation scale in FP32. The same arithmetic as
 * matvec_q16 for each token, in a mat-mat's order.
 *
 * Layout: per K-block of KC columns and panel of 32 weight rows, each row is
 * unpacked to int16 in natural column order (GLM INT4: the high nibble is the
 * even column; Q4_0: low nibbles first), then transposed so that one zmm holds
 * one column pair of 16 rows; X is quantized once per call and packed per tile
 * of 6 tokens as (pairs, 6) int32 with its block scales. The tile: 6 tokens x
 * 32 rows, per token two int32 accumulators (one block) and two float ones;
 * per block 32 vpdpwssd with the token's pair broadcast from memory, then per
 * half a convert, the scale product and an FMA.
 */
#include "internal.h"
#include "simd_avx2.h"

#if GLMK_X86
#include <immintrin.h>
#include <math.h>
#include <float.h>

#define Q16_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define Q16_INLINE static inline __attribute__((always_inline, target(Q16_TARGET)))

enum { MR = 6, NR = 32, KC = 1024 };

static int supported(const glmk_matrix *w) {
    if (w->cols % GLMK_QK != 0) return 0;
    switch (w->type) {
    case GLMK_TYPE_Q4_0: case GLMK_TYPE_Q4_ROW: return 1;
    case GLMK_TYPE_Q4_GROUP: return w->group % GLMK_QK == 0;
    default: return 0;
    }
}

static int64_t kc_of(const glmk_matrix *w) { return w->cols < KC ? w->cols : KC; }

/// Bytes: X packed (tiles x cols/2 int32) and its scales (tiles x blocks x 6), then per thread
/// the panel's rows as int16 (32 x KC), transposed (KC/2 x 32 int32) and their scales (KC/32 x 32).
static void piece_bytes(const glmk_matrix *w, int64_t m, size_t *shared, size_t *per_thread) {
    const int64_t tiles = (m + MR - 1) / MR, blocks = w->cols / GLMK_QK;
    *shared = GLMK_WS_ROUND((size_t)(tiles * MR * w->cols) * sizeof(int16_t)) + GLMK_WS_ROUND((size_t)(tiles * blocks * MR) * sizeof(float));
    // the panel buffers are laid out for a whole KC (panel() indexes them by KC)
    *per_thread = 2 * GLMK_WS_ROUND((size_t)(NR * KC) * sizeof(int16_t)) + GLMK_WS_ROUND((size_t)(NR * (KC / GLMK_QK)) * sizeof(float));
}

size_t glmk_matmul_q16_avx512_workspace(const glmk_matrix *w, int64_t m) {
    if (m <= 0 || !supported(w)) return 0;
    size_t shared, per_thread;
    piece_bytes(w, m, &shared, &per_thread);
    return shared + (size_t)glmk_workspace_threads() * per_thread;
}

/// Token t's row of X as 16-bit blocks into its tile: pairs (k/2) of int32 at xp[pair * 6 + lane],
/// block scales at xs[block * 6 + lane]; the rounding of glmk_quantize_activations_q16.
static void quantize_row(int32_t *xp, float *xs, const float *x, int64_t k, int lane) {
    int16_t *q16 = (int16_t *)xp;
    for (int64_t b = 0; b * GLMK_QK < k; b++) {
        const float *xb = x + b * GLMK_QK;
        float amax = 0.0f;
        int finite = 1;
        for (int i = 0; i < GLMK_QK; i++) {
            const float a = fabsf(xb[i]);
            finite &= a <= FLT_MAX;
            amax = fmaxf(amax, a);
        }
        const float scale = finite ? amax / 32767.0f : NAN, inv = finite && scale > 0.0f ? 1.0f / scale : 0.0f;
        for (int i = 0; i < GLMK_QK; i++) {
            long q = finite ? lrintf(xb[i] * inv) : 0;
            q = q > 32767 ? 32767 : q < -32767 ? -32767 : q;
            const int64_t pair = (b * GLMK_QK + i) / 2;
            q16[(pair * MR + lane) * 2 + (i & 1)] = (int16_t)q;
        }
        xs[b * MR + lane] = scale;
    }
}

/// Row r's columns [k0, k0 + kc) as int16 in natural order, and its scale per 32-block.
Q16_INLINE void unpack_row(int16_t *out, float *scales, int64_t scale_stride, const glmk_matrix *w, int64_t row, int64_t k0, int64_t kc) {
    const uint8_t *r = glmk_row_ptr(w, row);
    for (int64_t b = 0; b < kc / GLMK_QK; b++) {
        const int64_t k = k0 + b * GLMK_QK;
        const uint8_t *bytes;
        if (w->type == GLMK_TYPE_Q4_0) {
            const glmk_block_q4_0 *blk = (const glmk_block_q4_0 *)r + k / GLMK_QK;
            scales[b * scale_stride] = glmk_fp16_to_fp32(blk->d);
            const __m128i v = _mm_loadu_si128((const __m128i *)blk->qs), eight = _mm_set1_epi8(8), low = _mm_set1_epi8(0x0F);
            const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, low), eight), hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), low), eight);
            _mm256_storeu_si256((__m256i *)(out + b * GLMK_QK), _mm256_cvtepi8_epi16(lo));
            _mm256_storeu_si256((__m256i *)(out + b * GLMK_QK + 16), _mm256_cvtepi8_epi16(hi));
            continue;
        }
        scales[b * scale_stride] = glmk_q4_scale(w, row, k);
        bytes = r + k / 2;
        // byte j: column 2j in the high nibble, 2j + 1 in the low one, both two's complement
        for (int half = 0; half < 2; half++) {
            const __m128i s = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(bytes + 8 * half)));
            const __m128i even = _mm_srai_epi16(s, 4), odd = _mm_srai_epi16(_mm_slli_epi16(s, 12), 12);
            _mm_storeu_si128((__m128i *)(out + b * GLMK_QK + 16 * half), _mm_unpacklo_epi16(even, odd));
            _mm_storeu_si128((__m128i *)(out + b * GLMK_QK + 16 * half + 8), _mm_unpackhi_epi16(even, odd));
        }
    }
}

/// C (mr, 32) += sum over blocks of (W blocks . X blocks) x scales: wp (kc/2, 32) int32 pairs,
/// ws (kc/32, 32) weight scales, xp (kc/2, 6) pairs and xs (kc/32, 6) scales of the tile.
Q16_INLINE void tile_kernel(int mr, int64_t kc, const int32_t *xp, const float *xs, const int32_t *wp, const float *ws,
                            float *c, int64_t c_stride) {
    __m512 acc[MR][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < kc / GLMK_QK; b++) {
        __m512i dot[MR][2];
        for (int i = 0; i < mr; i++) dot[i][0] = dot[i][1] = _mm512_setzero_si512();
        const int32_t *wb = wp + b * (GLMK_QK / 2) * NR, *xb = xp + b * (GLMK_QK / 2) * MR;
        for (int p = 0; p < GLMK_QK / 2; p++) {
            const __m512i w0 = _mm512_loadu_si512(wb + p * NR), w1 = _mm512_loadu_si512(wb + p * NR + 16);
            for (int i = 0; i < mr; i++) {
                const __m512i x = _mm512_set1_epi32(xb[p * MR + i]);
                dot[i][0] = _mm512_dpwssd_epi32(dot[i][0], x, w0);
                dot[i][1] = _mm512_dpwssd_epi32(dot[i][1], x, w1);
            }
        }
        const __m512 s0 = _mm512_loadu_ps(ws + b * NR), s1 = _mm512_loadu_ps(ws + b * NR + 16);
        for (int i = 0; i < mr; i++) {
            const __m512 sx = _mm512_set1_ps(xs[b * MR + i]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][0]), _mm512_mul_ps(s0, sx), acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][1]), _mm512_mul_ps(s1, sx), acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_storeu_ps(c + i * c_stride, _mm512_add_ps(acc[i][0], _mm512_loadu_ps(c + i * c_stride)));
        _mm512_storeu_ps(c + i * c_stride + 16, _mm512_add_ps(acc[i][1], _mm512_loadu_ps(c + i * c_stride + 16)));
    }
}

#define Q16_CASE(n) case n: tile_kernel(n, kc, xp, xs, wp, ws, c, c_stride); break;

__attribute__((target(Q16_TARGET))) static void tile(int mr, int64_t kc, const int32_t *xp, const float *xs, const int32_t *wp,
                                                     const float *ws, float *c, int64_t c_stride) {
    switch (mr) {
    Q16_CASE(6) Q16_CASE(5) Q16_CASE(4) Q16_CASE(3) Q16_CASE(2)
    default: tile_kernel(1, kc, xp, xs, wp, ws, c, c_stride); break;
    }
}

/// Y[:, n0 : n0 + 32) += every token's K-block [k0, k0 + kc) against the panel's rows.
__attribute__((target(Q16_TARGET))) static void panel(float *y, int64_t y_stride, const glmk_matrix *w, const int32_t *xpack,
                                                      const float *xscales, int64_t m, int64_t n0, int64_t k0, int64_t kc,
                                                      uint8_t *scratch) {
    const int64_t nr = w->rows - n0 < NR ? w->rows - n0 : NR, pairs = w->cols / 2, blocks = w->cols / GLMK_QK;
    int16_t *rows = (int16_t *)scratch;
    int32_t *wp = (int32_t *)(scratch + GLMK_WS_ROUND((size_t)(NR * KC) * sizeof(int16_t)));
    float *ws = (float *)((uint8_t *)wp + GLMK_WS_ROUND((size_t)(NR * KC) * sizeof(int16_t)));
    for (int64_t j = 0; j < NR; j++) {
        if (j < nr) {
            unpack_row(rows + j * KC, ws + j, NR, w, n0 + j, k0, kc);
        } else {
            memset(rows + j * KC, 0, (size_t)kc * sizeof(int16_t));
            for (int64_t b = 0; b < kc / GLMK_QK; b++) ws[b * NR + j] = 0.0f;
        }
    }
    // (32 rows, kc/2 pairs) -> (kc/2 pairs, 32 rows): the pairs move as 32-bit values
    for (int64_t p = 0; p < kc / 2; p += 8)
        for (int64_t j = 0; j < NR; j += 8)
            glmk_transpose8x8((float *)(wp + p * NR + j), NR, (const float *)(rows + j * KC) + p, KC / 2);
    float edge[MR * NR];
    for (int64_t t = 0; t < m; t += MR) {
        const int mr = (int)(m - t < MR ? m - t : MR);
        const int32_t *xp = xpack + (t / MR) * pairs * MR + (k0 / 2) * MR;
        const float *xs = xscales + (t / MR) * blocks * MR + (k0 / GLMK_QK) * MR;
        float *yt = y + t * y_stride + n0;
        if (nr == NR) {
            tile(mr, kc, xp, xs, wp, ws, yt, y_stride);
        } else {
            for (int i = 0; i < mr; i++)
                for (int64_t j = 0; j < NR; j++) edge[i * NR + j] = j < nr ? yt[i * y_stride + j] : 0.0f;
            tile(mr, kc, xp, xs, wp, ws, edge, NR);
            for (int i = 0; i < mr; i++)
                for (int64_t j = 0; j < nr; j++) yt[i * y_stride + j] = edge[i * NR + j];
        }
    }
}

glmk_status glmk_matmul_q16_avx512(float *y, int64_t y_stride, const glmk_matrix *w, const float *x, int64_t x_stride,
                                   int64_t m, const float *bias, glmk_workspace ws) {
    const glmk_status status = glmk_check_product(y, w, x);
    if (status != GLMK_OK) return status;
    if (m <= 0 || y_stride < w->rows || x_stride < w->cols) return GLMK_ERR_INVALID_ARGUMENT;
    if (!supported(w) || !glmk_matmul_q8_fast_available()) return GLMK_ERR_UNSUPPORTED;
    const int64_t tiles = (m + MR - 1) / MR, blocks = w->cols / GLMK_QK, panels = (w->rows + NR - 1) / NR, kc = kc_of(w);
    const int threads = glmk_workspace_threads();
    size_t shared, per_thread;
    piece_bytes(w, m, &shared, &per_thread);
    glmk_arena arena = glmk_arena_of(ws);
    int32_t *xpack = glmk_arena_take(&arena, GLMK_WS_ROUND((size_t)(tiles * MR * w->cols) * sizeof(int16_t)));
    float *xscales = glmk_arena_take(&arena, GLMK_WS_ROUND((size_t)(tiles * blocks * MR) * sizeof(float)));
    uint8_t *thread_scratch = glmk_arena_take(&arena, (size_t)threads * per_thread);
    if (!xpack || !xscales || !thread_scratch) return GLMK_ERR_INVALID_ARGUMENT;
#pragma omp parallel if (m * w->rows * w->cols >= GLMK_PARALLEL_MIN_WORK) num_threads(threads)
    {
        uint8_t *scratch = thread_scratch + (size_t)omp_get_thread_num() * per_thread;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles * MR; t++) {
            int32_t *xp = xpack + (t / MR) * (w->cols / 2) * MR;
            float *xs = xscales + (t / MR) * blocks * MR;
            if (t < m) {
                quantize_row(xp, xs, x + t * x_stride, w->cols, (int)(t % MR));
            } else { // rows past m: zeros with scale 0
                for (int64_t p = 0; p < w->cols / 2; p++) xp[p * MR + t % MR] = 0;
                for (int64_t b = 0; b < blocks; b++) xs[b * MR + t % MR] = 0.0f;
            }
            for (int64_t n = 0; n < w->rows && t < m; n++) y[t * y_stride + n] = bias ? bias[n] : 0.0f;
        }
        for (int64_t k0 = 0; k0 < w->cols; k0 += kc) {
            const int64_t kb = w->cols - k0 < kc ? w->cols - k0 : kc;
#pragma omp for schedule(static)
            for (int64_t p = 0; p < panels; p++) panel(y, y_stride, w, xpack, xscales, m, p * NR, k0, kb, scratch);
        }
    }
    return GLMK_OK;
}

#endif
