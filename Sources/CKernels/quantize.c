/*
 * quantize.c — offline weight quantizers (scalar: they run once, at conversion).
 *  - INT4 row / group: GLM-130B `quantization/layers.py` (absmax / 7, fp16 math,
 *    round half to even, q in [-7, 7]) and the packing of `cuda/quantization.cu`
 *    (even column in the high nibble).
 *  - Q8_0 / Q4_0: the GGUF block layouts with ggml's reference rounding rules.
 */
#include "internal.h"
#include <math.h>

glmk_status glmk_pack_int4(uint8_t *dst, const int8_t *src, int64_t count) {
    if (!dst || !src || count < 0) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t i = 0; i < count; i += 2) {
        const uint8_t high = (uint8_t)(src[i] & 0x0F);
        const uint8_t low = (i + 1 < count) ? (uint8_t)(src[i + 1] & 0x0F) : 0;
        dst[i / 2] = (uint8_t)((high << 4) | low);
    }
    return GLMK_OK;
}

glmk_status glmk_unpack_int4(int8_t *dst, const uint8_t *src, int64_t count) {
    if (!dst || !src || count < 0) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t i = 0; i < count; i++) dst[i] = (int8_t)glmk_q4_at(src, i);
    return GLMK_OK;
}

static float round_fp16(float x) { return glmk_fp16_to_fp32(glmk_fp32_to_fp16(x)); }

/// One INT4 group: the reference casts W to fp16 first and divides in fp16.
/// An fp32 division of two fp16 values rounded once more to fp16 equals the fp16
/// division (24 >= 2 * 11 + 2 bits, so the double rounding is innocuous).
static void quantize_q4_group(uint8_t *row, uint16_t *scale_out, const float *src, int64_t k0, int64_t count) {
    float amax = 0.0f;
    for (int64_t i = 0; i < count; i++) amax = fmaxf(amax, fabsf(round_fp16(src[k0 + i])));
    const uint16_t scale16 = glmk_fp32_to_fp16(amax / 7.0f);
    const float scale = glmk_fp16_to_fp32(scale16);
    *scale_out = scale16;
    for (int64_t i = 0; i < count; i++) {
        const int64_t k = k0 + i;
        int q = 0;
        if (scale > 0.0f) {
            q = (int)rintf(round_fp16(round_fp16(src[k]) / scale)); // rintf: half to even
            q = q < -7 ? -7 : (q > 7 ? 7 : q);
        }
        const uint8_t nibble = (uint8_t)(q & 0x0F);
        uint8_t *byte = &row[k >> 1];
        *byte = (k & 1) ? (uint8_t)((*byte & 0xF0) | nibble) : (uint8_t)((*byte & 0x0F) | (nibble << 4));
    }
}

static void quantize_q8_0_row(glmk_block_q8_0 *blocks, const float *src, int64_t cols) {
    for (int64_t b = 0; b < cols / GLMK_QK; b++) {
        const float *x = src + b * GLMK_QK;
        float amax = 0.0f;
        for (int i = 0; i < GLMK_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = glmk_fp32_to_fp16(d);
        for (int i = 0; i < GLMK_QK; i++) blocks[b].qs[i] = (int8_t)roundf(x[i] * id);
    }
}

static void quantize_q4_0_row(glmk_block_q4_0 *blocks, const float *src, int64_t cols) {
    for (int64_t b = 0; b < cols / GLMK_QK; b++) {
        const float *x = src + b * GLMK_QK;
        // ggml keeps the sign of the largest-magnitude value so that it maps to -8 exactly.
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < GLMK_QK; i++) {
            if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = glmk_fp32_to_fp16(d);
        for (int i = 0; i < GLMK_QK / 2; i++) {
            int lo = (int)(x[i] * id + 8.5f), hi = (int)(x[i + GLMK_QK / 2] * id + 8.5f);
            lo = lo > 15 ? 15 : lo;
            hi = hi > 15 ? 15 : hi;
            blocks[b].qs[i] = (uint8_t)(lo | (hi << 4));
        }
    }
}

glmk_status glmk_quantize(const glmk_matrix *dst, void *dst_data, uint16_t *dst_scales, const float *src) {
    if (!dst || !dst_data || !src) return GLMK_ERR_INVALID_ARGUMENT;
    glmk_matrix check = *dst;
    check.data = dst_data;
    check.scales = dst_scales;
    const glmk_status status = glmk_matrix_validate(&check);
    if (status != GLMK_OK) return status;

    const int64_t per_row = glmk_scales_per_row(dst->type, dst->cols, dst->group);
    for (int64_t r = 0; r < dst->rows; r++) {
        const float *x = src + r * dst->cols;
        uint8_t *row = (uint8_t *)dst_data + r * dst->row_bytes;
        switch (dst->type) {
        case GLMK_TYPE_F32:
            memcpy(row, x, (size_t)dst->cols * sizeof(float));
            break;
        case GLMK_TYPE_F16:
            for (int64_t k = 0; k < dst->cols; k++) ((uint16_t *)row)[k] = glmk_fp32_to_fp16(x[k]);
            break;
        case GLMK_TYPE_Q8_0:
            quantize_q8_0_row((glmk_block_q8_0 *)row, x, dst->cols);
            break;
        case GLMK_TYPE_Q4_0:
            quantize_q4_0_row((glmk_block_q4_0 *)row, x, dst->cols);
            break;
        case GLMK_TYPE_Q4_ROW:
        case GLMK_TYPE_Q4_GROUP:
            memset(row, 0, (size_t)dst->row_bytes);
            for (int64_t g = 0; g < per_row; g++) {
                const int64_t k0 = g * dst->group;
                const int64_t count = dst->cols - k0 < dst->group ? dst->cols - k0 : dst->group;
                quantize_q4_group(row, &dst_scales[r * per_row + g], x, k0, count);
            }
            break;
        default:
            return GLMK_ERR_UNSUPPORTED;
        }
    }
    return GLMK_OK;
}
