/*
 * cpu_features.c — which instruction sets this CPU runs, read at run time from
 * CPUID (never from the build machine's flags), and the per-ISA kernel tables.
 */
#include "internal.h"
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

const char *glmk_isa_name(glmk_isa isa) {
    switch (isa) {
    case GLMK_ISA_SCALAR: return "scalar";
    case GLMK_ISA_AVX2: return "avx2+fma";
    case GLMK_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
}

int glmk_isa_supported(glmk_isa isa) {
    switch (isa) {
    case GLMK_ISA_SCALAR:
        return 1;
    case GLMK_ISA_AVX2:
#if GLMK_X86
        // __builtin_cpu_supports reads CPUID once and also checks that the OS
        // saves the YMM registers (XGETBV), so a hypervisor hiding them is safe.
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
#else
        return 0;
#endif
    case GLMK_ISA_AVX512:
#if GLMK_X86
        // what the 512-bit kernels use: the byte-split decode needs BW and VNNI,
        // the int8 mat-mat VNNI (every VNNI CPU also has BW and VL)
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               glmk_isa_supported(GLMK_ISA_AVX2);
#else
        return 0;
#endif
    default:
        return 0;
    }
}

glmk_isa glmk_isa_best(void) {
    const char *forced = getenv("GLM_ISA");
    if (forced && strcasecmp(forced, "scalar") == 0) return GLMK_ISA_SCALAR;
    if (forced && strcasecmp(forced, "avx2") == 0 && glmk_isa_supported(GLMK_ISA_AVX2)) return GLMK_ISA_AVX2;
    if (glmk_isa_supported(GLMK_ISA_AVX512)) return GLMK_ISA_AVX512;
    return glmk_isa_supported(GLMK_ISA_AVX2) ? GLMK_ISA_AVX2 : GLMK_ISA_SCALAR;
}

const char *glmk_status_string(glmk_status status) {
    switch (status) {
    case GLMK_OK: return "ok";
    case GLMK_ERR_INVALID_ARGUMENT: return "invalid argument";
    case GLMK_ERR_UNSUPPORTED: return "unsupported shape or type";
    case GLMK_ERR_OUT_OF_RANGE: return "index out of range";
    case GLMK_ERR_SYSTEM: return "system error";
    default: return "unknown status";
    }
}

// MARK: - The kernel tables: one row per ISA, one column per operation.

static const glmk_kernels kernels_scalar = {
    .isa = GLMK_ISA_SCALAR,
    .matvec = glmk_matvec_scalar,
    .matmul = glmk_matmul_scalar,
    .dequantize_row = glmk_dequantize_row_scalar,
    .embedding = glmk_embedding_scalar,
    .attention = glmk_attention_scalar,
    .residual_layernorm = glmk_residual_layernorm_scalar,
    .residual_rmsnorm = glmk_residual_rmsnorm_scalar,
    .bias_geglu = glmk_bias_geglu_scalar,
    .bias_gelu = glmk_bias_gelu_scalar,
    .rope = glmk_rope_scalar,
    .eltwise = glmk_eltwise_scalar,
    .matvec_q8 = glmk_matvec_q8_scalar,
    .matvec_q16 = glmk_matvec_q16_scalar,
    .matmul_q8 = glmk_matmul_q8_scalar,
};

#if GLMK_X86
static const glmk_kernels kernels_avx2 = {
    .isa = GLMK_ISA_AVX2,
    .matvec = glmk_matvec_avx2,
    .matmul = glmk_matmul_avx2,
    .dequantize_row = glmk_dequantize_row_avx2,
    .embedding = glmk_embedding_avx2,
    .attention = glmk_attention_avx2,
    .residual_layernorm = glmk_residual_layernorm_avx2,
    .residual_rmsnorm = glmk_residual_rmsnorm_avx2,
    .bias_geglu = glmk_bias_geglu_avx2,
    .bias_gelu = glmk_bias_gelu_avx2,
    .rope = glmk_rope_avx2,
    .eltwise = glmk_eltwise_avx2,
    .matvec_q8 = glmk_matvec_q8_avx2,
    .matvec_q16 = glmk_matvec_q16_avx2,
    .matmul_q8 = glmk_matmul_q8_vnni, // both x86 tables: it reports UNSUPPORTED without AVX-512 VNNI
};


// AVX-512 replaces only the kernels that gain from it; every other entry is
// AVX2's, copied from that table so a kernel added there is here too.
static glmk_kernels kernels_avx512;
static pthread_once_t avx512_once = PTHREAD_ONCE_INIT;

static void build_avx512_table(void) {
    kernels_avx512 = kernels_avx2;
    kernels_avx512.isa = GLMK_ISA_AVX512;
    kernels_avx512.matvec_q16 = glmk_matvec_q16_avx512;
    kernels_avx512.matmul = glmk_matmul_avx512;
    if (glmk_matmul_q8_fast_available()) kernels_avx512.matmul_q16 = glmk_matmul_q16_avx512; // needs VNNI
}
#endif

const glmk_kernels *glmk_kernels_for(glmk_isa isa) {
    if (!glmk_isa_supported(isa)) return NULL;
    switch (isa) {
    case GLMK_ISA_SCALAR: return &kernels_scalar;
#if GLMK_X86
    case GLMK_ISA_AVX2: return &kernels_avx2;
    case GLMK_ISA_AVX512:
        pthread_once(&avx512_once, build_avx512_table);
        return &kernels_avx512;
#endif
    default: return NULL;
    }
}
