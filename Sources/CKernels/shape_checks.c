/*
 * shape_checks.c — the argument checks of the attention and RoPE kernels,
 * shared by their scalar and SIMD versions (the products' and dequantize's
 * checks live with the weight types they depend on, in weight_types.c).
 */
#include "internal.h"

glmk_status glmk_check_attention(const float *out, const float *q, const void *k, const void *v,
                                 const glmk_attention_shape *s) {
    if (!out || !q || !k || !v || !s) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->queries <= 0 || s->keys <= 0 || s->heads <= 0 || s->head_dim <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->head_dim > GLMK_MAX_HEAD_DIM) return GLMK_ERR_UNSUPPORTED;
    if (s->q_head_stride < s->head_dim || s->kv_head_stride < s->head_dim || s->out_head_stride < s->head_dim)
        return GLMK_ERR_INVALID_ARGUMENT;
    if (s->q_token_stride <= 0 || s->kv_token_stride <= 0 || s->out_token_stride <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->first_query_pos < 0 || s->bidirectional_len < 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->kv_f16 != 0 && s->kv_f16 != 1) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->kv_group < 0 || (s->kv_group > 1 && s->heads % s->kv_group != 0)) return GLMK_ERR_INVALID_ARGUMENT;
    return GLMK_OK;
}

glmk_status glmk_check_rope(const float *x, const glmk_rope_shape *s, const int32_t *positions,
                            const int32_t *block_positions, const float *inv_freq) {
    if (!x || !s || !positions || !inv_freq) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->tokens <= 0 || s->heads <= 0 || s->head_dim <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->head_dim > GLMK_MAX_HEAD_DIM) return GLMK_ERR_UNSUPPORTED;
    if (s->interleaved_dim < 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->interleaved_dim > 0) {
        // pairs of the leading interleaved_dim values: an even count inside the head, 1D only
        if (s->two_d || s->interleaved_dim % 2 != 0 || s->interleaved_dim > s->head_dim) return GLMK_ERR_UNSUPPORTED;
    } else if (s->head_dim % (s->two_d ? 4 : 2) != 0) {
        // rotate-half needs an even rotary dimension: head_dim (1D) or head_dim / 2 (2D)
        return GLMK_ERR_UNSUPPORTED;
    }
    if (s->two_d && !block_positions) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->head_stride < s->head_dim || s->token_stride <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->pair_offset < 0 || (s->pair_offset > 0 && s->pair_offset < s->head_dim)) return GLMK_ERR_INVALID_ARGUMENT;
    return GLMK_OK;
}
