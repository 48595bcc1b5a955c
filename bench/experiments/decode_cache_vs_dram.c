/*
 * decode_cache_vs_dram.c — the INT4 decode mat-vec (16-bit activations, the
 * default) on matrices that fit in cache and on one that streams from DRAM, for
 * each kernel table this CPU has: how much of a kernel's own speed survives
 * when its weights come from memory. Backs docs/performance.md's account of
 * the one-thread decode figures.
 *
 * Run: OMP_NUM_THREADS=1 bench/experiments/run decode_cache_vs_dram [q4_row|q4_group|q4_0]
 *      (and with OMP_NUM_THREADS unset for every core)
 */
#include "glm_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

glmk_status glmk_fill_random_weights(const glmk_matrix *w, void *data, uint16_t *scales, uint64_t seed);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/// Median GB/s of weight bytes for each table on one matrix.
static void measure(glmk_type type, int64_t n, int64_t k, int reps) {
    glmk_matrix w = {.type = type, .rows = n, .cols = k, .group = type == GLMK_TYPE_Q4_ROW ? k : 128};
    w.row_bytes = glmk_row_bytes(w.type, k);
    void *data = aligned_alloc(64, (size_t)((n * w.row_bytes + 63) / 64 * 64));
    const int64_t scales_per_row = glmk_scales_per_row(w.type, k, w.group);
    uint16_t *scales = scales_per_row ? malloc((size_t)(n * scales_per_row) * 2) : NULL;
    w.data = data;
    w.scales = scales;
    glmk_fill_random_weights(&w, data, scales, 1);
    float *x = malloc((size_t)k * 4), *y = malloc((size_t)n * 4);
    for (int64_t i = 0; i < k; i++) x[i] = 0.01f * (float)((i * 37) % 101) - 0.5f;
    const int64_t blocks = (k + 31) / 32;
    int16_t *xq = malloc((size_t)k * 2);
    float *xs = malloc((size_t)blocks * 4);
    int32_t *sums = malloc((size_t)blocks * 4);
    glmk_quantize_activations_q16(xq, xs, sums, x, k, w.type);
    const double bytes = (double)(n * w.row_bytes);
    printf("%6lld x %-6lld (%5.1f MB):", (long long)n, (long long)k, bytes / 1e6);
    const glmk_isa isas[] = {GLMK_ISA_AVX2, GLMK_ISA_AVX512};
    const char *names[] = {"avx2", "avx512"};
    for (int i = 0; i < 2; i++) {
        const glmk_kernels *table = glmk_kernels_for(isas[i]);
        if (!table) continue;
        double t[64];
        glmk_workspace ws = {.bytes = glmk_workspace_bytes(isas[i], GLMK_WS_MATVEC_Q16, &w, 1, NULL)};
        ws.data = aligned_alloc(64, (ws.bytes + 63) / 64 * 64 + 64);
        for (int r = 0; r < reps; r++) {
            const double start = now();
            table->matvec_q16(y, n, &w, xq, xs, sums, 1, NULL, ws);
            t[r] = now() - start;
        }
        free(ws.data);
        qsort(t, (size_t)reps, sizeof(double), by_value);
        printf("  %s %5.1f GB/s", names[i], bytes / t[reps / 2] / 1e9);
    }
    printf("\n");
    free(data), free(scales), free(x), free(y), free(xq), free(xs), free(sums);
}

int main(int argc, char **argv) {
    // the type by name: q4_row (GLM-130B's INT4, the default), q4_group (groups of 128), q4_0
    const char *name = argc > 1 ? argv[1] : "q4_row";
    glmk_type type = GLMK_TYPE_COUNT;
    for (int t = 0; t < GLMK_TYPE_COUNT; t++)
        if (!strcmp(glmk_type_info_get((glmk_type)t)->name, name)) type = (glmk_type)t;
    if (type != GLMK_TYPE_Q4_ROW && type != GLMK_TYPE_Q4_GROUP && type != GLMK_TYPE_Q4_0) {
        fprintf(stderr, "decode_cache_vs_dram: type must be q4_row, q4_group or q4_0, got %s\n", name);
        return 1;
    }
    printf("%s decode with 16-bit activations, weight bytes per second (median)\n", name);
    measure(type, 1536, 2048, 51);   // ~1.6 MB: L2/L3-resident, the kernels' own speed
    measure(type, 4096, 4096, 31);   // ~8.4 MB: L3-resident
    measure(type, 12288, 12288, 9);  // ~75 MB: from DRAM
    return 0;
}
