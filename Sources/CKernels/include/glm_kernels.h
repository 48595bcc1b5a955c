/*
 * glm_kernels.h — the C kernel library of GLMRuntime.
 *
 * Every kernel exists twice behind one signature: a plain scalar reference
 * (portable C, the ground truth for tests) and a hand-written AVX2/FMA version
 * chosen at run time from CPUID. Callers reach kernels through one table per
 * instruction set (`glmk_kernels_for`), so tests and the bench iterate the
 * table instead of naming functions.
 *
 * Conventions
 *  - Exported symbols carry the `glmk_` prefix.
 *  - Kernels take the output first, never allocate, never exit, and return a
 *    `glmk_status`. Shapes are in elements unless a name says bytes.
 *  - A kernel that needs scratch memory takes a `glmk_workspace` from its caller
 *    (a session, or the calling thread) and says how much it needs through
 *    `glmk_workspace_bytes`.
 *  - Matrices are row-major. A weight matrix W has `rows` = output features (n)
 *    and `cols` = input features (k); products compute y = W x + b.
 *  - Enum values never change; new ones are appended.
 */
#ifndef GLM_KERNELS_H
#define GLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Status

typedef enum {
    GLMK_OK = 0,
    GLMK_ERR_INVALID_ARGUMENT = 1, // a NULL pointer, a non-positive size, a bad stride
    GLMK_ERR_UNSUPPORTED = 2,      // a shape or type this kernel does not handle (e.g. Q4_0 with cols % 32 != 0)
    GLMK_ERR_OUT_OF_RANGE = 3,     // an index (token id, position) outside its table
    GLMK_ERR_SYSTEM = 4,           // hwloc or the OS failed
} glmk_status;

const char *glmk_status_string(glmk_status status);

// MARK: - Instruction sets

typedef enum {
    GLMK_ISA_SCALAR = 0, // portable C reference, every platform
    GLMK_ISA_AVX2 = 1,   // x86-64 with AVX2 + FMA + F16C
    GLMK_ISA_AVX512 = 2, // the AVX2 kernels, plus 512-bit ones where they pay (AVX-512 F/BW/VL/VNNI)
    GLMK_ISA_COUNT
} glmk_isa;

const char *glmk_isa_name(glmk_isa isa);
/// 1 when this CPU (and OS) can run `isa`, from CPUID at run time.
int glmk_isa_supported(glmk_isa isa);
/// The fastest supported ISA; `GLM_ISA=scalar` in the environment forces the reference.
glmk_isa glmk_isa_best(void);

// MARK: - Weight types

typedef enum {
    GLMK_TYPE_F32 = 0,
    GLMK_TYPE_F16 = 1,
    GLMK_TYPE_Q8_0 = 2,     // GGUF Q8_0: blocks of 32 = fp16 d + 32 x int8; w = d * q
    GLMK_TYPE_Q4_0 = 3,     // GGUF Q4_0: blocks of 32 = fp16 d + 16 bytes; byte j holds
                            // element j (low nibble) and j+16 (high nibble); w = d * (q - 8)
    GLMK_TYPE_Q4_ROW = 4,   // GLM-130B INT4: q in [-7, 7], one fp16 absmax scale per row,
                            // two values per byte, the even column in the high nibble
    GLMK_TYPE_Q4_GROUP = 5, // as Q4_ROW with one fp16 scale per `group` (32, 64 or 128) weights
    GLMK_TYPE_COUNT
} glmk_type;

/// A weight matrix, W (rows, cols), in one of the types above. Owned by the caller.
typedef struct {
    glmk_type type;
    int64_t rows;            // n, output features
    int64_t cols;            // k, input features
    int64_t group;           // Q4_GROUP: weights per scale; Q4_ROW: == cols; otherwise 0
    const void *data;        // (rows, row_bytes)
    int64_t row_bytes;       // bytes of one row of `data`, see glmk_row_bytes
    const uint16_t *scales;  // Q4_ROW: (rows) fp16; Q4_GROUP: (rows, ceil(cols / group)) fp16; else NULL
} glmk_matrix;

typedef struct {
    const char *name;        // "f32", "f16", "q8_0", "q4_0", "q4_row", "q4_group"
    int64_t block;           // cols must be a multiple of this (32 for GGUF blocks, else 1)
    int64_t block_bytes;     // bytes per block in `data` (0 for the packed INT4 types, see row_bytes)
    int has_scales;          // 1 when `scales` is used
} glmk_type_info;

const glmk_type_info *glmk_type_info_get(glmk_type type);
/// Bytes of one packed row of `data` for `cols` columns; -1 if `cols` does not fit the type.
int64_t glmk_row_bytes(glmk_type type, int64_t cols);
/// Number of fp16 scales per row (0 for types without separate scales).
int64_t glmk_scales_per_row(glmk_type type, int64_t cols, int64_t group);
/// Checks a descriptor for internal consistency (sizes, group, pointers).
glmk_status glmk_matrix_validate(const glmk_matrix *w);

// MARK: - fp16

uint16_t glmk_fp32_to_fp16(float value); // round to nearest even
float glmk_fp16_to_fp32(uint16_t value);
/// dst (count) = src rounded to fp16 (nearest even), with F16C where the CPU has it.
void glmk_fp32_to_fp16_array(uint16_t *dst, const float *src, int64_t count);

// MARK: - Quantization (offline work: scalar only)

/// Pack int4 values two per byte, the even element in the high nibble (GLM-130B
/// `compress_int4_weight`). dst (ceil(count / 2)), src (count) values in [-8, 7].
glmk_status glmk_pack_int4(uint8_t *dst, const int8_t *src, int64_t count);
/// Inverse of glmk_pack_int4, sign-extending each nibble. dst (count).
glmk_status glmk_unpack_int4(int8_t *dst, const uint8_t *src, int64_t count);

/// Quantize src (rows, cols) FP32 into `dst`, whose type, rows, cols and group
/// are set by the caller and whose data/scales point at writable buffers of
/// rows * row_bytes bytes and rows * scales_per_row fp16 values.
///  - Q4_ROW / Q4_GROUP follow GLM-130B `quantization/layers.py`: weights are
///    rounded to fp16, scale = fp16(absmax / 7), q = round_half_even(fp16(w / scale)).
///  - Q8_0 and Q4_0 follow GGUF's reference quantizers.
///  - F16 rounds to nearest even; F32 copies.
glmk_status glmk_quantize(const glmk_matrix *dst, void *dst_data, uint16_t *dst_scales,
                          const float *src /* (rows, cols) */);

// MARK: - Shapes for attention, RoPE and element-wise kernels

/// Multi-head attention over a KV cache with GLM's mask: key j is visible to the
/// query at absolute position p when j < bidirectional_len or j <= p.
/// Strides are in floats; queries, keys and outputs are (token, head, head_dim).
typedef struct {
    int64_t queries;            // sq
    int64_t keys;               // skv, entries in the cache (including the queries' own)
    int64_t heads;
    int64_t head_dim;           // at most GLMK_MAX_HEAD_DIM
    int64_t q_token_stride, q_head_stride;
    int64_t kv_token_stride, kv_head_stride;
    int64_t out_token_stride, out_head_stride;
    int64_t first_query_pos;    // absolute position (key index) of query 0
    int64_t bidirectional_len;  // keys [0, this) are visible to every query
    float scale;                // multiplies q.k, usually 1 / sqrt(head_dim)
    int kv_f16;                 // 1: k and v are IEEE fp16 (uint16_t), the half-size KV cache; 0: float
    int64_t kv_group;           // query heads per key/value head (grouped-query attention): query head h
                                // reads k/v head h / kv_group; 0 or 1 means one k/v head per query head
} glmk_attention_shape;

#define GLMK_MAX_HEAD_DIM 512

/// Rotary embedding applied in place to (tokens, heads, head_dim) with strides.
typedef struct {
    int64_t tokens, heads, head_dim;
    int64_t token_stride, head_stride; // floats
    int two_d;                          // 0: rotate all head_dim by position (GLM-130B);
                                        // 1: first half by position, second half by block position (ChatGLM)
    int64_t pair_offset;                // > 0: also rotate the vector this many floats after each head's
                                        // (K after Q in a fused QKV row) with the same angles, in the same pass
    int64_t interleaved_dim;            // > 0 (two_d = 0): rotate adjacent pairs (2i, 2i + 1) of each head's first
                                        // interleaved_dim values by position and leave the rest (ChatGLM2/3, GLM-4);
                                        // inv_freq then has interleaved_dim / 2 entries
} glmk_rope_shape;

typedef enum {
    GLMK_GELU_ERF = 0,  // 0.5 x (1 + erf(x / sqrt 2)), GLM-130B's GeGLU
    GLMK_GELU_TANH = 1, // 0.5 x (1 + tanh(0.79788456 (x + 0.044715 x^3))), ChatGLM-6B
} glmk_gelu_form;

/// The single element-wise steps an unfused layer runs one pass each (the
/// fused kernels above combine them); see glmk_kernels.eltwise.
typedef enum {
    GLMK_ELT_ADD_ROW = 0,   // out = a + b, b one row (n) broadcast over rows: a bias add
    GLMK_ELT_SCALE_ADD = 1, // out = a * scalar + b
    GLMK_ELT_MUL = 2,       // out = a * b
    GLMK_ELT_GELU_ERF = 3,  // out = gelu_erf(a)
    GLMK_ELT_GELU_TANH = 4, // out = gelu_tanh(a)
    GLMK_ELT_SILU = 5,      // out = silu(a) = a / (1 + e^-a)
    GLMK_ELT_SILU_MUL = 6,  // out = silu(a) * b: SwiGLU in one pass, a the gate half and b the up half
} glmk_eltwise_op;

/// Rows of n values inside larger rows: element (r, i) of a view is at r * stride + i.
typedef struct {
    int64_t rows, n;
    int64_t out_stride, a_stride, b_stride; // floats; b_stride 0 for GLMK_ELT_ADD_ROW
} glmk_eltwise_shape;

/// Quantizes activations x (k) to 8 bits in blocks of 32 (the last may be shorter):
/// scale = absmax / 127, q = round(x / scale); sums[b] = sum of block b's q (for the
/// zero-point correction of unsigned weight nibbles). xq (k), scales, sums (ceil(k / 32)).
glmk_status glmk_quantize_activations(int8_t *xq, float *scales, int32_t *sums, const float *x, int64_t k);

/// glmk_quantize_activations on each of m rows of x (m, k), rows in parallel:
/// xq (m, k), scales and sums (m, ceil(k / 32)).
glmk_status glmk_quantize_activation_rows(int8_t *xq, float *scales, int32_t *sums, const float *x, int64_t m, int64_t k);

/// Quantizes activations x (k) to 16 bits in blocks of 32 for glmk_kernels.matvec_q16
/// with a `weights` matrix: scale = absmax / 32767, q = round(x / scale), sums[b] =
/// block b's sum of q. A full block is stored in the order `weights`' nibbles come
/// out of a 16-byte load (GLM INT4: odd columns, then even; otherwise natural).
/// xq (k), scales, sums (ceil(k / 32)).
glmk_status glmk_quantize_activations_q16(int16_t *xq, float *scales, int32_t *sums, const float *x, int64_t k,
                                          glmk_type weights);

/// 1 when the AVX2 table's matmul_q8 has its fast kernel here (AVX-512 VNNI + VL).
int glmk_matmul_q8_fast_available(void);

/// RoPE inverse frequencies for a rotary dimension, rounded to fp16 as the
/// reference code does: inv_freq[i] = fp16(1 / base^(2i / rot_dim)). out (rot_dim / 2).
glmk_status glmk_rope_inv_freq(float *out, int64_t rot_dim, float base);
/// The same in FP32, without the fp16 rounding: ChatGLM2/3 and GLM-4 keep them in FP32.
glmk_status glmk_rope_inv_freq_f32(float *out, int64_t rot_dim, float base);

// MARK: - Workspaces

/// Scratch memory for one kernel call, owned by the caller. A workspace smaller
/// than glmk_workspace_bytes says makes the kernel return GLMK_ERR_INVALID_ARGUMENT.
typedef struct {
    void *data;   // 64-byte aligned (NULL only with bytes == 0)
    size_t bytes;
} glmk_workspace;

/// The table entries that take a workspace.
typedef enum {
    GLMK_WS_MATMUL = 0,     // w, m
    GLMK_WS_MATMUL_Q8 = 1,  // w, m
    GLMK_WS_MATVEC_Q16 = 2, // w, m (tokens)
    GLMK_WS_ATTENTION = 3,  // shape
    GLMK_WS_MATMUL_Q16 = 4, // w, m
} glmk_workspace_op;

/// Bytes the `isa` table's `op` needs for this call at the calling thread's
/// current OpenMP thread count (per-thread scratch is part of it). Arguments an
/// operation does not use may be NULL / 0. 0 for a call that needs none.
size_t glmk_workspace_bytes(glmk_isa isa, glmk_workspace_op op, const glmk_matrix *w, int64_t m,
                            const glmk_attention_shape *shape);

// MARK: - The kernel table

/// One table per ISA; every entry has the same meaning in every table.
typedef struct {
    glmk_isa isa;

    /// y (n) = W (n, k) @ x (k) + bias (n, may be NULL). Parallel over rows.
    glmk_status (*matvec)(float *y, const glmk_matrix *w, const float *x, const float *bias);

    /// Y (m, n) = X (m, k) @ W (n, k)^T + bias (n, may be NULL). Row strides in floats.
    glmk_status (*matmul)(float *y, int64_t y_stride, const glmk_matrix *w,
                          const float *x, int64_t x_stride, int64_t m, const float *bias, glmk_workspace ws);

    /// out (count) = W[row, k0 : k0 + count] as FP32; k0 a multiple of the type's block.
    glmk_status (*dequantize_row)(float *out, const glmk_matrix *w, int64_t row,
                                  int64_t k0, int64_t count);

    /// out (count, cols) = table rows ids (count); an id outside [0, rows) is OUT_OF_RANGE.
    glmk_status (*embedding)(float *out, const glmk_matrix *table, const int32_t *ids, int64_t count);

    /// Tiled online-softmax attention in FP32, see glmk_attention_shape; k and v are
    /// float, or fp16 when shape->kv_f16 (widened to FP32 as they are read).
    glmk_status (*attention)(float *out, const float *q, const void *k, const void *v,
                             const glmk_attention_shape *shape, glmk_workspace ws);

    /// DeepNorm residual + LayerNorm: out (rows, n) = LN(x * alpha + y) * gamma + beta.
    /// y may be NULL (plain LN of x * alpha). out may alias x or y.
    glmk_status (*residual_layernorm)(float *out, const float *x, float alpha, const float *y,
                                      const float *gamma, const float *beta,
                                      int64_t rows, int64_t n, float eps);

    /// Pre-norm residual + RMSNorm: with y, x += y first (x is the residual stream, updated
    /// in place); then out (rows, n) = x / sqrt(mean(x^2) + eps) * gamma. y may be NULL
    /// (plain RMSNorm of x); out may alias x only when y is NULL.
    glmk_status (*residual_rmsnorm)(float *out, float *x, const float *y, const float *gamma,
                                    int64_t rows, int64_t n, float eps);

    /// GeGLU: out (rows, inner) = (u1 + b1) * gelu_erf(u2 + b2), where u (rows, 2 * inner)
    /// is [u1 | u2] and bias (2 * inner) may be NULL.
    glmk_status (*bias_geglu)(float *out, const float *u, const float *bias,
                              int64_t rows, int64_t inner);

    /// out (rows, n) = gelu(x + bias); bias (n) may be NULL; out may alias x.
    glmk_status (*bias_gelu)(float *out, const float *x, const float *bias,
                             int64_t rows, int64_t n, glmk_gelu_form form);

    /// y (n) = W (n, k) @ x + bias with x given as 8-bit blocks (glmk_quantize_activations):
    /// integer dot products per 32 weights, then the weight scale x the activation block's scale.
    /// INT4 types only (q4_0, q4_row, q4_group with group % 32 == 0); others are UNSUPPORTED.
    glmk_status (*matvec_q8)(float *y, const glmk_matrix *w, const int8_t *xq, const float *x_scales,
                             const int32_t *x_sums, const float *bias);

    /// Y (m, n) = X (m, k) @ W (n, k)^T + bias with each token's x given as 16-bit blocks
    /// (glmk_quantize_activations_q16 for this W; xq (m, k), scales and sums (m, ceil(k / 32))):
    /// integer dot products per 32 weights, exact in int32, then the weight scale x the
    /// block's scale. The default decode path for q4_0, q4_row, q4_group (group % 32 == 0)
    /// and q8_0; other types are UNSUPPORTED. Each token's row of Y is bit for bit what
    /// the call with that token alone gives: m > 1 is batched decode (one token of each
    /// of m sequences), where each group of weight rows is read from memory once and
    /// serves every token while it is in cache.
    glmk_status (*matvec_q16)(float *y, int64_t y_stride, const glmk_matrix *w, const int16_t *xq,
                              const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                              glmk_workspace ws);
    /// Y (m, n) = X (m, k) @ W (n, k)^T + bias with X quantized per token to 8-bit blocks
    /// (glmk_quantize_activations on each row: xq (m, k), scales and sums (m, ceil(k / 32))):
    /// the prefill twin of matvec_q8, INT4 types as there. The AVX2 table's kernel needs
    /// AVX-512 VNNI (vpdpbusd) and returns UNSUPPORTED without it; callers fall back to matmul.
    glmk_status (*matmul_q8)(float *y, int64_t y_stride, const glmk_matrix *w, const int8_t *xq,
                             const float *x_scales, const int32_t *x_sums, int64_t m, const float *bias,
                             glmk_workspace ws);
    /// Y (m, n) = X (m, k) @ W (n, k)^T + bias with each token's x rounded to 16 bits per
    /// 32-block inside the call (glmk_quantize_activations_q16's rounding) and integer dot
    /// products: for each token the arithmetic of matvec_q16, in a mat-mat's order (the
    /// default prefill where a table has it). INT4 types with cols % 32 == 0 (q4_group:
    /// groups of 32·j); others are UNSUPPORTED, as is a table without it (NULL).
    glmk_status (*matmul_q16)(float *y, int64_t y_stride, const glmk_matrix *w, const float *x, int64_t x_stride,
                              int64_t m, const float *bias, glmk_workspace ws);
    /// One element-wise step over strided rows (out may alias a); b unused by the GeLUs.
    glmk_status (*eltwise)(float *out, const float *a, const float *b, float scalar, glmk_eltwise_op op,
                           const glmk_eltwise_shape *shape);

    /// RoPE in place, rotate-half (GPT-NeoX) form. positions (tokens); block_positions
    /// (tokens) only for two_d. inv_freq (rot_dim / 2) with rot_dim = head_dim (1D)
    /// or head_dim / 2 (2D).
    glmk_status (*rope)(float *x, const glmk_rope_shape *shape, const int32_t *positions,
                        const int32_t *block_positions, const float *inv_freq);
} glmk_kernels;

/// The table for `isa`, or NULL when this CPU cannot run it.
const glmk_kernels *glmk_kernels_for(glmk_isa isa);

// MARK: - Topology and threads

typedef struct {
    int32_t packages;
    int32_t numa_nodes;
    int32_t cores;            // physical cores
    int32_t pus;              // hardware threads
    int64_t l1d_bytes;        // per core (first core's caches)
    int64_t l2_bytes;
    int64_t l3_bytes;         // per L3 instance
    int32_t l3_instances;
    int64_t memory_bytes;     // physical memory the OS reports
    char cpu_model[128];      // the first package's CPUModel string, "" if unknown
} glmk_topology;

/// Fills `out` from hwloc.
glmk_status glmk_topology_query(glmk_topology *out);

/// The thread count the runtime uses by default: OMP_NUM_THREADS when set,
/// otherwise one per physical core.
int32_t glmk_threads_default(void);

/// Sets the OpenMP thread count (<= 0 means the default) and, when `bind` is
/// non-zero, binds OpenMP thread i to physical core i mod cores.
glmk_status glmk_threads_configure(int32_t threads, int bind);

/// For the calling thread only (a pipeline stage): `threads` OpenMP threads for
/// the kernels it calls, bound to physical cores first_core .. first_core + threads - 1.
glmk_status glmk_threads_configure_stage(int32_t threads, int32_t first_core);

/// The thread count parallel kernels will use now.
int32_t glmk_threads_current(void);

// MARK: - Bench probes (bench_probes.c)

/// Sums `count` floats of `buffer` (64-byte aligned) with all OpenMP threads,
/// each reading its own share; returns the sum so the reads cannot be elided.
double glmk_probe_read(const float *buffer, int64_t count, glmk_isa isa);
/// Runs FMA chains on every thread; *flops_out = floating-point operations done.
double glmk_probe_fma(int64_t iterations, glmk_isa isa, int64_t *flops_out);
/// Runs int8 dot-product chains on every thread; *ops_out = 2 x multiply-accumulates done.
double glmk_probe_int8(int64_t iterations, glmk_isa isa, int64_t *ops_out);
/// Runs int16 dot-product chains (vpmaddwd, the 16-bit-activation kernels' instruction)
/// on every thread; *ops_out = 2 x multiply-accumulates done.
double glmk_probe_int16(int64_t iterations, glmk_isa isa, int64_t *ops_out);
/// Fills a matrix's data (rows * row_bytes) and scales with valid random values, in parallel.
glmk_status glmk_fill_random_weights(const glmk_matrix *w, void *data, uint16_t *scales, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
