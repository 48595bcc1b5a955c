/*
 * eltwise_avx2.c — AVX2/FMA element-wise kernels, one pass over memory where
 * the math allows: residual + LayerNorm in two passes (sum and sum of squares
 * in FP32 lanes, then normalise), GeGLU and GeLU with vector erf / tanh, RoPE
 * with each token's cos/sin computed once and shared by all its heads.
 */
#include "internal.h"
#include "simd_avx2.h"
#include <math.h>

#if GLMK_X86

GLMK_AVX2 static void layernorm_row(float *o, const float *x, float alpha, const float *y, const float *gamma,
                                    const float *beta, int64_t n, float eps) {
    const __m256 va = _mm256_set1_ps(alpha);
    // pass 1: h = x * alpha + y, mean. Shifted by the first value so the
    // one-pass variance keeps its precision when the mean is large.
    const float shift = x[0] * alpha + (y ? y[0] : 0.0f);
    const __m256 vshift = _mm256_set1_ps(shift);
    __m256 s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 h = _mm256_mul_ps(_mm256_loadu_ps(x + i), va);
        if (y) h = _mm256_add_ps(h, _mm256_loadu_ps(y + i));
        const __m256 d = _mm256_sub_ps(h, vshift);
        s1 = _mm256_add_ps(s1, d);
        s2 = _mm256_fmadd_ps(d, d, s2);
    }
    float sum = glmk_hsum256(s1), sumsq = glmk_hsum256(s2);
    for (; i < n; i++) {
        const float d = x[i] * alpha + (y ? y[i] : 0.0f) - shift;
        sum += d;
        sumsq += d * d;
    }
    const float mean_d = sum / (float)n;
    const float var = fmaxf(sumsq / (float)n - mean_d * mean_d, 0.0f);
    const float mean = shift + mean_d;
    const float inv = 1.0f / sqrtf(var + eps);
    const __m256 vmean = _mm256_set1_ps(mean), vinv = _mm256_set1_ps(inv);
    // pass 2: normalise; h is recomputed rather than stored so `out` may alias x or y
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 h = _mm256_mul_ps(_mm256_loadu_ps(x + i), va);
        if (y) h = _mm256_add_ps(h, _mm256_loadu_ps(y + i));
        const __m256 norm = _mm256_mul_ps(_mm256_sub_ps(h, vmean), vinv);
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(norm, _mm256_loadu_ps(gamma + i), _mm256_loadu_ps(beta + i)));
    }
    for (; i < n; i++) o[i] = (x[i] * alpha + (y ? y[i] : 0.0f) - mean) * inv * gamma[i] + beta[i];
}

glmk_status glmk_residual_layernorm_avx2(float *out, const float *x, float alpha, const float *y,
                                         const float *gamma, const float *beta, int64_t rows, int64_t n, float eps) {
    if (!out || !x || !gamma || !beta || rows <= 0 || n <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    GLMK_PARALLEL_FOR(r, 0, rows, rows * n, layernorm_row(out + r * n, x + r * n, alpha, y ? y + r * n : NULL, gamma, beta, n, eps));
    return GLMK_OK;
}

/// x += y (when y), then o = x / sqrt(mean(x^2) + eps) * gamma; sum of squares in FP32 lanes.
GLMK_AVX2 static void rmsnorm_row(float *o, float *x, const float *y, const float *gamma, int64_t n, float eps) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        if (y) {
            a = _mm256_add_ps(a, _mm256_loadu_ps(y + i));
            b = _mm256_add_ps(b, _mm256_loadu_ps(y + i + 8));
            _mm256_storeu_ps(x + i, a);
            _mm256_storeu_ps(x + i + 8, b);
        }
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    float sumsq = glmk_hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) {
        if (y) x[i] = x[i] + y[i];
        sumsq += x[i] * x[i];
    }
    const float inv = 1.0f / sqrtf(sumsq / (float)n + eps);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv), _mm256_loadu_ps(gamma + i)));
    for (; i < n; i++) o[i] = x[i] * inv * gamma[i];
}

glmk_status glmk_residual_rmsnorm_avx2(float *out, float *x, const float *y, const float *gamma,
                                       int64_t rows, int64_t n, float eps) {
    if (!out || !x || !gamma || rows <= 0 || n <= 0 || (y && out == x)) return GLMK_ERR_INVALID_ARGUMENT;
    GLMK_PARALLEL_FOR(r, 0, rows, rows * n, rmsnorm_row(out + r * n, x + r * n, y ? y + r * n : NULL, gamma, n, eps));
    return GLMK_OK;
}

/// Four vectors per step: GeLU is a ~25-deep dependent chain (two Horner
/// polynomials and a division), too long for the out-of-order window to overlap
/// iterations on its own (one vector per step was latency bound).
enum { GELU_UNROLL = 4 };

GLMK_AVX2 static void geglu_row(float *o, const float *u, const float *bias, int64_t inner) {
    int64_t i = 0;
    for (; i + 8 * GELU_UNROLL <= inner; i += 8 * GELU_UNROLL) {
        __m256 x1[GELU_UNROLL], x2[GELU_UNROLL];
        for (int j = 0; j < GELU_UNROLL; j++) {
            x1[j] = _mm256_loadu_ps(u + i + 8 * j);
            x2[j] = _mm256_loadu_ps(u + inner + i + 8 * j);
            if (bias) {
                x1[j] = _mm256_add_ps(x1[j], _mm256_loadu_ps(bias + i + 8 * j));
                x2[j] = _mm256_add_ps(x2[j], _mm256_loadu_ps(bias + inner + i + 8 * j));
            }
        }
        for (int j = 0; j < GELU_UNROLL; j++) _mm256_storeu_ps(o + i + 8 * j, _mm256_mul_ps(x1[j], glmk_gelu_erf256(x2[j])));
    }
    for (; i + 8 <= inner; i += 8) {
        __m256 x1 = _mm256_loadu_ps(u + i), x2 = _mm256_loadu_ps(u + inner + i);
        if (bias) {
            x1 = _mm256_add_ps(x1, _mm256_loadu_ps(bias + i));
            x2 = _mm256_add_ps(x2, _mm256_loadu_ps(bias + inner + i));
        }
        _mm256_storeu_ps(o + i, _mm256_mul_ps(x1, glmk_gelu_erf256(x2)));
    }
    if (i < inner) {
        // the tail goes through the same vector math on a padded copy
        float a[8] = {0}, b[8] = {0}, r[8];
        for (int64_t j = i; j < inner; j++) {
            a[j - i] = u[j] + (bias ? bias[j] : 0.0f);
            b[j - i] = u[inner + j] + (bias ? bias[inner + j] : 0.0f);
        }
        _mm256_storeu_ps(r, _mm256_mul_ps(_mm256_loadu_ps(a), glmk_gelu_erf256(_mm256_loadu_ps(b))));
        for (int64_t j = i; j < inner; j++) o[j] = r[j - i];
    }
}

glmk_status glmk_bias_geglu_avx2(float *out, const float *u, const float *bias, int64_t rows, int64_t inner) {
    if (!out || !u || rows <= 0 || inner <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    GLMK_PARALLEL_FOR(r, 0, rows, rows * inner, geglu_row(out + r * inner, u + r * 2 * inner, bias, inner));
    return GLMK_OK;
}

GLMK_AVX2_INLINE __m256 gelu256(__m256 v, glmk_gelu_form form) {
    return form == GLMK_GELU_ERF ? glmk_gelu_erf256(v) : glmk_gelu_tanh256(v);
}

/// One form per loop (`form` is a literal at each call), four vectors per step.
GLMK_AVX2_INLINE void gelu_row_form(float *o, const float *x, const float *bias, int64_t n, glmk_gelu_form form) {
    int64_t i = 0;
    for (; i + 8 * GELU_UNROLL <= n; i += 8 * GELU_UNROLL) {
        __m256 v[GELU_UNROLL];
        for (int j = 0; j < GELU_UNROLL; j++) {
            v[j] = _mm256_loadu_ps(x + i + 8 * j);
            if (bias) v[j] = _mm256_add_ps(v[j], _mm256_loadu_ps(bias + i + 8 * j));
        }
        for (int j = 0; j < GELU_UNROLL; j++) _mm256_storeu_ps(o + i + 8 * j, gelu256(v[j], form));
    }
    for (; i < n; i += 8) {
        const int64_t count = n - i < 8 ? n - i : 8;
        float pad[8] = {0};
        for (int64_t j = 0; j < count; j++) pad[j] = x[i + j] + (bias ? bias[i + j] : 0.0f);
        _mm256_storeu_ps(pad, gelu256(_mm256_loadu_ps(pad), form));
        for (int64_t j = 0; j < count; j++) o[i + j] = pad[j];
    }
}

GLMK_AVX2 static void gelu_row(float *o, const float *x, const float *bias, int64_t n, glmk_gelu_form form) {
    if (form == GLMK_GELU_ERF) gelu_row_form(o, x, bias, n, GLMK_GELU_ERF);
    else gelu_row_form(o, x, bias, n, GLMK_GELU_TANH);
}

glmk_status glmk_bias_gelu_avx2(float *out, const float *x, const float *bias, int64_t rows, int64_t n,
                                glmk_gelu_form form) {
    if (!out || !x || rows <= 0 || n <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (form != GLMK_GELU_ERF && form != GLMK_GELU_TANH) return GLMK_ERR_INVALID_ARGUMENT;
    GLMK_PARALLEL_FOR(r, 0, rows, rows * n, gelu_row(out + r * n, x + r * n, bias, n, form));
    return GLMK_OK;
}

// MARK: - RoPE

/// cos/sin of fp32(position * inv_freq[i]) for i < half, as the reference's tables.
static void rope_table(float *c, float *s, int32_t position, const float *inv_freq, int64_t half) {
    for (int64_t i = 0; i < half; i++) {
        const float angle = (float)position * inv_freq[i];
        c[i] = cosf(angle);
        s[i] = sinf(angle);
    }
}

GLMK_AVX2 static void rotate_half(float *v, int64_t dim, const float *c, const float *s) {
    const int64_t half = dim / 2;
    int64_t i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 x1 = _mm256_loadu_ps(v + i), x2 = _mm256_loadu_ps(v + half + i);
        const __m256 vc = _mm256_loadu_ps(c + i), vs = _mm256_loadu_ps(s + i);
        _mm256_storeu_ps(v + i, _mm256_fmsub_ps(x1, vc, _mm256_mul_ps(x2, vs)));
        _mm256_storeu_ps(v + half + i, _mm256_fmadd_ps(x2, vc, _mm256_mul_ps(x1, vs)));
    }
    for (; i < half; i++) {
        const float x1 = v[i], x2 = v[half + i];
        v[i] = x1 * c[i] - x2 * s[i];
        v[half + i] = x2 * c[i] + x1 * s[i];
    }
}

/// Adjacent pairs of v's first `dim` values, four pairs per vector: [x0 x1 ...] becomes
/// [x0 c - x1 s, x1 c + x0 s, ...] with c, s of each pair duplicated into its two lanes.
GLMK_AVX2 static void rotate_pairs(float *v, int64_t dim, const float *c2, const float *s2) {
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        const __m256 x = _mm256_loadu_ps(v + i);
        const __m256 swapped = _mm256_permute_ps(x, 0xB1); // [x1 x0 x3 x2 ...]
        // fmaddsub: even lanes x c - swapped s, odd lanes x c + swapped s
        _mm256_storeu_ps(v + i, _mm256_fmaddsub_ps(x, _mm256_loadu_ps(c2 + i), _mm256_mul_ps(swapped, _mm256_loadu_ps(s2 + i))));
    }
    for (; i < dim; i += 2) {
        const float x1 = v[i], x2 = v[i + 1];
        v[i] = x1 * c2[i] - x2 * s2[i];
        v[i + 1] = x2 * c2[i] + x1 * s2[i];
    }
}

glmk_status glmk_rope_avx2(float *x, const glmk_rope_shape *shape, const int32_t *positions,
                           const int32_t *block_positions, const float *inv_freq) {
    const glmk_status status = glmk_check_rope(x, shape, positions, block_positions, inv_freq);
    if (status != GLMK_OK) return status;
    if (shape->interleaved_dim > 0) {
        const int64_t dim = shape->interleaved_dim;
        GLMK_PARALLEL_FOR(t, 0, shape->tokens, shape->tokens * shape->heads * dim, {
            float c[GLMK_MAX_HEAD_DIM / 2], s[GLMK_MAX_HEAD_DIM / 2], c2[GLMK_MAX_HEAD_DIM], s2[GLMK_MAX_HEAD_DIM];
            rope_table(c, s, positions[t], inv_freq, dim / 2);
            for (int64_t i = 0; i < dim; i++) {
                c2[i] = c[i / 2];
                s2[i] = s[i / 2];
            }
            for (int64_t h = 0; h < shape->heads; h++)
                for (int pair = 0; pair < (shape->pair_offset > 0 ? 2 : 1); pair++)
                    rotate_pairs(x + t * shape->token_stride + h * shape->head_stride + pair * shape->pair_offset, dim, c2, s2);
        });
        return GLMK_OK;
    }
    const int64_t rot = shape->two_d ? shape->head_dim / 2 : shape->head_dim;
    GLMK_PARALLEL_FOR(t, 0, shape->tokens, shape->tokens * shape->heads * shape->head_dim, {
        float c1[GLMK_MAX_HEAD_DIM / 2], s1[GLMK_MAX_HEAD_DIM / 2];
        float c2[GLMK_MAX_HEAD_DIM / 4], s2[GLMK_MAX_HEAD_DIM / 4];
        rope_table(c1, s1, positions[t], inv_freq, rot / 2);
        if (shape->two_d) rope_table(c2, s2, block_positions[t], inv_freq, rot / 2);
        for (int64_t h = 0; h < shape->heads; h++)
            for (int pair = 0; pair < (shape->pair_offset > 0 ? 2 : 1); pair++) {
                float *v = x + t * shape->token_stride + h * shape->head_stride + pair * shape->pair_offset;
                rotate_half(v, rot, c1, s1);
                if (shape->two_d) rotate_half(v + rot, rot, c2, s2);
            }
    });
    return GLMK_OK;
}

#endif
