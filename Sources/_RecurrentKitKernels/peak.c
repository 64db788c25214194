// FMA peak probe: 12 independent accumulator chains hide the FMA latency (4 cycles x 2-3 pipes).
#include "rk_peak.h"
#include "_RecurrentKitKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
static double peak_avx512(int64_t iterations) {
    __m512 a[12];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iterations; n++) {
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
        __asm__ volatile("" : : : "memory");
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iterations * 12 * 16 * 2;
}

__attribute__((target("avx2,fma")))
static double peak_avx2(int64_t iterations) {
    __m256 a[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (int64_t n = 0; n < iterations; n++) {
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
        __asm__ volatile("" : : : "memory");
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    volatile float sink = out[0];
    (void)sink;
    return (double)iterations * 12 * 8 * 2;
}

// vdpbf16ps: 12 chains, each instruction two bf16 products per lane added into an f32 lane (4 FLOPs per lane).
__attribute__((target("avx512f,avx512bf16")))
static double peak_bf16_dot(int64_t iterations) {
    __m512 a[12];
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F7F3F7F), y = (__m512bh)_mm512_set1_epi32(0x33D633D6);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iterations; n++) {
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], x, y);
        __asm__ volatile("" : : : "memory");
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iterations * 12 * 16 * 4;
}
#endif

double rk_bf16_dot_peak_flops(int64_t iterations) {
#if defined(__x86_64__)
    if (rk_active_level() >= RK_LEVEL_AVX512 && __builtin_cpu_supports("avx512bf16")) return peak_bf16_dot(iterations);
#endif
    (void)iterations;
    return 0;
}

static double peak_portable(int64_t iterations) {
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    for (int64_t n = 0; n < iterations; n++) {
        for (int i = 0; i < 12; i++) a[i] = a[i] * 0.999999f + 1e-7f;
    }
    volatile float sink = a[0] + a[11];
    (void)sink;
    return (double)iterations * 12 * 2;
}

double rk_fma_peak_flops(int level, int64_t iterations) {
    int detected = rk_detected_level();
    if (level > detected) level = detected;
#if defined(__x86_64__)
    if (level >= RK_LEVEL_AVX512) return peak_avx512(iterations);
    if (level >= RK_LEVEL_AVX2_FMA) return peak_avx2(iterations);
#endif
    return peak_portable(iterations);
}
