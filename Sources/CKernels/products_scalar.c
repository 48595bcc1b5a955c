/*
 * products_scalar.c — the reference weight x activation products: one weight
 * read at a time through `weight_at`, sums in double. Slow and obviously right;
 * every SIMD product is tested against these.
 */
#include "internal.h"

/// W[row, k] as FP32, for every weight type.
static float weight_at(const glmk_matrix *w, int64_t row, int64_t k) {
    const uint8_t *r = glmk_row_ptr(w, row);
    switch (w->type) {
    case GLMK_TYPE_F32: return ((const float *)r)[k];
    case GLMK_TYPE_F16: return glmk_fp16_to_fp32(((const uint16_t *)r)[k]);
    case GLMK_TYPE_Q8_0: {
        const glmk_block_q8_0 *b = (const glmk_block_q8_0 *)r + k / GLMK_QK;
        return glmk_fp16_to_fp32(b->d) * (float)b->qs[k % GLMK_QK];
    }
    case GLMK_TYPE_Q4_0: {
        const glmk_block_q4_0 *b = (const glmk_block_q4_0 *)r + k / GLMK_QK;
        const int j = (int)(k % GLMK_QK);
        const int q = j < GLMK_QK / 2 ? (b->qs[j] & 0x0F) : (b->qs[j - GLMK_QK / 2] >> 4);
        return glmk_fp16_to_fp32(b->d) * (float)(q - 8);
    }
    case GLMK_TYPE_Q4_ROW:
    case GLMK_TYPE_Q4_GROUP:
        return glmk_q4_scale(w, row, k) * (float)glmk_q4_at(r, k);
    default:
        return 0.0f;
    }
}

float glmk_dot_row_scalar(const glmk_matrix *w, int64_t row, const float *x) {
    double sum = 0.0;
    for (int64_t k = 0; k < w->cols; k++) sum += (double)weight_at(w, row, k) * (double)x[k];
    return (float)sum;
}

glmk_status glmk_dequantize_row_scalar(float *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t count) {
    const glmk_status status = glmk_check_dequantize(out, w, row, k0, count);
    if (status != GLMK_OK) return status;
    for (int64_t i = 0; i < count; i++) out[i] = weight_at(w, row, k0 + i);
    return GLMK_OK;
}

glmk_status glmk_matvec_scalar(float *y, const glmk_matrix *w, const float *x, const float *bias) {
    const glmk_status status = glmk_check_product(y, w, x);
    if (status != GLMK_OK) return status;
    for (int64_t n = 0; n < w->rows; n++) y[n] = glmk_dot_row_scalar(w, n, x) + (bias ? bias[n] : 0.0f);
    return GLMK_OK;
}

glmk_status glmk_matmul_scalar(float *y, int64_t y_stride, const glmk_matrix *w, const float *x,
                               int64_t x_stride, int64_t m, const float *bias, glmk_workspace ws) {
    (void)ws;
    const glmk_status status = glmk_check_product(y, w, x);
    if (status != GLMK_OK) return status;
    if (m <= 0 || y_stride < w->rows || x_stride < w->cols) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t t = 0; t < m; t++) {
        const glmk_status s = glmk_matvec_scalar(y + t * y_stride, w, x + t * x_stride, bias);
        if (s != GLMK_OK) return s;
    }
    return GLMK_OK;
}

glmk_status glmk_embedding_scalar(float *out, const glmk_matrix *table, const int32_t *ids, int64_t count) {
    const glmk_status status = glmk_check_embedding(out, table, ids, count);
    if (status != GLMK_OK) return status;
    for (int64_t t = 0; t < count; t++)
        for (int64_t k = 0; k < table->cols; k++) out[t * table->cols + k] = weight_at(table, ids[t], k);
    return GLMK_OK;
}
