/*
 * attention_avx2.c — tiled online-softmax attention (FP32) with AVX2/FMA, for
 * decode (and any shape the blocked prefill kernel does not take).
 *
 * The state of each (query, head) — running max, running sum, the output
 * accumulated so far — takes the keys a tile of ATTN_TILE at a time: scores
 * of the tile, the max and sum rescaled once per tile, V accumulated in
 * register-sized chunks. Memory is O(tile + head_dim) per query, never
 * O(sequence^2); keys past a causal query's position are never read.
 *
 * Order of work. The cache holds a key's heads side by side (48 KB per key at
 * GLM-130B's width), so one head's keys are 512-byte pieces 48 KB apart: a
 * TLB walk and a new DRAM page for every piece when a head walks all its keys
 * alone. Long contexts therefore split the keys into ranges of CHUNK_KEYS, and
 * the thread that takes a range folds a few keys at a time into every head in
 * turn, so it sweeps the range's rows in memory order; the ranges' partial
 * states then merge (the log-sum-exp combination of online softmax). The
 * ranges do not depend on the thread count, so neither do the results. Short
 * contexts and many-query shapes give each thread whole (query, head) pairs.
 */
#include "internal.h"
#include "simd_avx2.h"
#include <math.h>
#include <stdlib.h>

#if GLMK_X86

enum { ATTN_TILE = 64 };

/// 8 K or V values from element i as floats: loaded, or widened from fp16 (F16C).
GLMK_AVX2_INLINE __m256 kv_load8(const void *base, int64_t i, int f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)))
               : _mm256_loadu_ps((const float *)base + i);
}

/// a . b over head_dim, b the key at element offset `kj` of k.
GLMK_AVX2_INLINE float dot_hd(const float *a, const void *k, int64_t kj, int64_t d, int f16) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= d; c += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), kv_load8(k, kj + c, f16), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c + 8), kv_load8(k, kj + c + 8, f16), acc1);
    }
    for (; c + 8 <= d; c += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), kv_load8(k, kj + c, f16), acc0);
    float sum = glmk_hsum256(_mm256_add_ps(acc0, acc1));
    for (; c < d; c++) sum += a[c] * glmk_kv_at(k, f16, kj + c);
    return sum;
}

/// One (query, head)'s online-softmax state: acc holds head_dim floats (32-byte aligned).
typedef struct {
    float *acc;
    float max, sum;
} attn_state;

/// Folds keys j0 .. j0 + tile - 1 (tile <= ATTN_TILE) into the state of query qi, head h.
/// f16 is a constant in each of the two callers below, so each K/V format has its own loop.
GLMK_AVX2_INLINE void fold_tile_kv(attn_state *st, const float *qi, const void *k, const void *v,
                                   const glmk_attention_shape *s, int64_t h, int64_t j0, int64_t tile, int f16) {
    const int64_t d = s->head_dim;
    float scores[ATTN_TILE] __attribute__((aligned(32)));
    float tile_max = -INFINITY;
    for (int64_t j = 0; j < tile; j++) {
        scores[j] = dot_hd(qi, k, (j0 + j) * s->kv_token_stride + glmk_kv_head(s, h) * s->kv_head_stride, d, f16) * s->scale;
        tile_max = fmaxf(tile_max, scores[j]);
    }
    const float new_max = fmaxf(st->max, tile_max);
    // rescale what was accumulated under the old max (exp(-inf) = 0 on the first tile)
    const float correction = expf(st->max - new_max);
    int64_t j = 0;
    __m256 vsum = _mm256_setzero_ps();
    for (; j + 8 <= tile; j += 8) {
        const __m256 p = glmk_exp_nonpositive256(_mm256_sub_ps(_mm256_load_ps(scores + j), _mm256_set1_ps(new_max)));
        _mm256_store_ps(scores + j, p);
        vsum = _mm256_add_ps(vsum, p);
    }
    float tile_sum = glmk_hsum256(vsum);
    for (; j < tile; j++) {
        scores[j] = expf(scores[j] - new_max);
        tile_sum += scores[j];
    }
    st->sum = st->sum * correction + tile_sum;
    st->max = new_max;

    float *acc = st->acc;
    const __m256 vcorr = _mm256_set1_ps(correction);
    int64_t c = 0;
    // 64 dimensions at a time: eight independent FMA chains per key instead of
    // one chain per 8 dimensions, whose 4-cycle latency bound the loop
    for (; c + 64 <= d; c += 64) {
        __m256 a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm256_mul_ps(_mm256_load_ps(acc + c + 8 * i), vcorr);
        for (int64_t jj = 0; jj < tile; jj++) {
            const int64_t vj = (j0 + jj) * s->kv_token_stride + glmk_kv_head(s, h) * s->kv_head_stride + c;
            const __m256 p = _mm256_set1_ps(scores[jj]);
            for (int i = 0; i < 8; i++) a[i] = _mm256_fmadd_ps(p, kv_load8(v, vj + 8 * i, f16), a[i]);
        }
        for (int i = 0; i < 8; i++) _mm256_store_ps(acc + c + 8 * i, a[i]);
    }
    for (; c + 8 <= d; c += 8) {
        __m256 a = _mm256_mul_ps(_mm256_load_ps(acc + c), vcorr);
        for (int64_t jj = 0; jj < tile; jj++) {
            const int64_t vj = (j0 + jj) * s->kv_token_stride + glmk_kv_head(s, h) * s->kv_head_stride;
            a = _mm256_fmadd_ps(_mm256_set1_ps(scores[jj]), kv_load8(v, vj + c, f16), a);
        }
        _mm256_store_ps(acc + c, a);
    }
    for (; c < d; c++) {
        float a = acc[c] * correction;
        for (int64_t jj = 0; jj < tile; jj++)
            a += scores[jj] * glmk_kv_at(v, f16, (j0 + jj) * s->kv_token_stride + glmk_kv_head(s, h) * s->kv_head_stride + c);
        acc[c] = a;
    }
}

GLMK_AVX2 static void fold_tile_f32(attn_state *st, const float *qi, const void *k, const void *v,
                                    const glmk_attention_shape *s, int64_t h, int64_t j0, int64_t tile) {
    fold_tile_kv(st, qi, k, v, s, h, j0, tile, 0);
}

GLMK_AVX2 static void fold_tile_f16(attn_state *st, const float *qi, const void *k, const void *v,
                                    const glmk_attention_shape *s, int64_t h, int64_t j0, int64_t tile) {
    fold_tile_kv(st, qi, k, v, s, h, j0, tile, 1);
}

static void fold_tile(attn_state *st, const float *qi, const void *k, const void *v, const glmk_attention_shape *s,
                      int64_t h, int64_t j0, int64_t tile) {
    if (s->kv_f16) fold_tile_f16(st, qi, k, v, s, h, j0, tile);
    else fold_tile_f32(st, qi, k, v, s, h, j0, tile);
}

static void state_reset(attn_state *st, int64_t d) {
    memset(st->acc, 0, (size_t)d * sizeof(float));
    st->max = -INFINITY;
    st->sum = 0.0f;
}

/// o = the normalised output of one state (zeros when no key was visible).
static void state_write(float *o, const attn_state *st, int64_t d) {
    const float inv = st->sum > 0.0f ? 1.0f / st->sum : 0.0f;
    for (int64_t c = 0; c < d; c++) o[c] = st->acc[c] * inv;
}

/// Output row of pair p = (query i, head h) and its query row.
static float *pair_out(float *out, const glmk_attention_shape *s, int64_t p) {
    return out + (p / s->heads) * s->out_token_stride + (p % s->heads) * s->out_head_stride;
}
static const float *pair_q(const float *q, const glmk_attention_shape *s, int64_t p) {
    return q + (p / s->heads) * s->q_token_stride + (p % s->heads) * s->q_head_stride;
}

/// Short contexts: each thread takes whole (query, head) pairs.
static glmk_status attend_by_pairs(float *out, const float *q, const void *k, const void *v,
                                   const glmk_attention_shape *s) {
    const int64_t pairs = s->queries * s->heads, d = s->head_dim;
// static, 1: dynamic scheduling in clang >= 19 calls __kmpc_dispatch_deinit, which Debian 12's libomp 14 lacks
    GLMK_PARALLEL_FOR_INTERLEAVED(p, 0, pairs, pairs * s->keys * d, {
        float acc[GLMK_MAX_HEAD_DIM] __attribute__((aligned(32)));
        attn_state st = {.acc = acc};
        state_reset(&st, d);
        const int64_t visible = glmk_visible_keys(s, s->first_query_pos + p / s->heads);
        for (int64_t j0 = 0; j0 < visible; j0 += ATTN_TILE)
            fold_tile(&st, pair_q(q, s, p), k, v, s, p % s->heads, j0, visible - j0 < ATTN_TILE ? visible - j0 : ATTN_TILE);
        state_write(pair_out(out, s, p), &st, d);
    });
    return GLMK_OK;
}

/// Keys per fold in the key-range walk: each fold reads SWEEP key rows and SWEEP
/// value rows side by side, and the prefetchers follow a few such streams well but
/// not 64. Decode over 2048 entries (kernel harness, 1 / 2 threads): 4 keys 66-68% /
/// 83-87% of the read bandwidth, 2 keys 55% / 63-80%, 8 keys 47% / 69%, 64 keys (the
/// tile of the pair walk) 35-38% / 37-44%; the pair walk itself 32% / 51%. Reading
/// every row front to back for all heads (scores, softmax, then values) reached
/// only 42-46% / 67-71%: the output accumulators then go through memory per key.
enum { SWEEP = 4 };

/// Keys per range of the key-range walk: 16 ranges over a 2048-entry cache, so up
/// to 16 threads share the work.
enum { CHUNK_KEYS = 128 };

/// Long contexts: ranges of CHUNK_KEYS keys (a thread takes a contiguous block of
/// them), every pair folding SWEEP keys in turn (memory order), then the ranges'
/// states merged per pair.
/// Whether the key-range walk serves this shape (see glmk_attention_avx2).
static int uses_key_ranges(const glmk_attention_shape *s) { return s->queries < 8 && s->keys >= 2 * CHUNK_KEYS; }

/// The key-range walk's accumulators and states, in bytes.
static void key_range_bytes(const glmk_attention_shape *s, size_t *acc, size_t *states) {
    const int64_t pairs = s->queries * s->heads, chunks = (s->keys + CHUNK_KEYS - 1) / CHUNK_KEYS;
    *acc = (size_t)(chunks * pairs * ((s->head_dim + 7) / 8 * 8)) * sizeof(float);
    *states = (size_t)(chunks * pairs) * sizeof(attn_state);
}

static glmk_status attend_by_key_ranges(float *out, const float *q, const void *k, const void *v,
                                        const glmk_attention_shape *s, glmk_arena *arena) {
    const int64_t pairs = s->queries * s->heads, d = s->head_dim;
    const int64_t stride = (d + 7) / 8 * 8; // floats per accumulator, 32-byte aligned
    const int64_t chunks = (s->keys + CHUNK_KEYS - 1) / CHUNK_KEYS;
    // state (c, p): pair p over range c
    size_t acc_bytes, state_bytes;
    key_range_bytes(s, &acc_bytes, &state_bytes);
    float *acc = glmk_arena_take(arena, acc_bytes);
    attn_state *states = glmk_arena_take(arena, state_bytes);
    if (!acc || !states) return GLMK_ERR_INVALID_ARGUMENT; // the workspace is smaller than glmk_workspace_bytes says
    // always parallel: this walk serves caches of at least two ranges
    GLMK_PARALLEL_FOR(c, 0, chunks, GLMK_PARALLEL_MIN_WORK, {
        const int64_t begin = c * CHUNK_KEYS, end = begin + CHUNK_KEYS < s->keys ? begin + CHUNK_KEYS : s->keys;
        attn_state *chunk = states + c * pairs;
        for (int64_t p = 0; p < pairs; p++) {
            chunk[p].acc = acc + (c * pairs + p) * stride;
            state_reset(&chunk[p], d);
        }
        for (int64_t j0 = begin; j0 < end; j0 += SWEEP)
            for (int64_t p = 0; p < pairs; p++) {
                const int64_t visible = glmk_visible_keys(s, s->first_query_pos + p / s->heads);
                const int64_t last = end < visible ? end : visible;
                if (j0 < last) fold_tile(&chunk[p], pair_q(q, s, p), k, v, s, p % s->heads, j0, last - j0 < SWEEP ? last - j0 : SWEEP);
            }
    });
    // merge: rescale each range's state to the common max, then normalise
    GLMK_PARALLEL_FOR(p, 0, pairs, pairs * chunks * d, {
        float top = -INFINITY;
        for (int64_t c = 0; c < chunks; c++) top = fmaxf(top, states[c * pairs + p].max);
        float merged[GLMK_MAX_HEAD_DIM];
        attn_state st = {.acc = merged, .max = top, .sum = 0.0f};
        memset(merged, 0, (size_t)d * sizeof(float));
        for (int64_t c = 0; c < chunks; c++) {
            const attn_state *part = &states[c * pairs + p];
            if (part->sum <= 0.0f) continue; // no visible key in this range
            const float w = expf(part->max - top);
            st.sum += w * part->sum;
            for (int64_t i = 0; i < d; i++) merged[i] += w * part->acc[i];
        }
        state_write(pair_out(out, s, p), &st, d);
    });
    return GLMK_OK;
}

size_t glmk_attention_avx2_workspace(const glmk_attention_shape *s) {
    if (!s || s->queries <= 0 || s->heads <= 0 || s->head_dim <= 0 || s->keys <= 0) return 0;
    if (glmk_attention_blocked_applies(s)) return glmk_attention_blocked_avx2_workspace(s);
    if (!uses_key_ranges(s)) return 0;
    size_t acc, states;
    key_range_bytes(s, &acc, &states);
    return GLMK_WS_ROUND(acc) + GLMK_WS_ROUND(states);
}

glmk_status glmk_attention_avx2(float *out, const float *q, const void *k, const void *v,
                                const glmk_attention_shape *s, glmk_workspace ws) {
    const glmk_status status = glmk_check_attention(out, q, k, v, s);
    if (status != GLMK_OK) return status;
    glmk_arena arena = glmk_arena_of(ws);
    if (glmk_attention_blocked_applies(s)) return glmk_attention_blocked_avx2(out, q, k, v, s, &arena);
    // A few queries (decode) over at least two ranges: the key-range walk (measured
    // no slower than the pair walk from 64 keys up, 1.5-2x faster at 2048). Otherwise
    // (short caches; many queries with a head dim the blocked kernel does not take)
    // whole pairs per thread. Neither choice depends on the thread count.
    if (uses_key_ranges(s)) return attend_by_key_ranges(out, q, k, v, s, &arena);
    return attend_by_pairs(out, q, k, v, s);
}

#endif
