/*
 * eltwise_steps.c — the single element-wise steps of an unfused layer (bias
 * add, residual scale-add, multiply, GeLU), one pass over memory each, over
 * strided rows, and SiLU with the SwiGLU product fused. The fusion pass replaces chains of them with the fused
 * kernels of eltwise_*.c; `--no-fusion` runs them as they are.
 */
#include "internal.h"
#include "simd_avx2.h"
#include <math.h>

glmk_status glmk_check_eltwise(const float *out, const float *a, const float *b, glmk_eltwise_op op, const glmk_eltwise_shape *s) {
    if (!out || !a || !s || s->rows <= 0 || s->n <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    if (s->out_stride < s->n || s->a_stride < s->n) return GLMK_ERR_INVALID_ARGUMENT;
    if ((int)op < 0 || op > GLMK_ELT_SILU_MUL) return GLMK_ERR_INVALID_ARGUMENT;
    const int rows_of_b = op == GLMK_ELT_SCALE_ADD || op == GLMK_ELT_MUL || op == GLMK_ELT_SILU_MUL;
    if ((rows_of_b || op == GLMK_ELT_ADD_ROW) && !b) return GLMK_ERR_INVALID_ARGUMENT;
    if (rows_of_b && s->b_stride < s->n) return GLMK_ERR_INVALID_ARGUMENT;
    return GLMK_OK;
}

static float step(glmk_eltwise_op op, float a, float b, float scalar) {
    switch (op) {
    case GLMK_ELT_ADD_ROW: return a + b;
    case GLMK_ELT_SCALE_ADD: return a * scalar + b;
    case GLMK_ELT_MUL: return a * b;
    case GLMK_ELT_GELU_ERF: return (float)(0.5 * a * (1.0 + erf(a / sqrt(2.0))));
    case GLMK_ELT_GELU_TANH: return (float)(0.5 * a * (1.0 + tanh(0.7978845608028654 * a * (1.0 + 0.044715 * (double)a * a))));
    case GLMK_ELT_SILU: return (float)(a / (1.0 + exp(-(double)a)));
    case GLMK_ELT_SILU_MUL: return (float)(a / (1.0 + exp(-(double)a))) * b;
    }
    return 0;
}

static const float *b_row(const float *b, glmk_eltwise_op op, const glmk_eltwise_shape *s, int64_t r) {
    if (!b) return NULL;
    return op == GLMK_ELT_ADD_ROW ? b : b + r * s->b_stride;
}

glmk_status glmk_eltwise_scalar(float *out, const float *a, const float *b, float scalar, glmk_eltwise_op op,
                                const glmk_eltwise_shape *s) {
    const glmk_status status = glmk_check_eltwise(out, a, b, op, s);
    if (status != GLMK_OK) return status;
    for (int64_t r = 0; r < s->rows; r++) {
        const float *ar = a + r * s->a_stride, *br = b_row(b, op, s, r);
        float *o = out + r * s->out_stride;
        for (int64_t i = 0; i < s->n; i++) o[i] = step(op, ar[i], br ? br[i] : 0.0f, scalar);
    }
    return GLMK_OK;
}

#if GLMK_X86
GLMK_AVX2_INLINE __m256 step8(glmk_eltwise_op op, __m256 a, __m256 b, __m256 scalar) {
    switch (op) {
    case GLMK_ELT_ADD_ROW: return _mm256_add_ps(a, b);
    case GLMK_ELT_SCALE_ADD: return _mm256_fmadd_ps(a, scalar, b);
    case GLMK_ELT_MUL: return _mm256_mul_ps(a, b);
    case GLMK_ELT_GELU_ERF: return glmk_gelu_erf256(a);
    case GLMK_ELT_GELU_TANH: return glmk_gelu_tanh256(a);
    case GLMK_ELT_SILU: return glmk_silu256(a);
    case GLMK_ELT_SILU_MUL: return _mm256_mul_ps(glmk_silu256(a), b);
    }
    return a;
}

GLMK_AVX2 static void row_avx2(float *o, const float *a, const float *b, float scalar, glmk_eltwise_op op, int64_t n) {
    const __m256 vs = _mm256_set1_ps(scalar);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, step8(op, _mm256_loadu_ps(a + i), b ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps(), vs));
    if (i < n) {
        // the tail through the same vector math on padded copies
        float pa[8] = {0}, pb[8] = {0}, po[8];
        for (int64_t j = i; j < n; j++) { pa[j - i] = a[j]; pb[j - i] = b ? b[j] : 0.0f; }
        _mm256_storeu_ps(po, step8(op, _mm256_loadu_ps(pa), _mm256_loadu_ps(pb), vs));
        for (int64_t j = i; j < n; j++) o[j] = po[j - i];
    }
}

glmk_status glmk_eltwise_avx2(float *out, const float *a, const float *b, float scalar, glmk_eltwise_op op,
                              const glmk_eltwise_shape *s) {
    const glmk_status status = glmk_check_eltwise(out, a, b, op, s);
    if (status != GLMK_OK) return status;
    GLMK_PARALLEL_FOR(r, 0, s->rows, s->rows * s->n,
                      row_avx2(out + r * s->out_stride, a + r * s->a_stride, b_row(b, op, s, r), scalar, op, s->n));
    return GLMK_OK;
}
#endif
