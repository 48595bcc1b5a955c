/*
 * attention_avx2.c — tiled online-softmax attention (FP32) with AVX2/FMA.
 * For each (query, head) the keys stream by in tiles of ATTN_TILE: scores of
 * the tile, the running max and sum rescaled once per tile, V accumulated in
 * registers-sized chunks. Memory is O(tile + head_dim) per query, never
 * O(sequence^2). Keys past a causal query's position are never read.
 * This is the decode kernel (and the fallback for odd head dims); prefill
 * with 8 or more queries goes to attention_blocked_avx2.c.
 */
#include "internal.h"
#include "simd_avx2.h"
#include <math.h>

#if GLMK_X86

enum { ATTN_TILE = 64 };

GLMK_AVX2 static float dot_hd(const float *a, const float *b, int64_t d) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= d; c += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c + 8), _mm256_loadu_ps(b + c + 8), acc1);
    }
    for (; c + 8 <= d; c += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), acc0);
    float sum = glmk_hsum256(_mm256_add_ps(acc0, acc1));
    for (; c < d; c++) sum += a[c] * b[c];
    return sum;
}

GLMK_AVX2 static void attend_one(float *o, const float *qi, const float *k, const float *v,
                                 const glmk_attention_shape *s, int64_t h, int64_t pos) {
    const int64_t d = s->head_dim;
    // visible keys: [0, max(bidirectional_len, pos + 1)) clipped to the cache
    int64_t visible = pos + 1 > s->bidirectional_len ? pos + 1 : s->bidirectional_len;
    visible = visible < s->keys ? visible : s->keys;

    float acc[GLMK_MAX_HEAD_DIM] __attribute__((aligned(32)));
    float scores[ATTN_TILE] __attribute__((aligned(32)));
    memset(acc, 0, (size_t)d * sizeof(float));
    float running_max = -INFINITY, running_sum = 0.0f;

    for (int64_t j0 = 0; j0 < visible; j0 += ATTN_TILE) {
        const int64_t tile = visible - j0 < ATTN_TILE ? visible - j0 : ATTN_TILE;
        float tile_max = -INFINITY;
        for (int64_t j = 0; j < tile; j++) {
            const float *kj = k + (j0 + j) * s->kv_token_stride + h * s->kv_head_stride;
            scores[j] = dot_hd(qi, kj, d) * s->scale;
            tile_max = fmaxf(tile_max, scores[j]);
        }
        const float new_max = fmaxf(running_max, tile_max);
        // rescale what was accumulated under the old max (exp(-inf) = 0 on the first tile)
        const float correction = expf(running_max - new_max);
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
        running_sum = running_sum * correction + tile_sum;
        running_max = new_max;

        const __m256 vcorr = _mm256_set1_ps(correction);
        int64_t c = 0;
        // 64 dimensions at a time: eight independent FMA chains per key instead of
        // one chain per 8 dimensions, whose 4-cycle latency bound the loop
        for (; c + 64 <= d; c += 64) {
            __m256 a[8];
            for (int i = 0; i < 8; i++) a[i] = _mm256_mul_ps(_mm256_load_ps(acc + c + 8 * i), vcorr);
            for (int64_t jj = 0; jj < tile; jj++) {
                const float *vj = v + (j0 + jj) * s->kv_token_stride + h * s->kv_head_stride + c;
                const __m256 p = _mm256_set1_ps(scores[jj]);
                for (int i = 0; i < 8; i++) a[i] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 8 * i), a[i]);
            }
            for (int i = 0; i < 8; i++) _mm256_store_ps(acc + c + 8 * i, a[i]);
        }
        for (; c + 8 <= d; c += 8) {
            __m256 a = _mm256_mul_ps(_mm256_load_ps(acc + c), vcorr);
            for (int64_t jj = 0; jj < tile; jj++) {
                const float *vj = v + (j0 + jj) * s->kv_token_stride + h * s->kv_head_stride;
                a = _mm256_fmadd_ps(_mm256_set1_ps(scores[jj]), _mm256_loadu_ps(vj + c), a);
            }
            _mm256_store_ps(acc + c, a);
        }
        for (; c < d; c++) {
            float a = acc[c] * correction;
            for (int64_t jj = 0; jj < tile; jj++)
                a += scores[jj] * v[(j0 + jj) * s->kv_token_stride + h * s->kv_head_stride + c];
            acc[c] = a;
        }
    }
    const float inv = running_sum > 0.0f ? 1.0f / running_sum : 0.0f; // no visible key: zeros
    for (int64_t c = 0; c < d; c++) o[c] = acc[c] * inv;
}

glmk_status glmk_attention_avx2(float *out, const float *q, const float *k, const float *v,
                                const glmk_attention_shape *s) {
    const glmk_status status = glmk_check_attention(out, q, k, v, s);
    if (status != GLMK_OK) return status;
    if (glmk_attention_blocked_applies(s)) return glmk_attention_blocked_avx2(out, q, k, v, s);
    const int64_t pairs = s->queries * s->heads;
// static, 1: dynamic scheduling in clang >= 19 calls __kmpc_dispatch_deinit, which Debian 12's libomp 14 lacks
#pragma omp parallel for schedule(static, 1) if (pairs * s->keys * s->head_dim >= 65536)
    for (int64_t p = 0; p < pairs; p++) {
        const int64_t i = p / s->heads, h = p % s->heads;
        attend_one(out + i * s->out_token_stride + h * s->out_head_stride,
                   q + i * s->q_token_stride + h * s->q_head_stride, k, v, s, h, s->first_query_pos + i);
    }
    return GLMK_OK;
}

#endif
