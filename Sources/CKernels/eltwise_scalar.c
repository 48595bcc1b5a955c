/*
 * eltwise_scalar.c — reference element-wise kernels: DeepNorm residual +
 * LayerNorm, bias + GeGLU, bias + GeLU (erf and tanh forms), RoPE (1D and 2D),
 * RMSNorm with the residual add, interleaved partial RoPE (ChatGLM2/3, GLM-4),
 * written as the formulas of the GLM reference code, sums in double.
 */
#include "internal.h"
#include <math.h>

glmk_status glmk_residual_layernorm_scalar(float *out, const float *x, float alpha, const float *y,
                                           const float *gamma, const float *beta, int64_t rows, int64_t n, float eps) {
    if (!out || !x || !gamma || !beta || rows <= 0 || n <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *yr = y ? y + r * n : NULL;
        float *o = out + r * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double)(xr[i] * alpha + (yr ? yr[i] : 0.0f));
        const double mean = sum / (double)n;
        double var = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double d = (double)(xr[i] * alpha + (yr ? yr[i] : 0.0f)) - mean;
            var += d * d;
        }
        const double inv = 1.0 / sqrt(var / (double)n + (double)eps);
        for (int64_t i = 0; i < n; i++) {
            const double h = (double)(xr[i] * alpha + (yr ? yr[i] : 0.0f));
            o[i] = (float)((h - mean) * inv * (double)gamma[i] + (double)beta[i]);
        }
    }
    return GLMK_OK;
}

glmk_status glmk_residual_rmsnorm_scalar(float *out, float *x, const float *y, const float *gamma,
                                         int64_t rows, int64_t n, float eps) {
    if (!out || !x || !gamma || rows <= 0 || n <= 0 || (y && out == x)) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * n, *o = out + r * n;
        const float *yr = y ? y + r * n : NULL;
        // the residual add rounds to float as the reference's hidden_states + residual does
        if (yr) for (int64_t i = 0; i < n; i++) xr[i] = xr[i] + yr[i];
        double sumsq = 0.0;
        for (int64_t i = 0; i < n; i++) sumsq += (double)xr[i] * xr[i];
        const double inv = 1.0 / sqrt(sumsq / (double)n + (double)eps);
        for (int64_t i = 0; i < n; i++) o[i] = (float)((double)xr[i] * inv * (double)gamma[i]);
    }
    return GLMK_OK;
}

static float gelu_erf(float v) { return (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0)))); }

static float gelu_tanh(float v) {
    return (float)(0.5 * v * (1.0 + tanh(0.7978845608028654 * v * (1.0 + 0.044715 * (double)v * v))));
}

glmk_status glmk_bias_geglu_scalar(float *out, const float *u, const float *bias, int64_t rows, int64_t inner) {
    if (!out || !u || rows <= 0 || inner <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t r = 0; r < rows; r++) {
        const float *ur = u + r * 2 * inner;
        for (int64_t i = 0; i < inner; i++) {
            const float x1 = ur[i] + (bias ? bias[i] : 0.0f);
            const float x2 = ur[inner + i] + (bias ? bias[inner + i] : 0.0f);
            out[r * inner + i] = x1 * gelu_erf(x2);
        }
    }
    return GLMK_OK;
}

glmk_status glmk_bias_gelu_scalar(float *out, const float *x, const float *bias, int64_t rows, int64_t n,
                                  glmk_gelu_form form) {
    if (!out || !x || rows <= 0 || n <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (form != GLMK_GELU_ERF && form != GLMK_GELU_TANH) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) {
            const float v = x[r * n + i] + (bias ? bias[i] : 0.0f);
            out[r * n + i] = form == GLMK_GELU_ERF ? gelu_erf(v) : gelu_tanh(v);
        }
    return GLMK_OK;
}

glmk_status glmk_rope_inv_freq(float *out, int64_t rot_dim, float base) {
    if (!out || rot_dim <= 0 || rot_dim % 2 != 0 || !(base > 0.0f)) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t i = 0; i < rot_dim / 2; i++) {
        // torch: 1.0 / base ** (arange(0, dim, 2).float() / dim), then .half()
        const float exponent = (float)(2 * i) / (float)rot_dim;
        out[i] = glmk_fp16_to_fp32(glmk_fp32_to_fp16(1.0f / powf(base, exponent)));
    }
    return GLMK_OK;
}

glmk_status glmk_rope_inv_freq_f32(float *out, int64_t rot_dim, float base) {
    if (!out || rot_dim <= 0 || rot_dim % 2 != 0 || !(base > 0.0f)) return GLMK_ERR_INVALID_ARGUMENT;
    for (int64_t i = 0; i < rot_dim / 2; i++) out[i] = 1.0f / powf(base, (float)(2 * i) / (float)rot_dim);
    return GLMK_OK;
}

/// Adjacent pairs of v's first `dim` values: (v[2i], v[2i+1]) turns by fp32(pos * inv_freq[i]).
static void rotate_pairs(float *v, int64_t dim, int32_t position, const float *inv_freq) {
    for (int64_t i = 0; i < dim / 2; i++) {
        const float angle = (float)position * inv_freq[i];
        const float c = cosf(angle), s = sinf(angle);
        const float x1 = v[2 * i], x2 = v[2 * i + 1];
        v[2 * i] = x1 * c - x2 * s;
        v[2 * i + 1] = x2 * c + x1 * s;
    }
}

/// Rotate-half on one vector of `dim` values: x1 = v[:half], x2 = v[half:],
/// v = [x1 cos - x2 sin, x2 cos + x1 sin]; the angle is fp32(pos * inv_freq[i]) as in torch.
static void rotate_half(float *v, int64_t dim, int32_t position, const float *inv_freq) {
    const int64_t half = dim / 2;
    for (int64_t i = 0; i < half; i++) {
        const float angle = (float)position * inv_freq[i];
        const float c = cosf(angle), s = sinf(angle);
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

glmk_status glmk_rope_scalar(float *x, const glmk_rope_shape *shape, const int32_t *positions,
                             const int32_t *block_positions, const float *inv_freq) {
    const glmk_status status = glmk_check_rope(x, shape, positions, block_positions, inv_freq);
    if (status != GLMK_OK) return status;
    for (int64_t t = 0; t < shape->tokens; t++)
        for (int64_t h = 0; h < shape->heads; h++)
            for (int pair = 0; pair < (shape->pair_offset > 0 ? 2 : 1); pair++) {
                float *v = x + t * shape->token_stride + h * shape->head_stride + pair * shape->pair_offset;
                if (shape->interleaved_dim > 0) {
                    rotate_pairs(v, shape->interleaved_dim, positions[t], inv_freq);
                } else if (shape->two_d) {
                    rotate_half(v, shape->head_dim / 2, positions[t], inv_freq);
                    rotate_half(v + shape->head_dim / 2, shape->head_dim / 2, block_positions[t], inv_freq);
                } else {
                    rotate_half(v, shape->head_dim, positions[t], inv_freq);
                }
            }
    return GLMK_OK;
}
