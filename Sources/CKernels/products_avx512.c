/*
 * products_avx512.c — the FP32 mat-mat's register tile on 512-bit registers:
 * 12 tokens x 32 weight rows, two zmm accumulators per token (24 of the 32
 * registers). Per k the panel's 32 values are two loads and each token's
 * activation one broadcast that feeds two FMAs, so loads stay at about one
 * per two FMAs. (A 24 x 16 tile, one broadcast per FMA, measured 63 GFLOP/s
 * per core against 176 for 512-bit FMA chains: the broadcasts' loads, not the
 * FMAs, set its pace.) products_avx2.c's driver (dequantized, transposed
 * weight panels, packed X tiles, threads over panels) runs it with its
 * panels 32 rows wide.
 */
#include "internal.h"

#if GLMK_X86
#include <immintrin.h>

#define Z_TARGET "avx2,fma,f16c,avx512f"

enum { MR = 12, NR = 32 };

/// C (mr, 32) += X (mr, kc) @ P (kc, 32), X packed as (kc, 12); mr is a literal at each
/// call site, so the loops unroll and the accumulators stay in registers.
static inline __attribute__((always_inline, target(Z_TARGET)))
void tile_kernel(int mr, int64_t kc, const float *xp, const float *panel, float *c, int64_t c_stride) {
    __m512 acc[MR][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(panel + k * NR), b1 = _mm512_load_ps(panel + k * NR + 16);
        for (int i = 0; i < mr; i++) {
            const __m512 a = _mm512_set1_ps(xp[k * MR + i]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_storeu_ps(c + i * c_stride, _mm512_add_ps(acc[i][0], _mm512_loadu_ps(c + i * c_stride)));
        _mm512_storeu_ps(c + i * c_stride + 16, _mm512_add_ps(acc[i][1], _mm512_loadu_ps(c + i * c_stride + 16)));
    }
}

#define TILE_CASE(n) case n: tile_kernel(n, kc, xp, panel, c, c_stride); break;

__attribute__((target(Z_TARGET))) static void tile(int mr, int64_t kc, const float *xp, const float *panel, float *c, int64_t c_stride) {
    switch (mr) {
    TILE_CASE(12) TILE_CASE(11) TILE_CASE(10) TILE_CASE(9) TILE_CASE(8) TILE_CASE(7)
    TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2)
    default: tile_kernel(1, kc, xp, panel, c, c_stride); break;
    }
}

const glmk_fp32_tile glmk_tile_avx512 = {.mr = MR, .nr = NR, .run = tile};

glmk_status glmk_matmul_avx512(float *y, int64_t y_stride, const glmk_matrix *w, const float *x,
                               int64_t x_stride, int64_t m, const float *bias, glmk_workspace ws) {
    return glmk_matmul_tiled(y, y_stride, w, x, x_stride, m, bias, ws, &glmk_tile_avx512);
}

size_t glmk_matmul_avx512_workspace(const glmk_matrix *w, int64_t m) { return glmk_matmul_tiled_workspace(w, m, &glmk_tile_avx512); }

#endif
