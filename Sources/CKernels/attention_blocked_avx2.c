/*
 * attention_blocked_avx2.c — prefill attention, 16 queries of one head at a
 * time, so each key and value row read from memory serves 16 queries instead
 * of one (the one-query kernel re-reads the whole K/V of a head per query,
 * which at long contexts no longer fits in L2).
 *
 * Per key tile of 64, in FP32, with the same online softmax as attention_avx2.c:
 *   S^T (keys, 16 queries) = K_tile · (scale · Q)^T — a 6-key x 16-query
 *       register tile: 6 key broadcasts and 2 loads of the packed Q^T per 12 FMAs;
 *   masking, the running max, exp and the row sums run across the 16 queries
 *       as vectors (queries are the lanes);
 *   O^T (d, 16) += V_tile^T · P^T — a 6-dimension x 16-query register tile, so
 *       the outputs keep queries in lanes too and the softmax rescale is one
 *       multiply per row.
 * Each tile holds 12 accumulators, 2 operands and a broadcast: 15 of AVX2's 16
 * registers (a 4 x 24 tile needs all 16 and the compiler spills). Eight blocks
 * (128 queries) share each K/V tile, copied once into contiguous rows.
 * Masked scores become exactly zero weights, as the reference's -10000 does.
 */
#include "internal.h"
#include "simd_avx2.h"
#include <math.h>
#include <stdlib.h>

#if GLMK_X86

enum { QB = 16, QV = QB / 8, KT = 64, MR = 6 };

/// st (mr keys, 16) = k rows (mr, d) · qt (d, 16).
GLMK_AVX2_INLINE void score_rows(int mr, const float *k, int64_t k_stride, const float *qt, int64_t d, float *st) {
    __m256 acc[MR][QV];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < QV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m256 b[QV];
        for (int v = 0; v < QV; v++) b[v] = _mm256_load_ps(qt + c * QB + 8 * v);
        for (int i = 0; i < mr; i++) {
            const __m256 a = _mm256_broadcast_ss(k + i * k_stride + c);
            for (int v = 0; v < QV; v++) acc[i][v] = _mm256_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < QV; v++) _mm256_store_ps(st + i * QB + 8 * v, acc[i][v]);
}

/// ot (mr dims from c, 16) += vt[:, c ..] (kt keys, mr dims)^T · p (kt, 16).
GLMK_AVX2_INLINE void weighted_values(int mr, int64_t kt, const float *p, const float *vt, int64_t d, float *ot) {
    __m256 acc[MR][QV];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < QV; v++) acc[i][v] = _mm256_load_ps(ot + i * QB + 8 * v);
    for (int64_t j = 0; j < kt; j++) {
        __m256 b[QV];
        for (int v = 0; v < QV; v++) b[v] = _mm256_load_ps(p + j * QB + 8 * v);
        for (int i = 0; i < mr; i++) {
            const __m256 a = _mm256_broadcast_ss(vt + j * d + i);
            for (int v = 0; v < QV; v++) acc[i][v] = _mm256_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < QV; v++) _mm256_store_ps(ot + i * QB + 8 * v, acc[i][v]);
}

// mr is a literal at every call so the loops unroll and the accumulators stay in registers.
#define GLMK_BY_ROWS(call, mr) \
    switch (mr) { case 6: call(6); break; case 5: call(5); break; case 4: call(4); break; \
                  case 3: call(3); break; case 2: call(2); break; default: call(1); break; }

enum { SUB = 8 }; // query blocks sharing each packed K/V tile: 128 queries per pass (4: ~10% slower)

/// One 16-query block's state across the key tiles.
typedef struct {
    float qt[GLMK_MAX_HEAD_DIM * QB];   // (d, 16): scale · Q^T
    float ot[GLMK_MAX_HEAD_DIM * QB];   // (d, 16): the unnormalised outputs, transposed
    float st[KT * QB];                  // (keys, 16): scores, then weights
    __m256 run_max[QV], run_sum[QV], vis[QV];
    int64_t q0, max_visible, min_visible;
    int nq;
} query_block;

/// One thread's working set, allocated once per call: about 230 KB at d = 128, in L2.
typedef struct {
    query_block blocks[SUB];
    float kt[KT * GLMK_MAX_HEAD_DIM];   // (keys, d): the K tile, contiguous
    float vt[KT * GLMK_MAX_HEAD_DIM];   // (keys, d): the V tile, contiguous
} block_scratch;

/// Packs queries q0 .. q0 + nq - 1 (nq <= 16) of head h and resets the softmax state.
GLMK_AVX2 static void block_begin(query_block *b, const float *q, const glmk_attention_shape *s, int64_t h, int64_t q0, int nq) {
    const int64_t d = s->head_dim;
    float visible[QB] __attribute__((aligned(32)));                  // keys [0, visible) per query
    b->q0 = q0;
    b->nq = nq;
    b->max_visible = 0;
    b->min_visible = s->keys;
    for (int i = 0; i < QB; i++) {
        int64_t vis = s->keys;
        if (i < nq) {
            vis = glmk_visible_keys(s, s->first_query_pos + q0 + i);
        }
        visible[i] = (float)vis;
        b->max_visible = vis > b->max_visible ? vis : b->max_visible;
        b->min_visible = vis < b->min_visible ? vis : b->min_visible;
        const float *qi = q + (q0 + i) * s->q_token_stride + h * s->q_head_stride;
        for (int64_t c = 0; c < d; c++) b->qt[c * QB + i] = i < nq ? qi[c] * s->scale : 0.0f; // padding lanes score 0
    }
    memset(b->ot, 0, sizeof(float) * (size_t)(QB * d));
    for (int v = 0; v < QV; v++) {
        b->run_max[v] = _mm256_set1_ps(-INFINITY);
        b->run_sum[v] = _mm256_setzero_ps();
        b->vis[v] = _mm256_load_ps(visible + 8 * v);
    }
}

/// Keys j0 .. j0 + kt - 1 for one block: kt (kt, d) and vt (kt, d) are the packed tiles.
GLMK_AVX2 static void block_tile(query_block *b, int64_t j0, int64_t kt, const float *ktile, const float *vt, int64_t d) {
    float *qt = b->qt, *ot = b->ot, *st = b->st;
    for (int64_t j = 0; j < kt; j += MR) {
        const int mr = (int)(kt - j < MR ? kt - j : MR);
#define SCORE(n) score_rows(n, ktile + j * d, d, qt, d, st + j * QB)
        GLMK_BY_ROWS(SCORE, mr)
#undef SCORE
    }
    const int masked = j0 + kt > b->min_visible;
    __m256 tile_max[QV];
    for (int v = 0; v < QV; v++) tile_max[v] = _mm256_set1_ps(-INFINITY);
    for (int64_t j = 0; j < kt; j++) {
        for (int v = 0; v < QV; v++) {
            __m256 sc = _mm256_load_ps(st + j * QB + 8 * v);
            if (masked) { // key j0 + j is hidden from queries whose visible count is <= it
                const __m256 hidden = _mm256_cmp_ps(b->vis[v], _mm256_set1_ps((float)(j0 + j)), _CMP_LE_OQ);
                sc = _mm256_blendv_ps(sc, _mm256_set1_ps(-INFINITY), hidden);
                _mm256_store_ps(st + j * QB + 8 * v, sc);
            }
            tile_max[v] = _mm256_max_ps(tile_max[v], sc);
        }
    }
    // key 0 is visible to every query, so after the first tile every max is finite
    __m256 new_max[QV], tile_sum[QV], correction[QV];
    for (int v = 0; v < QV; v++) {
        new_max[v] = _mm256_max_ps(b->run_max[v], tile_max[v]);
        tile_sum[v] = _mm256_setzero_ps();
        // exp(-inf) on the first tile: the clamped exp gives ~1e-38, times a zero sum and zero outputs
        correction[v] = glmk_exp_nonpositive256(_mm256_sub_ps(b->run_max[v], new_max[v]));
    }
    for (int64_t j = 0; j < kt; j++) {
        for (int v = 0; v < QV; v++) {
            const __m256 sc = _mm256_load_ps(st + j * QB + 8 * v);
            __m256 p = glmk_exp_nonpositive256(_mm256_sub_ps(sc, new_max[v]));
            p = _mm256_and_ps(p, _mm256_cmp_ps(sc, _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ)); // masked: exactly 0
            _mm256_store_ps(st + j * QB + 8 * v, p);
            tile_sum[v] = _mm256_add_ps(tile_sum[v], p);
        }
    }
    for (int v = 0; v < QV; v++) {
        b->run_sum[v] = _mm256_fmadd_ps(b->run_sum[v], correction[v], tile_sum[v]);
        b->run_max[v] = new_max[v];
    }
    // queries are lanes of ot: the rescale is one multiply per row
    for (int64_t c = 0; c < d; c++)
        for (int v = 0; v < QV; v++) _mm256_store_ps(ot + c * QB + 8 * v, _mm256_mul_ps(_mm256_load_ps(ot + c * QB + 8 * v), correction[v]));
    for (int64_t c = 0; c < d; c += MR) {
        const int mr = (int)(d - c < MR ? d - c : MR);
#define VALUES(n) weighted_values(n, kt, st, vt + c, d, ot + c * QB)
        GLMK_BY_ROWS(VALUES, mr)
#undef VALUES
    }
}

GLMK_AVX2 static void block_end(const query_block *b, float *out, const glmk_attention_shape *s, int64_t h) {
    const int64_t d = s->head_dim;
    float inv[QB] __attribute__((aligned(32)));
    for (int v = 0; v < QV; v++) _mm256_store_ps(inv + 8 * v, _mm256_div_ps(_mm256_set1_ps(1.0f), b->run_sum[v]));
    for (int i = 0; i < b->nq; i++) {
        float *o = out + (b->q0 + i) * s->out_token_stride + h * s->out_head_stride;
        for (int64_t c = 0; c < d; c++) o[c] = b->ot[c * QB + i] * inv[i];
    }
}

/// d values of a K or V row into a contiguous float tile row (widened from fp16 when f16).
GLMK_AVX2 static void copy_kv_row(float *dst, const void *base, int64_t i, int64_t d, int f16) {
    if (!f16) {
        memcpy(dst, (const float *)base + i, sizeof(float) * (size_t)d);
        return;
    }
    const uint16_t *src = (const uint16_t *)base + i;
    int64_t c = 0;
    for (; c + 8 <= d; c += 8) _mm256_storeu_ps(dst + c, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + c))));
    for (; c < d; c++) dst[c] = glmk_fp16_to_fp32(src[c]);
}

/// Queries q0 .. q0 + nq - 1 (nq <= 128) of head h: up to eight 16-query blocks,
/// each K/V tile copied once out of the cache's strided rows (which are a
/// multiple of 4 KB apart, so a column of them falls in one L1 set) and used
/// by every block that sees it.
GLMK_AVX2 static void attend_blocks(float *out, const float *q, const void *k, const void *v,
                                    const glmk_attention_shape *s, int64_t h, int64_t q0, int64_t nq, block_scratch *scratch) {
    const int64_t d = s->head_dim;
    const int count = (int)((nq + QB - 1) / QB);
    int64_t max_visible = 0;
    for (int i = 0; i < count; i++) {
        const int64_t b0 = q0 + i * QB;
        block_begin(&scratch->blocks[i], q, s, h, b0, (int)(q0 + nq - b0 < QB ? q0 + nq - b0 : QB));
        if (scratch->blocks[i].max_visible > max_visible) max_visible = scratch->blocks[i].max_visible;
    }
    const int64_t head = glmk_kv_head(s, h) * s->kv_head_stride;
    for (int64_t j0 = 0; j0 < max_visible; j0 += KT) {
        const int64_t kt = max_visible - j0 < KT ? max_visible - j0 : KT;
        for (int64_t j = 0; j < kt; j++) {
            copy_kv_row(scratch->kt + j * d, k, head + (j0 + j) * s->kv_token_stride, d, s->kv_f16);
            copy_kv_row(scratch->vt + j * d, v, head + (j0 + j) * s->kv_token_stride, d, s->kv_f16);
        }
        for (int i = 0; i < count; i++) {
            query_block *b = &scratch->blocks[i];
            if (j0 >= b->max_visible) continue; // every key of the tile is hidden from this block
            const int64_t bkt = b->max_visible - j0 < kt ? b->max_visible - j0 : kt;
            block_tile(b, j0, bkt, scratch->kt, scratch->vt, d);
        }
    }
    for (int i = 0; i < count; i++) block_end(&scratch->blocks[i], out, s, h);
}

int glmk_attention_blocked_applies(const glmk_attention_shape *s) {
    return s->queries >= 8 && s->head_dim % 16 == 0;
}

size_t glmk_attention_blocked_avx2_workspace(const glmk_attention_shape *s) {
    (void)s;
    return (size_t)glmk_workspace_threads() * GLMK_WS_ROUND(sizeof(block_scratch));
}

glmk_status glmk_attention_blocked_avx2(float *out, const float *q, const void *k, const void *v,
                                        const glmk_attention_shape *s, glmk_arena *arena) {
    const int64_t span = QB * SUB, spans = (s->queries + span - 1) / span, pairs = spans * s->heads;
    const int threads = glmk_workspace_threads();
    uint8_t *scratches = glmk_arena_take(arena, (size_t)threads * GLMK_WS_ROUND(sizeof(block_scratch)));
    if (!scratches) return GLMK_ERR_INVALID_ARGUMENT; // the workspace is smaller than glmk_workspace_bytes says
#pragma omp parallel if (s->queries * s->keys * s->head_dim * s->heads >= GLMK_PARALLEL_MIN_WORK) num_threads(threads)
    {
        block_scratch *scratch = (block_scratch *)(scratches + (size_t)omp_get_thread_num() * GLMK_WS_ROUND(sizeof(block_scratch)));
        // static, 1 interleaves the short early spans and the long late ones (causal
        // work grows with the position) across threads; see attention_avx2.c on dynamic
#pragma omp for schedule(static, 1)
        for (int64_t p = 0; p < pairs; p++) {
            const int64_t b = p / s->heads, h = p % s->heads;
            const int64_t q0 = b * span;
            attend_blocks(out, q, k, v, s, h, q0, s->queries - q0 < span ? s->queries - q0 : span, scratch);
        }
    }
    return GLMK_OK;
}

#endif
