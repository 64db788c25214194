// int8 weights for batch-1 decoding: one f32 scale per row, a quarter of f32's bytes per token (batch-1 decoding
// streams every weight once per token, so bytes are the cost). The weights widen exactly to f32 inside the kernel
// and x stays f32, so the only error is the weights' rounding (no activation quantization). AVX-VNNI's vpdpbusd would
// need x quantized to u8 as well; at batch 1 the widening (2 instructions per 16 weights) hides under the stream.
//
// Determinism: a row's sum takes the same steps whether it runs in a block of 4 rows or alone, and whatever the
// thread count, so it depends only on its data, cols and the instruction-set level.
#include "rk_gemv.h"
#include "rk_internal.h"

#include <math.h>

#define RK_GEMV_PARALLEL_MIN (64 * 1024)
#define RK_INLINE static inline __attribute__((always_inline))

int rk_quantize_i8_rows(const float *src, int8_t *dst, float *scales, ptrdiff_t rows, ptrdiff_t cols) {
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
        for (ptrdiff_t k = 0; k < cols; k++) {
            float q = s == 0.0f ? 0.0f : rintf(row[k] / s); // round to nearest even (the default mode)
            dst[r * cols + k] = (int8_t)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
        }
    }
    return 0;
}

// y = scale * s + beta * y; y is not read when beta == 0.
RK_INLINE void rk_i8_put(float *y, float s, float scale, float beta) {
    float v = scale * s;
    *y = beta == 0.0f ? v : v + beta * *y;
}

// R (1 or 4) rows; each row: 8 lanes (lane j sums k = j mod 8), a fixed tree, then the scalar tail.
RK_INLINE void rk_i8_rows_portable(int R, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw, const float *scales,
                                   const float *x, float beta, float *y) {
    float a[4][8] = {{0}};
    ptrdiff_t k = 0;
    for (; k + 8 <= cols; k += 8)
        for (int r = 0; r < R; r++)
            for (int j = 0; j < 8; j++) a[r][j] += (float)w[r * ldw + k + j] * x[k + j];
    for (int r = 0; r < R; r++) {
        float s = ((a[r][0] + a[r][4]) + (a[r][2] + a[r][6])) + ((a[r][1] + a[r][5]) + (a[r][3] + a[r][7]));
        for (ptrdiff_t t = k; t < cols; t++) s += (float)w[r * ldw + t] * x[t];
        rk_i8_put(y + r, s, scales[r], beta);
    }
}

static void rk_gemv_i8_portable(ptrdiff_t rows, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw, const float *scales,
                                const float *x, float beta, float *y) {
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_i8_rows_portable(4, cols, w + r * ldw, ldw, scales + r, x, beta, y + r);
    for (; r < rows; r++) rk_i8_rows_portable(1, cols, w + r * ldw, ldw, scales + r, x, beta, y + r);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define RK_AVX2 __attribute__((target("avx2,fma")))
#define RK_AVX512 __attribute__((target("avx512f")))

// 16 weights per step into two accumulators of 8 per row; tree (a0 + a1), then a fixed horizontal sum; scalar tail.
RK_INLINE RK_AVX2 void rk_i8_rows_avx2(int R, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw, const float *scales,
                                       const float *x, float beta, float *y) {
    __m256 a[4][2];
    for (int r = 0; r < 4; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();
    ptrdiff_t k = 0;
    for (; k + 16 <= cols; k += 16) {
        __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
        for (int r = 0; r < R; r++) {
            __m128i q = _mm_loadu_si128((const __m128i *)(w + r * ldw + k));
            __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
            __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
            a[r][0] = _mm256_fmadd_ps(w0, x0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(w1, x1, a[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        __m256 v = _mm256_add_ps(a[r][0], a[r][1]);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        for (ptrdiff_t t = k; t < cols; t++) s += (float)w[r * ldw + t] * x[t];
        rk_i8_put(y + r, s, scales[r], beta);
    }
}

RK_AVX2 static void rk_gemv_i8_avx2(ptrdiff_t rows, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw,
                                    const float *scales, const float *x, float beta, float *y) {
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_i8_rows_avx2(4, cols, w + r * ldw, ldw, scales + r, x, beta, y + r);
    for (; r < rows; r++) rk_i8_rows_avx2(1, cols, w + r * ldw, ldw, scales + r, x, beta, y + r);
}

// 32 weights per step into two accumulators of 16 per row; (a0 + a1), then _mm512_reduce_add_ps; scalar tail.
RK_INLINE RK_AVX512 void rk_i8_rows_avx512(int R, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw,
                                           const float *scales, const float *x, float beta, float *y) {
    __m512 a[4][2];
    for (int r = 0; r < 4; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    ptrdiff_t k = 0;
    for (; k + 32 <= cols; k += 32) {
        __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
        for (int r = 0; r < R; r++) {
            __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + r * ldw + k))));
            __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + r * ldw + k + 16))));
            a[r][0] = _mm512_fmadd_ps(w0, x0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(w1, x1, a[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        float s = _mm512_reduce_add_ps(_mm512_add_ps(a[r][0], a[r][1]));
        for (ptrdiff_t t = k; t < cols; t++) s += (float)w[r * ldw + t] * x[t];
        rk_i8_put(y + r, s, scales[r], beta);
    }
}

RK_AVX512 static void rk_gemv_i8_avx512(ptrdiff_t rows, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw,
                                        const float *scales, const float *x, float beta, float *y) {
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_i8_rows_avx512(4, cols, w + r * ldw, ldw, scales + r, x, beta, y + r);
    for (; r < rows; r++) rk_i8_rows_avx512(1, cols, w + r * ldw, ldw, scales + r, x, beta, y + r);
}
#endif

typedef void (*rk_gemv_i8_fn)(ptrdiff_t, ptrdiff_t, const int8_t *, ptrdiff_t, const float *, const float *, float,
                              float *);

typedef struct {
    rk_gemv_i8_fn fn;
    ptrdiff_t rows, cols, ldw, chunk;
    const int8_t *w;
    const float *scales, *x;
    float beta;
    float *y;
} rk_gemv_i8_job;

static void rk_gemv_i8_task(void *ctx, int c, int nchunks) {
    (void)nchunks;
    const rk_gemv_i8_job *j = ctx;
    ptrdiff_t r0 = (ptrdiff_t)c * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    if (r0 < r1) j->fn(r1 - r0, j->cols, j->w + r0 * j->ldw, j->ldw, j->scales + r0, j->x, j->beta, j->y + r0);
}

void rk_gemv_i8(ptrdiff_t rows, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw, const float *scales, const float *x,
                float beta, float *y) {
    if (rows <= 0) return;
    if (cols < 0) cols = 0;
    rk_gemv_i8_fn fn = rk_gemv_i8_portable;
#if defined(__x86_64__)
    int level = rk_active_level();
    if (level >= RK_LEVEL_AVX512) fn = rk_gemv_i8_avx512;
    else if (level >= RK_LEVEL_AVX2_FMA) fn = rk_gemv_i8_avx2;
#endif
    int nt = rk_threads();
    if (nt > 1 && (double)rows * (double)cols >= RK_GEMV_PARALLEL_MIN) {
        ptrdiff_t chunk = ((rows + nt - 1) / nt + 15) / 16 * 16; // as rk_gemv_f32: contiguous ranges, multiples of 16
        rk_gemv_i8_job job = {fn, rows, cols, ldw, chunk, w, scales, x, beta, y};
        rk_parallel((int)((rows + chunk - 1) / chunk), rk_gemv_i8_task, &job);
        return;
    }
    fn(rows, cols, w, ldw, scales, x, beta, y);
}
