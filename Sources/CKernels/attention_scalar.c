/*
 * attention_scalar.c — reference multi-head attention with GLM's mask, in FP32
 * softmax, computed directly: all scores of a query, the max, the exponentials,
 * the weighted sum of V. Keys a query may not see are skipped, which is the
 * reference's masked_fill(-10000) followed by softmax to within exp(-10000).
 * A query that sees no key at all (only possible with a hand-made shape)
 * returns zeros, not the reference's uniform average and never NaN.
 */
#include "internal.h"
#include <math.h>

static int key_visible(const glmk_attention_shape *s, int64_t key, int64_t query_pos) {
    return key < s->bidirectional_len || key <= query_pos;
}

glmk_status glmk_attention_scalar(float *out, const float *q, const void *k, const void *v,
                                  const glmk_attention_shape *s, glmk_workspace ws) {
    (void)ws;
    const glmk_status status = glmk_check_attention(out, q, k, v, s);
    if (status != GLMK_OK) return status;
    const int64_t d = s->head_dim;
    for (int64_t i = 0; i < s->queries; i++) {
        const int64_t pos = s->first_query_pos + i;
        for (int64_t h = 0; h < s->heads; h++) {
            const float *qi = q + i * s->q_token_stride + h * s->q_head_stride;
            float *o = out + i * s->out_token_stride + h * s->out_head_stride;
            double max = -INFINITY;
            for (int64_t j = 0; j < s->keys; j++) {
                if (!key_visible(s, j, pos)) continue;
                const int64_t kj = j * s->kv_token_stride + glmk_kv_head(s, h) * s->kv_head_stride;
                double dot = 0.0;
                for (int64_t c = 0; c < d; c++) dot += (double)qi[c] * glmk_kv_at(k, s->kv_f16, kj + c);
                max = fmax(max, dot * s->scale);
            }
            double acc[GLMK_MAX_HEAD_DIM] = {0};
            double total = 0.0;
            for (int64_t j = 0; j < s->keys && max > -INFINITY; j++) {
                if (!key_visible(s, j, pos)) continue;
                const int64_t kj = j * s->kv_token_stride + glmk_kv_head(s, h) * s->kv_head_stride;
                double dot = 0.0;
                for (int64_t c = 0; c < d; c++) dot += (double)qi[c] * glmk_kv_at(k, s->kv_f16, kj + c);
                const double p = exp(dot * s->scale - max);
                total += p;
                for (int64_t c = 0; c < d; c++) acc[c] += p * glmk_kv_at(v, s->kv_f16, kj + c);
            }
            for (int64_t c = 0; c < d; c++) o[c] = total > 0.0 ? (float)(acc[c] / total) : 0.0f;
        }
    }
    return GLMK_OK;
}
