/*
 * bench_probes.c — loops that measure the machine's limits for the bench, and
 * fast random weight data for benchmark matrices:
 *  - read bandwidth: a STREAM-like sum over a buffer far larger than the LLC;
 *  - FP32 FMA peak: independent FMA chains, no memory traffic;
 *  - int8 dot peak: vpdpbusd chains where the CPU has AVX-512 VNNI (what the
 *    int8 mat-mat issues), else vpmaddubsw + vpmaddwd + vpaddd chains (what an
 *    AVX2 int8 inner loop issues per 32 multiply-accumulates).
 * Each has a scalar twin so the bench runs (slowly) without AVX2.
 */
#include "internal.h"
#include "simd_avx2.h"

// MARK: - Read bandwidth

static double read_scalar(const float *p, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += p[i];
    return s;
}

#if GLMK_X86
GLMK_AVX2 static double read_avx2(const float *p, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    }
    double s = glmk_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += p[i];
    return s;
}
#endif

double glmk_probe_read(const float *buffer, int64_t count, glmk_isa isa) {
    double total = 0;
#pragma omp parallel reduction(+ : total)
    {
        const int t = omp_get_thread_num(), threads = omp_get_num_threads();
        // each thread reads its own contiguous share, 32-float aligned
        const int64_t share = (count / threads) / 32 * 32;
        const float *p = buffer + t * share;
        const int64_t n = t == threads - 1 ? count - t * share : share;
#if GLMK_X86
        total += isa != GLMK_ISA_SCALAR ? read_avx2(p, n) : read_scalar(p, n);
#else
        (void)isa;
        total += read_scalar(p, n);
#endif
    }
    return total;
}

// MARK: - FP32 FMA peak

#if GLMK_X86
/// 12 independent chains hide the FMA latency (4 cycles x 2 ports + margin).
GLMK_AVX2 static float fma_avx2(int64_t iterations) {
    __m256 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    return glmk_hsum256(s);
}
#endif

#if GLMK_X86
/// The 512-bit form: 16 chains (4-cycle latency x 2 ports x 2 for margin; 32 zmm registers).
__attribute__((target("avx512f"))) static float fma_avx512(int64_t iterations) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

static float fma_scalar(int64_t iterations) {
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i * 1e-3f;
    for (int64_t it = 0; it < iterations; it++)
        for (int i = 0; i < 12; i++) a[i] = a[i] * 0.999999f + 1e-7f;
    float s = 0;
    for (int i = 0; i < 12; i++) s += a[i];
    return s;
}

typedef double (*probe_loop)(int64_t iterations);

/// Runs `loop` on every OpenMP thread at once; returns the summed results and the thread count.
static double on_all_threads(probe_loop loop, int64_t iterations, int *threads_used) {
    double total = 0;
    int used = 1;
#pragma omp parallel reduction(+ : total)
    {
#pragma omp single
        used = omp_get_num_threads();
        total += loop(iterations);
    }
    *threads_used = used;
    return total;
}

static double fma_scalar_loop(int64_t n) { return fma_scalar(n); }
#if GLMK_X86
static double fma_avx2_loop(int64_t n) { return fma_avx2(n); }
static double fma_avx512_loop(int64_t n) { return fma_avx512(n); }
#endif

double glmk_probe_fma(int64_t iterations, glmk_isa isa, int64_t *flops_out) {
    int threads_used = 1;
    // the width the ISA's kernels use: 512-bit FMAs run up to twice the 256-bit rate
    const int wide = isa == GLMK_ISA_AVX512 && glmk_isa_supported(GLMK_ISA_AVX512);
#if GLMK_X86
    const probe_loop loop = wide ? fma_avx512_loop : isa != GLMK_ISA_SCALAR ? fma_avx2_loop : fma_scalar_loop;
#else
    const probe_loop loop = fma_scalar_loop;
#endif
    const double total = on_all_threads(loop, iterations, &threads_used);
    // per iteration per thread: 16 FMAs of 16 lanes (AVX-512), 12 of 8 (AVX2) or 12 of 1; 2 flops each
    const int64_t fmas = wide ? 16 * 16 : isa != GLMK_ISA_SCALAR ? 12 * 8 : 12;
    if (flops_out) *flops_out = iterations * fmas * 2 * threads_used;
    return total;
}

// MARK: - int8 dot peak

enum { VNNI_CHAINS = 12 };

#if GLMK_X86
/// Per chain and iteration: vpmaddubsw (32 u8 x s8 products, pairwise summed),
/// vpmaddwd with ones (to 8 int32), vpaddd into the accumulator: 32 MACs.
/// Six chains: 6 inputs + 6 accumulators + 2 constants fit the 16 ymm registers.
enum { INT8_CHAINS = 6 };

GLMK_AVX2 static int32_t int8_avx2(int64_t iterations) {
    __m256i acc[INT8_CHAINS];
    __m256i a[INT8_CHAINS];
    for (int i = 0; i < INT8_CHAINS; i++) {
        acc[i] = _mm256_setzero_si256();
        a[i] = _mm256_set1_epi8((char)(i + 1));
    }
    const __m256i b = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < INT8_CHAINS; i++) {
            // an empty asm that "modifies" a[i]: the compiler can no longer hoist the
            // loop-invariant products out of the loop; it emits no instruction
            __asm__ volatile("" : "+x"(a[i]));
            const __m256i p = _mm256_maddubs_epi16(a[i], b);
            acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(p, ones));
        }
    }
    __m256i s = acc[0];
    for (int i = 1; i < INT8_CHAINS; i++) s = _mm256_add_epi32(s, acc[i]);
    return _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
}

/// Where the int8 mat-mat runs vpdpbusd (AVX-512 VNNI on 512-bit registers), the
/// peak is that instruction's: 64 MACs each, 12 chains. Zen 4 runs the 256- and
/// 512-bit forms at the same MAC rate (467 GOP/s per core both); cores with two
/// full-width units run the 512-bit form twice as fast, so the probe uses the
/// width the kernel uses.
__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) static int32_t int8_vnni(int64_t iterations) {
    __m512i acc[VNNI_CHAINS];
    __m512i a[VNNI_CHAINS];
    for (int i = 0; i < VNNI_CHAINS; i++) {
        acc[i] = _mm512_setzero_si512();
        a[i] = _mm512_set1_epi8((char)(i + 1));
    }
    const __m512i b = _mm512_set1_epi8(3);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < VNNI_CHAINS; i++) {
            __asm__ volatile("" : "+v"(a[i])); // as above: keeps the products in the loop
            acc[i] = _mm512_dpbusd_epi32(acc[i], a[i], b);
        }
    }
    __m512i s = acc[0];
    for (int i = 1; i < VNNI_CHAINS; i++) s = _mm512_add_epi32(s, acc[i]);
    return _mm512_reduce_add_epi32(s);
}
#endif

static int32_t int8_scalar(int64_t iterations) {
    int32_t acc[8] = {0};
    int32_t b = 3;
    for (int64_t it = 0; it < iterations; it++) {
        // as in the SIMD loops: without it the compiler sums the series in closed form
        __asm__ volatile("" : "+r"(b));
        for (int i = 0; i < 8; i++) acc[i] += (i + 1) * b + (i + 1) * b;
    }
    int32_t s = 0;
    for (int i = 0; i < 8; i++) s += acc[i];
    return s;
}

static double int8_scalar_loop(int64_t n) { return int8_scalar(n); }
#if GLMK_X86
static double int8_avx2_loop(int64_t n) { return int8_avx2(n); }
static double int8_vnni_loop(int64_t n) { return int8_vnni(n); }
#endif

double glmk_probe_int8(int64_t iterations, glmk_isa isa, int64_t *ops_out) {
    int threads_used = 1;
    const int vnni = isa != GLMK_ISA_SCALAR && glmk_matmul_q8_fast_available();
#if GLMK_X86
    const probe_loop loop = vnni ? int8_vnni_loop : isa != GLMK_ISA_SCALAR ? int8_avx2_loop : int8_scalar_loop;
#else
    const probe_loop loop = int8_scalar_loop;
#endif
    const double total = on_all_threads(loop, iterations, &threads_used);
    // per iteration: VNNI 12 chains x 64 multiply-accumulates, AVX2 6 x 32, scalar 8 x 2; 2 ops each
    const int64_t macs = vnni ? VNNI_CHAINS * 64 : isa != GLMK_ISA_SCALAR ? 6 * 32 : 8 * 2;
    if (ops_out) *ops_out = iterations * macs * 2 * threads_used;
    return total;
}

// MARK: - int16 dot peak (the 16-bit-activation kernels' instruction)

#if GLMK_X86
/// Per chain and iteration: vpmaddwd (16 int16 x int16 products, pairwise summed
/// to 8 int32) and vpaddd: 16 MACs, as the q16 mat-vecs use them.
GLMK_AVX2 static int32_t int16_avx2(int64_t iterations) {
    __m256i acc[INT8_CHAINS];
    __m256i a[INT8_CHAINS];
    for (int i = 0; i < INT8_CHAINS; i++) {
        acc[i] = _mm256_setzero_si256();
        a[i] = _mm256_set1_epi16((short)(i + 1));
    }
    const __m256i b = _mm256_set1_epi16(3);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < INT8_CHAINS; i++) {
            __asm__ volatile("" : "+x"(a[i])); // keeps the products in the loop (see int8_avx2)
            acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(a[i], b));
        }
    }
    __m256i s = acc[0];
    for (int i = 1; i < INT8_CHAINS; i++) s = _mm256_add_epi32(s, acc[i]);
    return _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
}
static double int16_avx2_loop(int64_t n) { return int16_avx2(n); }

/// The 512-bit VNNI form, vpdpwssd: 32 int16 x int16 products summed pairwise into 16
/// int32 lanes of the accumulator, 32 MACs per instruction, 12 chains.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int32_t int16_vnni(int64_t iterations) {
    __m512i acc[VNNI_CHAINS];
    __m512i a[VNNI_CHAINS];
    for (int i = 0; i < VNNI_CHAINS; i++) {
        acc[i] = _mm512_setzero_si512();
        a[i] = _mm512_set1_epi16((short)(i + 1));
    }
    const __m512i b = _mm512_set1_epi16(3);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < VNNI_CHAINS; i++) {
            __asm__ volatile("" : "+v"(a[i])); // keeps the products in the loop (see int8_avx2)
            acc[i] = _mm512_dpwssd_epi32(acc[i], a[i], b);
        }
    }
    __m512i s = acc[0];
    for (int i = 1; i < VNNI_CHAINS; i++) s = _mm512_add_epi32(s, acc[i]);
    return _mm512_reduce_add_epi32(s);
}
static double int16_vnni_loop(int64_t n) { return int16_vnni(n); }
#endif

double glmk_probe_int16(int64_t iterations, glmk_isa isa, int64_t *ops_out) {
    int threads_used = 1;
    // AVX-512 kernels with VNNI run vpdpwssd on 512-bit registers; the others 256-bit vpmaddwd
    const int vnni = isa == GLMK_ISA_AVX512 && glmk_matmul_q8_fast_available();
#if GLMK_X86
    const probe_loop loop = vnni ? int16_vnni_loop : isa != GLMK_ISA_SCALAR ? int16_avx2_loop : int8_scalar_loop;
#else
    const probe_loop loop = int8_scalar_loop;
#endif
    const double total = on_all_threads(loop, iterations, &threads_used);
    const int64_t macs = vnni ? VNNI_CHAINS * 32 : isa != GLMK_ISA_SCALAR ? INT8_CHAINS * 16 : 8 * 2;
    if (ops_out) *ops_out = iterations * macs * 2 * threads_used;
    return total;
}

// MARK: - Random benchmark data

static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

glmk_status glmk_fill_random_weights(const glmk_matrix *w, void *data, uint16_t *scales, uint64_t seed) {
    glmk_matrix check = *w;
    check.data = data;
    check.scales = scales;
    const glmk_status status = glmk_matrix_validate(&check);
    if (status != GLMK_OK) return status;
    const int64_t bytes = w->rows * w->row_bytes;
    const int64_t per_row = glmk_scales_per_row(w->type, w->cols, w->group);
#pragma omp parallel
    {
        const int t = omp_get_thread_num(), threads = omp_get_num_threads();
        uint64_t state = seed + 0x1234567ull * (uint64_t)(t + 1);
        const int64_t rows0 = w->rows * t / threads, rows1 = w->rows * (t + 1) / threads;
        for (int64_t r = rows0; r < rows1; r++) {
            uint8_t *row = (uint8_t *)data + r * w->row_bytes;
            switch (w->type) {
            case GLMK_TYPE_F32:
                for (int64_t k = 0; k < w->cols; k++) ((float *)row)[k] = (float)((int64_t)(next_random(&state) >> 40) - (1 << 23)) / (float)(1 << 26);
                break;
            case GLMK_TYPE_F16:
                for (int64_t k = 0; k < w->cols; k++)
                    ((uint16_t *)row)[k] = glmk_fp32_to_fp16((float)((int64_t)(next_random(&state) >> 40) - (1 << 23)) / (float)(1 << 26));
                break;
            default: {
                // packed types: random bytes are valid values; then fix the scales
                for (int64_t i = 0; i < w->row_bytes; i += 8) {
                    const uint64_t v = next_random(&state);
                    memcpy(row + i, &v, (size_t)(w->row_bytes - i < 8 ? w->row_bytes - i : 8));
                }
                if (w->type == GLMK_TYPE_Q8_0)
                    for (int64_t b = 0; b < w->cols / GLMK_QK; b++) ((glmk_block_q8_0 *)row)[b].d = glmk_fp32_to_fp16(0.01f);
                if (w->type == GLMK_TYPE_Q4_0)
                    for (int64_t b = 0; b < w->cols / GLMK_QK; b++) ((glmk_block_q4_0 *)row)[b].d = glmk_fp32_to_fp16(0.02f);
                for (int64_t g = 0; g < per_row; g++) scales[r * per_row + g] = glmk_fp32_to_fp16(0.02f);
                break;
            }
            }
        }
    }
    (void)bytes;
    return GLMK_OK;
}
