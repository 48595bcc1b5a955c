/*
 * glm_plugin.h — the C ABI of GLMRuntime kernel plugins.
 *
 * A plugin is a shared library exporting one symbol:
 *
 *     const glm_plugin *glm_plugin_init(void);
 *
 * It returns a pointer to a static, immutable description: the ABI version it
 * was built against, the size of the struct, its name and version, a priority
 * and a table of kernels. The runtime checks `abi_version` first and refuses
 * a mismatch, naming both versions; then `struct_size`; then every kernel.
 *
 * Compatibility: fields are only ever appended; any change to a layout or a
 * signature below bumps GLM_PLUGIN_ABI_VERSION.
 *
 * Ownership and threads: everything the plugin returns stays owned by the
 * plugin and must live until the process exits (the runtime never unloads a
 * plugin). Kernels are called from one thread at a time per call, but may be
 * called concurrently for different calls; they may use OpenMP or threads of
 * their own. Kernels never allocate on the caller's behalf, never exit, and
 * return 0 on success or a non-zero error code.
 *
 * Layouts: row-major, FP32 activations. A weight matrix W has `rows` output
 * features and `cols` input features; products compute y = W x + b. Weight
 * types and their byte layouts are those of GLMRuntime's kernel library
 * (docs/kernels.md): 0 f32, 1 f16, 2 q8_0, 3 q4_0, 4 q4_row, 5 q4_group.
 */
#ifndef GLM_PLUGIN_H
#define GLM_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GLM_PLUGIN_ABI_VERSION 1

/// Instruction sets a kernel needs (bit mask); the runtime skips kernels the CPU cannot run.
enum {
    GLM_PLUGIN_ISA_NONE = 0,
    GLM_PLUGIN_ISA_AVX2_FMA = 1 << 0, // x86-64 AVX2 + FMA + F16C
};

/// A weight matrix, identical in layout to the kernel library's glmk_matrix.
typedef struct {
    int32_t type;            // weight type, see above
    int64_t rows;            // n, output features
    int64_t cols;            // k, input features
    int64_t group;           // q4_group: weights per scale; q4_row: == cols; otherwise 0
    const void *data;        // (rows, row_bytes)
    int64_t row_bytes;       // bytes of one row of data
    const uint16_t *scales;  // fp16 scales of the INT4 types, else NULL
} glm_plugin_matrix;

/// y (rows) = W (rows, cols) @ x (cols) + bias (rows, may be NULL).
typedef int (*glm_plugin_matvec_fn)(float *y, const glm_plugin_matrix *w, const float *x, const float *bias);

/// Y (m, rows) = X (m, cols) @ W^T + bias; row strides in floats.
typedef int (*glm_plugin_matmul_fn)(float *y, int64_t y_stride, const glm_plugin_matrix *w, const float *x,
                                    int64_t x_stride, int64_t m, const float *bias);

/// One kernel: the operation it implements and its function. `operation` is a
/// runtime operation name: "matvec.<type>" or "matmul.<type>" with <type> one
/// of f32, f16, q8_0, q4_0, q4_row, q4_group. Exactly the function pointer
/// matching the operation's kind is set; the others are NULL.
typedef struct {
    const char *operation;
    uint32_t isa_required;      // GLM_PLUGIN_ISA_* bits
    glm_plugin_matvec_fn matvec;
    glm_plugin_matmul_fn matmul;
} glm_plugin_kernel;

typedef struct {
    uint32_t abi_version;       // GLM_PLUGIN_ABI_VERSION the plugin was built with
    uint32_t struct_size;       // sizeof(glm_plugin) the plugin was built with
    const char *name;           // unique provider name, e.g. "example-q4"
    const char *version;        // the plugin's own version string
    int32_t priority;           // higher wins over other providers that pass verification
    uint32_t kernel_count;
    const glm_plugin_kernel *kernels;
} glm_plugin;

/// The entry point every plugin exports.
typedef const glm_plugin *(*glm_plugin_init_fn)(void);
#define GLM_PLUGIN_ENTRY "glm_plugin_init"

#ifdef __cplusplus
}
#endif
#endif
