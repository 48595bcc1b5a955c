/*
 * workspace.c — how much scratch each kernel call needs (glmk_workspace_bytes).
 * Kernels never allocate: the caller queries, provides a workspace of at least
 * that size, and the kernel carves it (internal.h's arena). Each size comes from
 * a query function beside its kernel, so the two cannot drift apart unnoticed:
 * a kernel given less than its query says returns GLMK_ERR_INVALID_ARGUMENT.
 */
#include "internal.h"

int glmk_workspace_threads(void) {
    const int threads = omp_get_max_threads();
    return threads > 0 ? threads : 1;
}

size_t glmk_workspace_bytes(glmk_isa isa, glmk_workspace_op op, const glmk_matrix *w, int64_t m,
                            const glmk_attention_shape *shape) {
    if (isa == GLMK_ISA_SCALAR || !glmk_isa_supported(isa)) return 0; // the references need no scratch
#if GLMK_X86
    switch (op) {
    case GLMK_WS_MATMUL:
        if (!w) return 0;
        return isa == GLMK_ISA_AVX512 ? glmk_matmul_avx512_workspace(w, m) : glmk_matmul_avx2_workspace(w, m);
    case GLMK_WS_MATMUL_Q8: return w ? glmk_matmul_q8_vnni_workspace(w, m) : 0;
    case GLMK_WS_MATVEC_Q16:
        if (!w || m <= 0) return 0;
        return isa == GLMK_ISA_AVX512 ? glmk_matvec_q16_avx512_workspace(w, m) : glmk_q16_zero_points_bytes(w, m);
    case GLMK_WS_ATTENTION: return glmk_attention_avx2_workspace(shape);
    case GLMK_WS_MATMUL_Q16: return w && isa == GLMK_ISA_AVX512 ? glmk_matmul_q16_avx512_workspace(w, m) : 0;
    }
#else
    (void)op, (void)w, (void)m, (void)shape;
#endif
    return 0;
}
