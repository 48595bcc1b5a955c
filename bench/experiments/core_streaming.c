/*
 * core_streaming.c — how fast one core streams from DRAM when it also has work
 * to do per byte: the measurement behind docs/performance.md's account of the
 * one-thread INT4 decode figures.
 *
 * The loop reads 8 rows side by side, 64 bytes per row per step (the access
 * pattern of the 8-row decode kernels), and per 64 bytes runs W independent
 * vector operations. It reports the rate from DRAM (a 75 MB matrix) and on
 * L2-resident rows (the work alone). If memory and work overlapped fully, the
 * DRAM rate would stay at the W = 0 figure until the work alone became slower.
 *
 * The second table reads the same bytes in the same steps from one stream: as
 * if the 8 rows' 64-byte pieces were interleaved in memory, the layout a
 * load-time repack of the weights would give the decode kernels.
 *
 * First it measures DRAM latency (dependent loads in random order over 256 MB
 * of 2 MB pages, so few of them also miss the TLB), and prints beside each DRAM
 * rate the 64-byte lines that rate keeps in flight by Little's law
 * (rate x latency / 64): a core's DRAM rate is the misses it keeps outstanding.
 *
 * Run: bench/experiments/run core_streaming   (one thread: it pins nothing,
 * uses no OpenMP; run it on an idle machine).
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define TARGET __attribute__((target("avx2,avx512f,avx512bw")))

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// Where piece o (bytes) of row r of 8-row group g lies: rows one after another
// (the model file's layout), or the group's 8 pieces side by side (one stream).
#define ROWS_OFFSET(g, r, o) (((g) + (r)) * row_bytes + (o))
#define INTERLEAVED_OFFSET(g, r, o) ((g) * row_bytes + (o) * 8 + (r) * 64)

// W independent adds + xors per 64-byte load; the asm keeps the compiler from folding them
#define STREAM(NAME, W, OFFSET)                                                                              \
    TARGET __attribute__((noinline)) static uint64_t NAME##_##W(const uint8_t *p, int64_t rows, int64_t row_bytes) { \
        __m512i acc[8];                                                                                      \
        for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_si512();                                         \
        for (int64_t g = 0; g + 8 <= rows; g += 8)                                                           \
            for (int64_t o = 0; o < row_bytes; o += 64)                                                      \
                for (int r = 0; r < 8; r++) {                                                                \
                    const __m512i v = _mm512_loadu_si512(p + OFFSET(g, r, o));                               \
                    __m512i s = v;                                                                           \
                    for (int i = 0; i < W; i++) {                                                            \
                        __m512i t = _mm512_add_epi32(v, _mm512_set1_epi32(i + 1));                           \
                        __asm__("" : "+v"(t));                                                               \
                        s = _mm512_xor_si512(s, t);                                                          \
                    }                                                                                        \
                    acc[r] = _mm512_add_epi32(acc[r], s);                                                    \
                }                                                                                            \
        for (int r = 1; r < 8; r++) acc[0] = _mm512_xor_si512(acc[0], acc[r]);                               \
        return (uint64_t)_mm512_reduce_add_epi64(acc[0]);                                                    \
    }
#define STREAMS(NAME, OFFSET) \
    STREAM(NAME, 0, OFFSET) STREAM(NAME, 2, OFFSET) STREAM(NAME, 4, OFFSET) STREAM(NAME, 6, OFFSET) STREAM(NAME, 8, OFFSET)
STREAMS(rows, ROWS_OFFSET)
STREAMS(interleaved, INTERLEAVED_OFFSET)

/// Nanoseconds per dependent load over 256 MB in a random cyclic order (one
/// 8-byte index per 64-byte line): DRAM latency as one load at a time sees it.
static double dram_latency_ns(void) {
    const size_t lines = (size_t)256 << 20 >> 6;
    uint64_t *buf = aligned_alloc(2 << 20, lines * 64);
    size_t *order = malloc(lines * sizeof(size_t));
    if (!buf || !order) return 0;
    madvise(buf, lines * 64, MADV_HUGEPAGE); // a hint: without 2 MB pages most loads also walk the page table
    for (size_t i = 0; i < lines; i++) order[i] = i;
    uint64_t state = 88172645463325252ull;
    for (size_t i = lines - 1; i > 0; i--) { // Fisher-Yates with xorshift
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        const size_t j = state % (i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (size_t i = 0; i < lines; i++) buf[order[i] * 8] = order[(i + 1) % lines] * 8;
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        size_t p = order[0] * 8;
        const long steps = 10000000;
        const double t = now();
        for (long i = 0; i < steps; i++) p = buf[p];
        const double ns = (now() - t) / (double)steps * 1e9;
        if (ns < best && p != (size_t)-1) best = ns;
    }
    free(buf), free(order);
    return best;
}

typedef uint64_t (*stream_fn)(const uint8_t *, int64_t, int64_t);

int main(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) {
        fprintf(stderr, "core_streaming: needs AVX-512 F/BW\n");
        return 1;
    }
    const double latency = dram_latency_ns();
    printf("DRAM latency (dependent random loads, best of 3): %.0f ns\n", latency);
    const int64_t rows = 12288, row_bytes = 6144, cached_rows = 64; // 75 MB; 384 KB
    uint8_t *big = aligned_alloc(64, (size_t)(rows * row_bytes)), *small = aligned_alloc(64, (size_t)(cached_rows * row_bytes));
    if (!big || !small) return 1;
    for (int64_t i = 0; i < rows * row_bytes; i++) big[i] = (uint8_t)i;
    for (int64_t i = 0; i < cached_rows * row_bytes; i++) small[i] = (uint8_t)i;
    const stream_fn layouts[2][5] = {{rows_0, rows_2, rows_4, rows_6, rows_8},
                                     {interleaved_0, interleaved_2, interleaved_4, interleaved_6, interleaved_8}};
    const char *titles[2] = {"8 rows side by side, 64 B per row per step", "the same pieces as one stream (rows interleaved)"};
    const int work[] = {0, 2, 4, 6, 8};
    for (int layout = 0; layout < 2; layout++) {
        printf("one core, %s (best of 5)\n", titles[layout]);
        for (int i = 0; i < 5; i++) {
            const stream_fn fn = layouts[layout][i];
            double dram = 0, l2 = 0;
            for (int r = 0; r < 5; r++) {
                double t = now();
                volatile uint64_t sink = fn(big, rows, row_bytes);
                (void)sink;
                const double rate = (double)(rows * row_bytes) / (now() - t) / 1e9;
                if (rate > dram) dram = rate;
            }
            for (int r = 0; r < 5; r++) {
                double t = now();
                for (int j = 0; j < 200; j++) {
                    volatile uint64_t sink = fn(small, cached_rows, row_bytes);
                    (void)sink;
                }
                const double rate = 200.0 * (double)(cached_rows * row_bytes) / (now() - t) / 1e9;
                if (rate > l2) l2 = rate;
            }
            printf("%2d vector ops per 64 B: DRAM %5.1f GB/s (%3.0f lines in flight)   the same loop on L2-resident rows %6.1f GB/s\n",
                   2 * work[i] + 2, dram, dram * latency / 64.0, l2);
        }
    }
    return 0;
}
