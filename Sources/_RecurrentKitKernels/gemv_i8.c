// int8 weights for batch-1 decoding with dynamically quantized inputs (as PyTorch's quantize_dynamic, though it keeps
// one scale per weight tensor and an asymmetric input range): one f32 scale per weight row, x quantized per call to
// 8 bits with one symmetric scale, products summed exactly in 32-bit integers. Batch-1 decoding streams every weight once per
// token, so bytes are the cost: int8 is a quarter of f32's. With AVX512-VNNI one vpdpbusd multiplies 64 weights by 64
// bytes of x and adds them in groups of 4, reading both straight from memory (no widening); without it, exact 16-bit
// products (vpmaddwd) give the same integers, so every level and thread count gives the same bits.
//
// Zero point: vpdpbusd multiplies unsigned by signed bytes, so x goes in as u = xq + 128 in [1, 255] and
// sum_k w xq = sum_k w u - 128 sum_k w, with sum_k w (the row sum) computed once when the weights are quantized.
#include "rk_gemv.h"
#include "rk_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RK_GEMV_PARALLEL_MIN (64 * 1024)
#define RK_INLINE static inline __attribute__((always_inline))

// round(v / s) to nearest even, clamped to [-127, 127]; 0 when the scale is 0 (a zero row or vector).
static inline int rk_i8_round(float v, float s) {
    float q = s == 0.0f ? 0.0f : rintf(v / s); // the default rounding mode: nearest even
    return (int)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
}

int rk_quantize_i8_rows(const float *src, int8_t *dst, float *scales, int32_t *sums, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *row = src + r * cols;
        float m = 0.0f;
        for (ptrdiff_t k = 0; k < cols; k++) {
            if (!isfinite(row[k])) return -1;
            float a = fabsf(row[k]);
            if (a > m) m = a;
        }
        float s = m / 127.0f;
        scales[r] = s;
        int32_t sum = 0;
        for (ptrdiff_t k = 0; k < cols; k++) {
            int8_t v = (int8_t)rk_i8_round(row[k], s);
            dst[r * cols + k] = v;
            sum += v;
        }
        sums[r] = sum;
    }
    return 0;
}

// Exact integer sums_k w[r*ldw + k] * u[k] of R (1 or 4) rows (u: unsigned bytes).
typedef void (*rk_dot_u8i8_fn)(int R, const uint8_t *u, const int8_t *w, ptrdiff_t ldw, ptrdiff_t cols, int64_t *out);

static void rk_dot_portable(int R, const uint8_t *u, const int8_t *w, ptrdiff_t ldw, ptrdiff_t cols, int64_t *out) {
    for (int r = 0; r < R; r++) {
        int64_t s = 0;
        for (ptrdiff_t k = 0; k < cols; k++) s += (int32_t)u[k] * (int32_t)w[r * ldw + k];
        out[r] = s;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2"))) static int64_t rk_dot1_avx2(const uint8_t *u, const int8_t *w, ptrdiff_t cols) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    ptrdiff_t k = 0;
    for (; k + 32 <= cols; k += 32) {
        __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + k)));
        __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + k + 16)));
        __m256i u0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(u + k)));
        __m256i u1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(u + k + 16)));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(w0, u0)); // |pair| <= 2 * 127 * 255: exact
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(w1, u1));
    }
    int32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi32(a0, a1));
    int64_t s = 0;
    for (int i = 0; i < 8; i++) s += lanes[i];
    for (; k < cols; k++) s += (int32_t)u[k] * (int32_t)w[k];
    return s;
}

__attribute__((target("avx2"))) static void rk_dot_avx2(int R, const uint8_t *u, const int8_t *w, ptrdiff_t ldw,
                                                       ptrdiff_t cols, int64_t *out) {
    for (int r = 0; r < R; r++) out[r] = rk_dot1_avx2(u, w + r * ldw, cols);
}

// One row: two accumulators, 128 columns per step, a masked tail.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int64_t rk_dot1_vnni(const uint8_t *u, const int8_t *w,
                                                                                    ptrdiff_t cols) {
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    ptrdiff_t k = 0;
    for (; k + 128 <= cols; k += 128) {
        a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(u + k), _mm512_loadu_si512(w + k));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(u + k + 64), _mm512_loadu_si512(w + k + 64));
    }
    for (; k < cols; k += 64) { // masked tail: bytes past cols are neither read nor counted
        ptrdiff_t n = cols - k < 64 ? cols - k : 64;
        __mmask64 m = n == 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_maskz_loadu_epi8(m, u + k), _mm512_maskz_loadu_epi8(m, w + k));
    }
    return (int64_t)_mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
}

// Rows one at a time: measured faster here than four rows sharing each load of u (12.6k against 10.8k LSTM tokens/s).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void rk_dot_vnni(int R, const uint8_t *u, const int8_t *w,
                                                                              ptrdiff_t ldw, ptrdiff_t cols, int64_t *out) {
    for (int r = 0; r < R; r++) out[r] = rk_dot1_vnni(u, w + r * ldw, cols);
}
#endif

typedef struct {
    rk_dot_u8i8_fn dot;
    ptrdiff_t rows, cols, ldw, chunk;
    const int8_t *w;
    const float *scales;
    const int32_t *sums;
    const uint8_t *u;
    float sx, beta;
    float *y;
} rk_gemv_i8_job;

static void rk_gemv_i8_rows(const rk_gemv_i8_job *j, ptrdiff_t r0, ptrdiff_t r1) {
    int64_t dots[4];
    for (ptrdiff_t r = r0; r < r1; r += 4) {
        int R = r1 - r < 4 ? (int)(r1 - r) : 4;
        j->dot(R, j->u, j->w + r * j->ldw, j->ldw, j->cols, dots);
        for (int i = 0; i < R; i++) {
            int64_t total = dots[i] - 128 * (int64_t)j->sums[r + i];
            float v = (j->scales[r + i] * j->sx) * (float)total;
            j->y[r + i] = j->beta == 0.0f ? v : v + j->beta * j->y[r + i];
        }
    }
}

static void rk_gemv_i8_task(void *ctx, int c, int nchunks) {
    (void)nchunks;
    const rk_gemv_i8_job *j = ctx;
    ptrdiff_t r0 = (ptrdiff_t)c * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    if (r0 < r1) rk_gemv_i8_rows(j, r0, r1);
}

// x quantized to unsigned bytes, per calling thread (grown on demand, so a token allocates nothing once it fits).
static _Thread_local uint8_t *rk_i8_x;
static _Thread_local ptrdiff_t rk_i8_x_n;

void rk_gemv_i8(ptrdiff_t rows, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw, const float *scales,
                const int32_t *sums, const float *x, float beta, float *y) {
    if (rows <= 0) return;
    if (cols < 0) cols = 0;
    float m = 0.0f;
    int finite = 1;
    for (ptrdiff_t k = 0; k < cols; k++) {
        if (!isfinite(x[k])) finite = 0;
        float a = fabsf(x[k]);
        if (a > m) m = a;
    }
    if (!finite) {
        for (ptrdiff_t r = 0; r < rows; r++) y[r] = NAN;
        return;
    }
    if (rk_i8_x_n < cols) {
        free(rk_i8_x);
        ptrdiff_t n = cols < 4096 ? 4096 : cols;
        rk_i8_x = malloc((size_t)n);
        if (!rk_i8_x) abort();
        rk_i8_x_n = n;
    }
    float sx = m / 127.0f;
    for (ptrdiff_t k = 0; k < cols; k++) rk_i8_x[k] = (uint8_t)(rk_i8_round(x[k], sx) + 128);
    rk_gemv_i8_job job = {rk_dot_portable, rows, cols, ldw, 0, w, scales, sums, rk_i8_x, sx, beta, y};
#if defined(__x86_64__)
    int level = rk_active_level();
    // The vector kernels sum in 32-bit lanes: exact while cols * 255 * 127 < 2^31. Longer rows sum in 64 bits.
    if (cols <= 65536) {
        if (level >= RK_LEVEL_AVX512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
            job.dot = rk_dot_vnni;
        else if (level >= RK_LEVEL_AVX2_FMA) job.dot = rk_dot_avx2;
    }
#endif
    int nt = rk_threads();
    if (nt > 1 && (double)rows * (double)cols >= RK_GEMV_PARALLEL_MIN) {
        job.chunk = ((rows + nt - 1) / nt + 15) / 16 * 16; // as rk_gemv_f32: contiguous ranges, multiples of 16
        rk_parallel((int)((rows + job.chunk - 1) / job.chunk), rk_gemv_i8_task, &job);
        return;
    }
    rk_gemv_i8_rows(&job, 0, rows);
}
