// Matrix-vector products y = alpha * W x + beta * y for the recurrent step at batch 1, which streams W once per
// step: rk_gemv_bf16 (bf16 weights: half the bytes once W leaves the cache; bf16 widens to f32 by a 16-bit shift,
// x and the sums stay f32) and rk_gemv_f32 (also the M == 1, op(B) = B^T case of rk_sgemm).
//
// Determinism: every row is summed with the same steps (lanes, accumulators, tail, reduction tree, alpha/beta)
// whether it runs in a block of 4 rows or alone, so a row's result depends only on its data, cols, alpha and the
// level.
#include "rk_gemv.h"
#include "rk_internal.h"

#include <string.h>

// Products below this many multiply-adds run on the caller (fork-join costs ~1 us).
#define RK_GEMV_PARALLEL_MIN (64 * 1024)
#define RK_INLINE static inline __attribute__((always_inline))

void rk_f32_to_bf16(const float *src, uint16_t *dst, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = rk_bf16_from_f32(src[i]);
}

void rk_bf16_to_f32(const uint16_t *src, float *dst, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(dst + i, &u, 4);
    }
}

// y = alpha * s + beta * y; y is not read when beta == 0. (alpha == 1 for bf16: 1 * s == s exactly.)
RK_INLINE void rk_gemv_put(float *y, float s, float alpha, float beta) {
    float v = alpha * s;
    *y = beta == 0.0f ? v : v + beta * *y;
}

// Element i of a row of bf16 (bf16 != 0) or f32 weights.
RK_INLINE float rk_gemv_w(const void *w, int bf16, ptrdiff_t i) {
    return bf16 ? rk_f32_from_bf16(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

// R (1 or 4) rows at a time; each row: 8 lanes, lane j sums k = j mod 8, scalar tail into lanes 0.., fixed tree.
RK_INLINE void rk_gemv_rows_portable(int bf16, int R, ptrdiff_t cols, const void *w, ptrdiff_t ldw,
                                     const float *x, float alpha, float beta, float *y) {
    float a[4][8] = {{0}};
    ptrdiff_t k = 0;
    for (; k + 8 <= cols; k += 8)
        for (int r = 0; r < R; r++)
            for (int j = 0; j < 8; j++) a[r][j] += rk_gemv_w(w, bf16, r * ldw + k + j) * x[k + j];
    for (int r = 0; r < R; r++) {
        for (ptrdiff_t j = 0; k + j < cols; j++) a[r][j] += rk_gemv_w(w, bf16, r * ldw + k + j) * x[k + j];
        float s = ((a[r][0] + a[r][4]) + (a[r][2] + a[r][6])) + ((a[r][1] + a[r][5]) + (a[r][3] + a[r][7]));
        rk_gemv_put(y + r, s, alpha, beta);
    }
}

static void rk_gemv_bf16_portable(ptrdiff_t rows, ptrdiff_t cols, const void *w, ptrdiff_t ldw, const float *x,
                                  float alpha, float beta, float *y) {
    const uint16_t *h = w;
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_gemv_rows_portable(1, 4, cols, h + r * ldw, ldw, x, alpha, beta, y + r);
    for (; r < rows; r++) rk_gemv_rows_portable(1, 1, cols, h + r * ldw, ldw, x, alpha, beta, y + r);
}

static void rk_gemv_f32_portable(ptrdiff_t rows, ptrdiff_t cols, const void *w, ptrdiff_t ldw, const float *x,
                                 float alpha, float beta, float *y) {
    const float *f = w;
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_gemv_rows_portable(0, 4, cols, f + r * ldw, ldw, x, alpha, beta, y + r);
    for (; r < rows; r++) rk_gemv_rows_portable(0, 1, cols, f + r * ldw, ldw, x, alpha, beta, y + r);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define RK_AVX2 __attribute__((target("avx2,fma")))
#define RK_AVX512 __attribute__((target("avx512f")))

// Sums of a, b, c, d in lanes 0..3, each by the same tree (so a zero b, c, d leave a's sum unchanged).
RK_INLINE RK_AVX2 __m128 rk_gemv_reduce4_avx2(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(c, d, 0x20), _mm256_permute2f128_ps(c, d, 0x31));
    __m256 h = _mm256_hadd_ps(ab, cd);
    h = _mm256_hadd_ps(h, h); // a c a c | b d b d
    return _mm_unpacklo_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// As rk_gemv_reduce4_avx2: halve 512 -> 128 bits per vector, then within 128 bits, same tree for each.
RK_INLINE RK_AVX512 __m128 rk_gemv_reduce4_avx512(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD)); // a b c d
    u = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    u = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
    __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, u));
}

// ---- bf16 ----
// Vector paths widen a whole vector of bf16 pairs at once: each 32-bit lane holds w[2i] (low half) and w[2i+1]
// (high half), so w[2i] = lane << 16 and w[2i+1] = lane & 0xFFFF0000, against x split once per 4 rows into its
// even and odd elements. Measured on Zen 4 against cvtepu16 + shift per 8/16 weights (which loads the
// shuffle ports once per row): +10% (AVX-512) / +7% (AVX2) at 2048 x 512, +25% / +20% when W is in L1/L2.

// 16 weights per row and step into two accumulators (even, odd k): 4 rows x 2 = 8 FMA chains cover the
// latency. The tail (< 16) reads x with a mask and the weights through a zero-padded copy.
RK_INLINE RK_AVX2 void rk_bf16_fma_avx2(const uint16_t *p, __m256 xe, __m256 xo, __m256 *ae, __m256 *ao) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    *ae = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, *ae);
    *ao = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u))), xo, *ao);
}

RK_INLINE RK_AVX2 void rk_bf16_rows_avx2(int R, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw,
                                         const float *x, float beta, float *y) {
    const __m256i eo = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 ae[4], ao[4];
    for (int r = 0; r < 4; r++) ae[r] = ao[r] = _mm256_setzero_ps();
    ptrdiff_t k = 0;
    for (; k + 16 <= cols; k += 16) {
        __m256 x0 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + k), eo);
        __m256 x1 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + k + 8), eo);
        __m256 xe = _mm256_permute2f128_ps(x0, x1, 0x20), xo = _mm256_permute2f128_ps(x0, x1, 0x31);
        for (int r = 0; r < R; r++) rk_bf16_fma_avx2(w + r * ldw + k, xe, xo, &ae[r], &ao[r]);
    }
    if (k < cols) {
        int n = (int)(cols - k);
        __m256 x0 = _mm256_maskload_ps(x + k, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
        __m256 x1 = _mm256_maskload_ps(x + k + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lane));
        x0 = _mm256_permutevar8x32_ps(x0, eo), x1 = _mm256_permutevar8x32_ps(x1, eo);
        __m256 xe = _mm256_permute2f128_ps(x0, x1, 0x20), xo = _mm256_permute2f128_ps(x0, x1, 0x31);
        for (int r = 0; r < R; r++) {
            uint16_t t[16] = {0};
            for (int j = 0; j < n; j++) t[j] = w[r * ldw + k + j];
            rk_bf16_fma_avx2(t, xe, xo, &ae[r], &ao[r]);
        }
    }
    __m256 s[4];
    for (int r = 0; r < 4; r++) s[r] = r < R ? _mm256_add_ps(ae[r], ao[r]) : _mm256_setzero_ps();
    float out[4];
    _mm_storeu_ps(out, rk_gemv_reduce4_avx2(s[0], s[1], s[2], s[3]));
    for (int r = 0; r < R; r++) rk_gemv_put(y + r, out[r], 1.0f, beta);
}

RK_AVX2 static void rk_gemv_bf16_avx2(ptrdiff_t rows, ptrdiff_t cols, const void *w, ptrdiff_t ldw,
                                      const float *x, float alpha, float beta, float *y) {
    (void)alpha;
    const uint16_t *h = w;
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_bf16_rows_avx2(4, cols, h + r * ldw, ldw, x, beta, y + r);
    for (; r < rows; r++) rk_bf16_rows_avx2(1, cols, h + r * ldw, ldw, x, beta, y + r);
}

RK_INLINE RK_AVX512 void rk_bf16_fma_avx512(const uint16_t *p, __m512 xe, __m512 xo, __m512 *ae, __m512 *ao) {
    __m512i v = _mm512_loadu_si512(p);
    *ae = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, *ae);
    *ao = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u))), xo, *ao);
}

// As rk_bf16_rows_avx2 with 32 weights per row and step (AVX-512F has no 16-bit masked load either).
RK_INLINE RK_AVX512 void rk_bf16_rows_avx512(int R, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw,
                                             const float *x, float beta, float *y) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 ae[4], ao[4];
    for (int r = 0; r < 4; r++) ae[r] = ao[r] = _mm512_setzero_ps();
    ptrdiff_t k = 0;
    for (; k + 32 <= cols; k += 32) {
        __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
        __m512 xe = _mm512_permutex2var_ps(x0, ie, x1), xo = _mm512_permutex2var_ps(x0, io, x1);
        for (int r = 0; r < R; r++) rk_bf16_fma_avx512(w + r * ldw + k, xe, xo, &ae[r], &ao[r]);
    }
    if (k < cols) {
        int n = (int)(cols - k);
        __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
        __mmask16 m1 = (__mmask16)(n <= 16 ? 0u : (1u << (n - 16)) - 1u);
        __m512 x0 = _mm512_maskz_loadu_ps(m0, x + k), x1 = _mm512_maskz_loadu_ps(m1, x + k + 16);
        __m512 xe = _mm512_permutex2var_ps(x0, ie, x1), xo = _mm512_permutex2var_ps(x0, io, x1);
        for (int r = 0; r < R; r++) {
            uint16_t t[32] = {0};
            for (int j = 0; j < n; j++) t[j] = w[r * ldw + k + j];
            rk_bf16_fma_avx512(t, xe, xo, &ae[r], &ao[r]);
        }
    }
    __m512 s[4];
    for (int r = 0; r < 4; r++) s[r] = r < R ? _mm512_add_ps(ae[r], ao[r]) : _mm512_setzero_ps();
    float out[4];
    _mm_storeu_ps(out, rk_gemv_reduce4_avx512(s[0], s[1], s[2], s[3]));
    for (int r = 0; r < R; r++) rk_gemv_put(y + r, out[r], 1.0f, beta);
}

RK_AVX512 static void rk_gemv_bf16_avx512(ptrdiff_t rows, ptrdiff_t cols, const void *w, ptrdiff_t ldw,
                                          const float *x, float alpha, float beta, float *y) {
    (void)alpha;
    const uint16_t *h = w;
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_bf16_rows_avx512(4, cols, h + r * ldw, ldw, x, beta, y + r);
    for (; r < rows; r++) rk_bf16_rows_avx512(1, cols, h + r * ldw, ldw, x, beta, y + r);
}

// ---- f32 ----
// RK_GEMV_F32_U vectors of weights per row and step, each into its own accumulator: 4 rows x U chains. The
// tail (< U vectors) goes vector by vector into accumulators 0, 1, ... with masked loads of w and x (masked-off
// lanes are never read). Row sum: accumulators added pairwise ((a0 + a1) + (a2 + a3)), then the reduce4 tree.
#ifndef RK_GEMV_F32_U
#define RK_GEMV_F32_U 2
#endif
#define RK_U RK_GEMV_F32_U

RK_INLINE RK_AVX2 __m256 rk_gemv_sum_avx2(const __m256 *a) {
    __m256 s[RK_U];
    for (int u = 0; u < RK_U; u++) s[u] = a[u];
    for (int n = RK_U; n > 1; n /= 2)
        for (int u = 0; u < n / 2; u++) s[u] = _mm256_add_ps(s[2 * u], s[2 * u + 1]);
    return s[0];
}

RK_INLINE RK_AVX2 void rk_f32_rows_avx2(int R, ptrdiff_t cols, const float *w, ptrdiff_t ldw, const float *x,
                                        float alpha, float beta, float *y) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 a[4][RK_U];
    for (int r = 0; r < 4; r++)
        for (int u = 0; u < RK_U; u++) a[r][u] = _mm256_setzero_ps();
    ptrdiff_t k = 0;
    for (; k + 8 * RK_U <= cols; k += 8 * RK_U) {
        __m256 xv[RK_U];
        for (int u = 0; u < RK_U; u++) xv[u] = _mm256_loadu_ps(x + k + 8 * u);
        for (int r = 0; r < R; r++)
            for (int u = 0; u < RK_U; u++)
                a[r][u] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * ldw + k + 8 * u), xv[u], a[r][u]);
    }
    for (int u = 0; u < RK_U && k < cols; u++, k += 8) {
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols - k < 8 ? cols - k : 8)), lane);
        __m256 xv = _mm256_maskload_ps(x + k, m);
        for (int r = 0; r < R; r++)
            a[r][u] = _mm256_fmadd_ps(_mm256_maskload_ps(w + r * ldw + k, m), xv, a[r][u]);
    }
    __m256 s[4];
    for (int r = 0; r < 4; r++) s[r] = r < R ? rk_gemv_sum_avx2(a[r]) : _mm256_setzero_ps();
    float out[4];
    _mm_storeu_ps(out, rk_gemv_reduce4_avx2(s[0], s[1], s[2], s[3]));
    for (int r = 0; r < R; r++) rk_gemv_put(y + r, out[r], alpha, beta);
}

RK_AVX2 static void rk_gemv_f32_avx2(ptrdiff_t rows, ptrdiff_t cols, const void *w, ptrdiff_t ldw,
                                     const float *x, float alpha, float beta, float *y) {
    const float *f = w;
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_f32_rows_avx2(4, cols, f + r * ldw, ldw, x, alpha, beta, y + r);
    for (; r < rows; r++) rk_f32_rows_avx2(1, cols, f + r * ldw, ldw, x, alpha, beta, y + r);
}

RK_INLINE RK_AVX512 __m512 rk_gemv_sum_avx512(const __m512 *a) {
    __m512 s[RK_U];
    for (int u = 0; u < RK_U; u++) s[u] = a[u];
    for (int n = RK_U; n > 1; n /= 2)
        for (int u = 0; u < n / 2; u++) s[u] = _mm512_add_ps(s[2 * u], s[2 * u + 1]);
    return s[0];
}

RK_INLINE RK_AVX512 void rk_f32_rows_avx512(int R, ptrdiff_t cols, const float *w, ptrdiff_t ldw,
                                            const float *x, float alpha, float beta, float *y) {
    __m512 a[4][RK_U];
    for (int r = 0; r < 4; r++)
        for (int u = 0; u < RK_U; u++) a[r][u] = _mm512_setzero_ps();
    ptrdiff_t k = 0;
    for (; k + 16 * RK_U <= cols; k += 16 * RK_U) {
        __m512 xv[RK_U];
        for (int u = 0; u < RK_U; u++) xv[u] = _mm512_loadu_ps(x + k + 16 * u);
        for (int r = 0; r < R; r++)
            for (int u = 0; u < RK_U; u++)
                a[r][u] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * ldw + k + 16 * u), xv[u], a[r][u]);
    }
    for (int u = 0; u < RK_U && k < cols; u++, k += 16) {
        __mmask16 m = (__mmask16)(cols - k >= 16 ? 0xFFFFu : (1u << (cols - k)) - 1u);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + k);
        for (int r = 0; r < R; r++)
            a[r][u] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + r * ldw + k), xv, a[r][u]);
    }
    __m512 s[4];
    for (int r = 0; r < 4; r++) s[r] = r < R ? rk_gemv_sum_avx512(a[r]) : _mm512_setzero_ps();
    float out[4];
    _mm_storeu_ps(out, rk_gemv_reduce4_avx512(s[0], s[1], s[2], s[3]));
    for (int r = 0; r < R; r++) rk_gemv_put(y + r, out[r], alpha, beta);
}

RK_AVX512 static void rk_gemv_f32_avx512(ptrdiff_t rows, ptrdiff_t cols, const void *w, ptrdiff_t ldw,
                                         const float *x, float alpha, float beta, float *y) {
    const float *f = w;
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_f32_rows_avx512(4, cols, f + r * ldw, ldw, x, alpha, beta, y + r);
    for (; r < rows; r++) rk_f32_rows_avx512(1, cols, f + r * ldw, ldw, x, alpha, beta, y + r);
}
#undef RK_U
#endif

// ---- level choice and threading (shared) ----

typedef void (*rk_gemv_fn)(ptrdiff_t, ptrdiff_t, const void *, ptrdiff_t, const float *, float, float, float *);

typedef struct {
    rk_gemv_fn fn;
    ptrdiff_t rows, cols, ldw, chunk;
    size_t esize; // bytes per weight
    const void *w;
    const float *x;
    float alpha, beta;
    float *y;
} rk_gemv_job;

static void rk_gemv_task(void *ctx, int c, int nchunks) {
    (void)nchunks;
    const rk_gemv_job *j = ctx;
    ptrdiff_t r0 = (ptrdiff_t)c * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    if (r0 < r1)
        j->fn(r1 - r0, j->cols, (const char *)j->w + (size_t)(r0 * j->ldw) * j->esize, j->ldw, j->x, j->alpha,
              j->beta, j->y + r0);
}

static void rk_gemv_run(rk_gemv_fn fn, size_t esize, ptrdiff_t rows, ptrdiff_t cols, const void *w,
                        ptrdiff_t ldw, const float *x, float alpha, float beta, float *y) {
    int nt = rk_threads();
    if (nt > 1 && (double)rows * (double)cols >= RK_GEMV_PARALLEL_MIN) {
        // Contiguous row ranges, multiples of 16 so only the last one has a row tail (rows are independent anyway).
        ptrdiff_t chunk = ((rows + nt - 1) / nt + 15) / 16 * 16;
        rk_gemv_job job = {fn, rows, cols, ldw, chunk, esize, w, x, alpha, beta, y};
        rk_parallel((int)((rows + chunk - 1) / chunk), rk_gemv_task, &job);
        return;
    }
    fn(rows, cols, w, ldw, x, alpha, beta, y);
}

void rk_gemv_bf16(ptrdiff_t rows, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw, const float *x, float beta,
                  float *y) {
    if (rows <= 0) return;
    if (cols < 0) cols = 0;
    rk_gemv_fn fn = rk_gemv_bf16_portable;
#if defined(__x86_64__)
    int level = rk_active_level();
    if (level >= RK_LEVEL_AVX512) fn = rk_gemv_bf16_avx512;
    else if (level >= RK_LEVEL_AVX2_FMA) fn = rk_gemv_bf16_avx2;
#endif
    rk_gemv_run(fn, sizeof *w, rows, cols, w, ldw, x, 1.0f, beta, y);
}

void rk_gemv_f32(ptrdiff_t rows, ptrdiff_t cols, const float *w, ptrdiff_t ldw, const float *x, float alpha,
                 float beta, float *y) {
    if (rows <= 0) return;
    if (cols < 0) cols = 0;
    if (alpha == 0.0f) { // as rk_sgemm: W and x are not read, so Inf/NaN in them do not reach y
        for (ptrdiff_t r = 0; r < rows; r++) y[r] = beta == 0.0f ? 0.0f : beta * y[r];
        return;
    }
    rk_gemv_fn fn = rk_gemv_f32_portable;
#if defined(__x86_64__)
    int level = rk_active_level();
    if (level >= RK_LEVEL_AVX512) fn = rk_gemv_f32_avx512;
    else if (level >= RK_LEVEL_AVX2_FMA) fn = rk_gemv_f32_avx2;
#endif
    rk_gemv_run(fn, sizeof *w, rows, cols, w, ldw, x, alpha, beta, y);
}
