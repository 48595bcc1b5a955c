/*
 * internal.h — helpers shared by the kernel files; not part of the public API.
 */
#ifndef GLMK_INTERNAL_H
#define GLMK_INTERNAL_H

#include "glm_kernels.h"
#include <stdlib.h>
#include <string.h>

// -DGLMK_X86=0 builds the portable scalar library on x86 too (to check that path).
#ifndef GLMK_X86
#if defined(__x86_64__) || defined(_M_X64)
#define GLMK_X86 1
#else
#define GLMK_X86 0
#endif
#endif

// MARK: - OpenMP
// Debian's libomp-dev installs omp.h in a clang-version folder that Swift's own
// clang does not search, so when it is not on the include path we declare the
// four runtime calls we use ourselves; they are the stable OpenMP C API.
#if defined(__has_include)
#if __has_include(<omp.h>)
#include <omp.h>
#define GLMK_HAVE_OMP_H 1
#endif
#endif
#ifndef GLMK_HAVE_OMP_H
int omp_get_max_threads(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
void omp_set_num_threads(int);
#endif

// MARK: - GGUF block layouts

#define GLMK_QK 32 // elements per Q8_0 / Q4_0 block

typedef struct {
    uint16_t d;           // fp16 scale
    int8_t qs[GLMK_QK];   // w = d * qs
} glmk_block_q8_0;

typedef struct {
    uint16_t d;               // fp16 scale
    uint8_t qs[GLMK_QK / 2];  // byte j: element j low nibble, element j + 16 high nibble
} glmk_block_q4_0;

// MARK: - Small helpers

/// Sign-extended nibble `k` of a GLM INT4 row (even column = high nibble).
/* aligned_alloc with the size rounded up to a multiple of the alignment, as C11
 * requires (aligned_alloc(64, 24) is undefined behaviour; AddressSanitizer stops
 * on it). Never asked for zero bytes. */
static inline void *glmk_aligned_alloc(size_t alignment, size_t bytes) {
    size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    return aligned_alloc(alignment, rounded ? rounded : alignment);
}

/* Workspaces: a bump allocator over the caller's glmk_workspace. Every piece is
 * 64-byte aligned and a multiple of 64 bytes, so that a query (the sum of
 * GLMK_WS_ROUND sizes) and the carving agree exactly. */
#define GLMK_WS_ROUND(bytes) ((((size_t)(bytes)) + 63) / 64 * 64)

typedef struct {
    uint8_t *next, *end;
} glmk_arena;

static inline glmk_arena glmk_arena_of(glmk_workspace ws) {
    glmk_arena a = {(uint8_t *)ws.data, (uint8_t *)ws.data + (ws.data ? ws.bytes : 0)};
    return a;
}

/// The next `bytes` (rounded up to 64) of the arena, or NULL when it is too small.
/// Zero bytes give a non-NULL pointer that must not be read.
static inline void *glmk_arena_take(glmk_arena *a, size_t bytes) {
    const size_t rounded = GLMK_WS_ROUND(bytes);
    if (rounded == 0) return a;
    if (!a->next || (size_t)(a->end - a->next) < rounded || ((uintptr_t)a->next & 63)) return NULL;
    void *p = a->next;
    a->next += rounded;
    return p;
}

/// Threads a parallel region may start from the calling thread (per-thread scratch).
int glmk_workspace_threads(void);

static inline int glmk_q4_at(const uint8_t *row, int64_t k) {
    const uint8_t byte = row[k >> 1];
    const int nibble = (k & 1) ? (byte & 0x0F) : (byte >> 4);
    return (nibble ^ 8) - 8;
}

/// The fp16 scale of column k of row `row` for the INT4 types.
static inline float glmk_q4_scale(const glmk_matrix *w, int64_t row, int64_t k) {
    const int64_t per_row = glmk_scales_per_row(w->type, w->cols, w->group);
    return glmk_fp16_to_fp32(w->scales[row * per_row + k / w->group]);
}

static inline const uint8_t *glmk_row_ptr(const glmk_matrix *w, int64_t row) {
    return (const uint8_t *)w->data + row * w->row_bytes;
}

/// Weight (row, k) of a Q8_0 or INT4 matrix as its signed integer, and its scale:
/// the one-at-a-time reading the integer-activation references use.
static inline int glmk_weight_q(const glmk_matrix *w, int64_t row, int64_t k, float *scale) {
    const uint8_t *r = glmk_row_ptr(w, row);
    if (w->type == GLMK_TYPE_Q8_0) {
        const glmk_block_q8_0 *b = (const glmk_block_q8_0 *)r + k / GLMK_QK;
        *scale = glmk_fp16_to_fp32(b->d);
        return b->qs[k % GLMK_QK];
    }
    if (w->type == GLMK_TYPE_Q4_0) {
        const glmk_block_q4_0 *b = (const glmk_block_q4_0 *)r + k / GLMK_QK;
        const int j = (int)(k % GLMK_QK);
        *scale = glmk_fp16_to_fp32(b->d);
        return (j < 16 ? (b->qs[j] & 0x0F) : (b->qs[j - 16] >> 4)) - 8;
    }
    *scale = glmk_q4_scale(w, row, k);
    return glmk_q4_at(r, k);
}

/// Checks common to the product kernels.
glmk_status glmk_check_product(const float *y, const glmk_matrix *w, const float *x);

// MARK: - Per-ISA implementations (wired in kernel_table.c)

float glmk_dot_row_scalar(const glmk_matrix *w, int64_t row, const float *x);
glmk_status glmk_dequantize_row_scalar(float *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t count);
glmk_status glmk_matvec_scalar(float *y, const glmk_matrix *w, const float *x, const float *bias);
glmk_status glmk_matmul_scalar(float *y, int64_t y_stride, const glmk_matrix *w, const float *x,
                               int64_t x_stride, int64_t m, const float *bias, glmk_workspace ws);
glmk_status glmk_embedding_scalar(float *out, const glmk_matrix *table, const int32_t *ids, int64_t count);
glmk_status glmk_attention_scalar(float *out, const float *q, const void *k, const void *v,
                                  const glmk_attention_shape *shape, glmk_workspace ws);
glmk_status glmk_residual_layernorm_scalar(float *out, const float *x, float alpha, const float *y,
                                           const float *gamma, const float *beta, int64_t rows, int64_t n, float eps);
glmk_status glmk_residual_rmsnorm_scalar(float *out, float *x, const float *y, const float *gamma,
                                         int64_t rows, int64_t n, float eps);
glmk_status glmk_bias_geglu_scalar(float *out, const float *u, const float *bias, int64_t rows, int64_t inner);
glmk_status glmk_bias_gelu_scalar(float *out, const float *x, const float *bias, int64_t rows, int64_t n,
                                  glmk_gelu_form form);
glmk_status glmk_rope_scalar(float *x, const glmk_rope_shape *shape, const int32_t *positions,
                             const int32_t *block_positions, const float *inv_freq);
glmk_status glmk_eltwise_scalar(float *out, const float *a, const float *b, float scalar, glmk_eltwise_op op,
                                const glmk_eltwise_shape *shape);
glmk_status glmk_matvec_q8_scalar(float *y, const glmk_matrix *w, const int8_t *xq, const float *x_scales,
                                  const int32_t *x_sums, const float *bias);
glmk_status glmk_check_matvec_q8(const float *y, const glmk_matrix *w, const int8_t *xq, const float *x_scales, const int32_t *x_sums);
glmk_status glmk_matmul_q8_scalar(float *y, int64_t y_stride, const glmk_matrix *w, const int8_t *xq,
                                  const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                  glmk_workspace ws);
glmk_status glmk_matvec_q16_scalar(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                   const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                   glmk_workspace ws);
glmk_status glmk_check_matvec_q16(const float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                  const float *x_scales, const int32_t *x_sums, int64_t m);
/// The pointers, the matrix and its type for the integer-activation kernels: INT4
/// (q4_group with groups of 32·j), and Q8_0 when `q8_0_too`.
glmk_status glmk_check_integer_activations(const float *y, const glmk_matrix *w, const void *xq, const float *x_scales,
                                           const int32_t *x_sums, int q8_0_too);
/// Rows n0 .. n0 + R - 1 of a q16 mat-vec (R fixed per function); corr[b] = x_scale[b] x_sum[b];
/// `prepared`: what the kernel derived from x once per call (NULL if nothing).
typedef void (*glmk_q16_rows)(const glmk_matrix *w, int64_t n0, const int16_t *xq, const float *xs, const float *corr,
                              const void *prepared, float *out);
/// GLM INT4 row `row`'s last, partial 32-block (cols % 32 columns, natural order) times
/// its activations, scaled: what the SIMD kernels add after their whole blocks (0 if none).
float glmk_q16_partial_block(const glmk_matrix *w, int64_t row, const int16_t *xq, const float *xs);
/// The zero-point terms (x_scale x x_sum per block) of m tokens, (m, blocks) floats in
/// the arena: what glmk_matvec_q16_rows_driver takes as `corr`. NULL when the arena is short.
float *glmk_q16_zero_points(glmk_arena *a, const glmk_matrix *w, const float *x_scales, const int32_t *x_sums, int64_t m);
/// Bytes glmk_q16_zero_points takes.
size_t glmk_q16_zero_points_bytes(const glmk_matrix *w, int64_t m);
/// The shared outer loop of the SIMD q16 kernels (arguments already checked):
/// `eight` over groups of 8 rows in parallel, `one` for the rest, each group
/// serving the m tokens in turn while its rows are in cache, then the bias.
/// Token t's inputs: xq + t k, x_scales and corr + t blocks, prepared + t prepared_bytes.
glmk_status glmk_matvec_q16_rows_driver(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                        const float *x_scales, const float *corr, int64_t m, const float *bias,
                                        const void *prepared, size_t prepared_bytes, glmk_q16_rows eight,
                                        glmk_q16_rows one);
glmk_status glmk_check_eltwise(const float *out, const float *a, const float *b, glmk_eltwise_op op, const glmk_eltwise_shape *s);

#if GLMK_X86
float glmk_dot_row_avx2(const glmk_matrix *w, int64_t row, const float *x);
glmk_status glmk_dequantize_row_avx2(float *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t count);
glmk_status glmk_matvec_avx2(float *y, const glmk_matrix *w, const float *x, const float *bias);
glmk_status glmk_matmul_avx2(float *y, int64_t y_stride, const glmk_matrix *w, const float *x,
                             int64_t x_stride, int64_t m, const float *bias, glmk_workspace ws);
size_t glmk_matmul_avx2_workspace(const glmk_matrix *w, int64_t m);

/// The FP32 mat-mat's register tile (products_avx2.c's driver dequantizes W in panels of
/// nr rows, transposed to (kc, nr), and packs X in tiles of mr tokens, (kc, mr)):
/// run adds X (mr, kc) @ P (kc, nr) to C (mr, nr), row stride c_stride, for any mr up to .mr.
enum { GLMK_TILE_NR_MAX = 32, GLMK_TILE_MR_MAX = 32 };
typedef struct {
    int mr, nr; // nr a multiple of 8
    void (*run)(int mr, int64_t kc, const float *xp, const float *panel, float *c, int64_t c_stride);
} glmk_fp32_tile;
extern const glmk_fp32_tile glmk_tile_avx2;   // 6 x 16 on ymm
extern const glmk_fp32_tile glmk_tile_avx512; // products_avx512.c: 12 x 32 on zmm
glmk_status glmk_matmul_tiled(float *y, int64_t y_stride, const glmk_matrix *w, const float *x, int64_t x_stride, int64_t m,
                              const float *bias, glmk_workspace ws, const glmk_fp32_tile *tile);
size_t glmk_matmul_tiled_workspace(const glmk_matrix *w, int64_t m, const glmk_fp32_tile *tile);
glmk_status glmk_matmul_avx512(float *y, int64_t y_stride, const glmk_matrix *w, const float *x,
                               int64_t x_stride, int64_t m, const float *bias, glmk_workspace ws);
size_t glmk_matmul_avx512_workspace(const glmk_matrix *w, int64_t m);
glmk_status glmk_matmul_q16_avx512(float *y, int64_t y_stride, const glmk_matrix *w, const float *x, int64_t x_stride,
                                   int64_t m, const float *bias, glmk_workspace ws);
size_t glmk_matmul_q16_avx512_workspace(const glmk_matrix *w, int64_t m);
glmk_status glmk_embedding_avx2(float *out, const glmk_matrix *table, const int32_t *ids, int64_t count);
glmk_status glmk_attention_avx2(float *out, const float *q, const void *k, const void *v,
                                const glmk_attention_shape *shape, glmk_workspace ws);
size_t glmk_attention_avx2_workspace(const glmk_attention_shape *shape);
glmk_status glmk_residual_rmsnorm_avx2(float *out, float *x, const float *y, const float *gamma,
                                       int64_t rows, int64_t n, float eps);
glmk_status glmk_residual_layernorm_avx2(float *out, const float *x, float alpha, const float *y,
                                         const float *gamma, const float *beta, int64_t rows, int64_t n, float eps);
glmk_status glmk_bias_geglu_avx2(float *out, const float *u, const float *bias, int64_t rows, int64_t inner);
glmk_status glmk_bias_gelu_avx2(float *out, const float *x, const float *bias, int64_t rows, int64_t n,
                                glmk_gelu_form form);
glmk_status glmk_rope_avx2(float *x, const glmk_rope_shape *shape, const int32_t *positions,
                           const int32_t *block_positions, const float *inv_freq);
glmk_status glmk_matvec_q8_avx2(float *y, const glmk_matrix *w, const int8_t *xq, const float *x_scales,
                                const int32_t *x_sums, const float *bias);
/// Prefill attention 16 queries at a time (attention_blocked_avx2.c), for the shapes it applies to.
int glmk_attention_blocked_applies(const glmk_attention_shape *s);
glmk_status glmk_attention_blocked_avx2(float *out, const float *q, const void *k, const void *v,
                                        const glmk_attention_shape *s, glmk_arena *a);
size_t glmk_attention_blocked_avx2_workspace(const glmk_attention_shape *s);
glmk_status glmk_matmul_q8_vnni(float *y, int64_t y_stride, const glmk_matrix *w, const int8_t *xq,
                                const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                glmk_workspace ws);
size_t glmk_matmul_q8_vnni_workspace(const glmk_matrix *w, int64_t m);
glmk_status glmk_matvec_q16_avx2(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                 const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                 glmk_workspace ws);
glmk_status glmk_eltwise_avx2(float *out, const float *a, const float *b, float scalar, glmk_eltwise_op op,
                              const glmk_eltwise_shape *shape);
glmk_status glmk_matvec_q16_avx512(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                                   const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                                   glmk_workspace ws);
size_t glmk_matvec_q16_avx512_workspace(const glmk_matrix *w, int64_t m);
#endif

/// Below this much work (elements, or multiply-accumulates) a kernel stays on one
/// thread: a parallel region costs more than it saves.
#define GLMK_PARALLEL_MIN_WORK 65536

/* `for (int64_t var = first; var < end; var++) body` on the OpenMP threads when
 * `work` reaches GLMK_PARALLEL_MIN_WORK and more than one thread may run, else on
 * the calling thread without entering the OpenMP runtime. The threads split the
 * range themselves (contiguous shares, or round-robin when `interleaved`)
 * instead of an `omp for`: Debian's libomp allocates in every worksharing loop
 * (and in every region it runs serialized, as an `if` clause that is false
 * makes it), and a decode step must allocate nothing. Each iteration is
 * independent, so the result does not depend on how the range was split. */
#define GLMK_FOR_IN(interleaved, var, first, end, work, ...)                                          \
    do {                                                                                          \
        const int64_t glmk_first_ = (first), glmk_end_ = (end);                                   \
        if ((work) >= GLMK_PARALLEL_MIN_WORK && glmk_end_ - glmk_first_ > 1 && omp_get_max_threads() > 1) { \
            _Pragma("omp parallel") {                                                             \
                const int64_t glmk_t_ = omp_get_thread_num(), glmk_k_ = omp_get_num_threads();    \
                const int64_t glmk_n_ = glmk_end_ - glmk_first_;                                  \
                const int64_t glmk_lo_ = (interleaved) ? glmk_first_ + glmk_t_ : glmk_first_ + glmk_n_ * glmk_t_ / glmk_k_; \
                const int64_t glmk_hi_ = (interleaved) ? glmk_end_ : glmk_first_ + glmk_n_ * (glmk_t_ + 1) / glmk_k_; \
                const int64_t glmk_step_ = (interleaved) ? glmk_k_ : 1;                           \
                for (int64_t var = glmk_lo_; var < glmk_hi_; var += glmk_step_) { __VA_ARGS__; }   \
            }                                                                                     \
        } else {                                                                                  \
            for (int64_t var = glmk_first_; var < glmk_end_; var++) { __VA_ARGS__; }              \
        }                                                                                         \
    } while (0)
#define GLMK_PARALLEL_FOR(var, first, end, work, ...) GLMK_FOR_IN(0, var, first, end, work, __VA_ARGS__)
/// Iterations dealt round-robin: for loops whose later iterations cost more (causal attention).
#define GLMK_PARALLEL_FOR_INTERLEAVED(var, first, end, work, ...) GLMK_FOR_IN(1, var, first, end, work, __VA_ARGS__)

/// The key/value head query head h reads: h itself, or its group's under grouped-query attention.
static inline int64_t glmk_kv_head(const glmk_attention_shape *s, int64_t h) {
    return s->kv_group > 1 ? h / s->kv_group : h;
}

/// Keys visible to the query at absolute position pos: [0, max(bidirectional_len, pos + 1)),
/// clipped to the cache (key j is visible when j < bidirectional_len or j <= pos).
static inline int64_t glmk_visible_keys(const glmk_attention_shape *s, int64_t pos) {
    const int64_t visible = pos + 1 > s->bidirectional_len ? pos + 1 : s->bidirectional_len;
    return visible < s->keys ? visible : s->keys;
}

// MARK: - Shared checks for attention, RoPE and the element-wise kernels

glmk_status glmk_check_attention(const float *out, const float *q, const void *k, const void *v,
                                 const glmk_attention_shape *s);

/// Element i of a K or V array of floats, or of fp16 values when f16.
static inline float glmk_kv_at(const void *base, int f16, int64_t i) {
    return f16 ? glmk_fp16_to_fp32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}
glmk_status glmk_check_rope(const float *x, const glmk_rope_shape *s, const int32_t *positions,
                            const int32_t *block_positions, const float *inv_freq);
glmk_status glmk_check_embedding(const float *out, const glmk_matrix *table, const int32_t *ids, int64_t count);
glmk_status glmk_check_dequantize(const float *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t count);

/// K-block for the FP32 mat-mat panels, chosen from the L2 cache size (topology.c).
int64_t glmk_matmul_kc(void);


#endif
