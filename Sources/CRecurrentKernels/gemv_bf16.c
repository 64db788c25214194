// bf16 weights for the recurrent matrix-vector product: a time step streams W_hh once per step, so halving its
// bytes matters once W_hh leaves the cache. bf16 widens to f32 by a 16-bit shift; x and the sums stay f32.
//
// Determinism: every row is summed with the same steps (lanes, accumulators, tail, reduction tree) whether it runs
// in a block of 4 rows or alone, so a row's result depends only on its data, cols and the level.
#include "rk_bf16.h"
#include "rk_internal.h"

#include <string.h>

// Products below this many multiply-adds run on the caller (fork-join costs ~1 us).
#define RK_BF16_PARALLEL_MIN (64 * 1024)
#define RK_INLINE static inline __attribute__((always_inline))

void rk_f32_to_bf16(const float *src, uint16_t *dst, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        // Adding 0x7FFF plus the lowest kept bit rounds to nearest even; a carry into the exponent gives inf.
        uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
        // NaN is truncated and quieted instead: rounding could carry its payload into inf or flip the sign.
        dst[i] = (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x40u : r);
    }
}

void rk_bf16_to_f32(const uint16_t *src, float *dst, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(dst + i, &u, 4);
    }
}

RK_INLINE void rk_bf16_put(float *y, float s, float beta) { *y = beta == 0.0f ? s : s + beta * *y; }

RK_INLINE float rk_bf16_1(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// R (1 or 4) rows at a time; each row: 8 lanes, lane j sums k = j mod 8, scalar tail into lanes 0.., fixed tree.
RK_INLINE void rk_bf16_rows_portable(int R, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw, const float *x,
                                     float beta, float *y) {
    float a[4][8] = {{0}};
    ptrdiff_t k = 0;
    for (; k + 8 <= cols; k += 8)
        for (int r = 0; r < R; r++)
            for (int j = 0; j < 8; j++) a[r][j] += rk_bf16_1(w[r * ldw + k + j]) * x[k + j];
    for (int r = 0; r < R; r++) {
        for (ptrdiff_t j = 0; k + j < cols; j++) a[r][j] += rk_bf16_1(w[r * ldw + k + j]) * x[k + j];
        float s = ((a[r][0] + a[r][4]) + (a[r][2] + a[r][6])) + ((a[r][1] + a[r][5]) + (a[r][3] + a[r][7]));
        rk_bf16_put(y + r, s, beta);
    }
}

static void rk_gemv_bf16_portable(ptrdiff_t rows, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw,
                                  const float *x, float beta, float *y) {
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_bf16_rows_portable(4, cols, w + r * ldw, ldw, x, beta, y + r);
    for (; r < rows; r++) rk_bf16_rows_portable(1, cols, w + r * ldw, ldw, x, beta, y + r);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define RK_AVX2 __attribute__((target("avx2,fma")))
#define RK_AVX512 __attribute__((target("avx512f")))

// Vector paths widen a whole vector of bf16 pairs at once: each 32-bit lane holds w[2i] (low half) and w[2i+1]
// (high half), so w[2i] = lane << 16 and w[2i+1] = lane & 0xFFFF0000, against x split once per 4 rows into its
// even and odd elements. Measured on Zen 4 against cvtepu16 + shift per 8/16 weights (which loads the
// shuffle ports once per row): +10% (AVX-512) / +7% (AVX2) at 2048 x 512, +25% / +20% when W is in L1/L2.

// Sums of a, b, c, d in lanes 0..3, each by the same tree (so a zero b, c, d leave a's sum unchanged).
RK_INLINE RK_AVX2 __m128 rk_bf16_reduce4_avx2(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(c, d, 0x20), _mm256_permute2f128_ps(c, d, 0x31));
    __m256 h = _mm256_hadd_ps(ab, cd);
    h = _mm256_hadd_ps(h, h); // a c a c | b d b d
    return _mm_unpacklo_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

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
    _mm_storeu_ps(out, rk_bf16_reduce4_avx2(s[0], s[1], s[2], s[3]));
    for (int r = 0; r < R; r++) rk_bf16_put(y + r, out[r], beta);
}

RK_AVX2 static void rk_gemv_bf16_avx2(ptrdiff_t rows, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw,
                                      const float *x, float beta, float *y) {
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_bf16_rows_avx2(4, cols, w + r * ldw, ldw, x, beta, y + r);
    for (; r < rows; r++) rk_bf16_rows_avx2(1, cols, w + r * ldw, ldw, x, beta, y + r);
}

// As rk_bf16_reduce4_avx2: halve 512 -> 128 bits per vector, then within 128 bits, same tree for each.
RK_INLINE RK_AVX512 __m128 rk_bf16_reduce4_avx512(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD)); // a b c d
    u = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    u = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
    __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, u));
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
    _mm_storeu_ps(out, rk_bf16_reduce4_avx512(s[0], s[1], s[2], s[3]));
    for (int r = 0; r < R; r++) rk_bf16_put(y + r, out[r], beta);
}

RK_AVX512 static void rk_gemv_bf16_avx512(ptrdiff_t rows, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw,
                                          const float *x, float beta, float *y) {
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) rk_bf16_rows_avx512(4, cols, w + r * ldw, ldw, x, beta, y + r);
    for (; r < rows; r++) rk_bf16_rows_avx512(1, cols, w + r * ldw, ldw, x, beta, y + r);
}
#endif

typedef void (*rk_gemv_bf16_fn)(ptrdiff_t, ptrdiff_t, const uint16_t *, ptrdiff_t, const float *, float, float *);

typedef struct {
    rk_gemv_bf16_fn fn;
    ptrdiff_t rows, cols, ldw, chunk;
    const uint16_t *w;
    const float *x;
    float beta;
    float *y;
} rk_gemv_bf16_job;

static void rk_gemv_bf16_task(void *ctx, int c, int nchunks) {
    (void)nchunks;
    const rk_gemv_bf16_job *j = ctx;
    ptrdiff_t r0 = (ptrdiff_t)c * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    if (r0 < r1) j->fn(r1 - r0, j->cols, j->w + r0 * j->ldw, j->ldw, j->x, j->beta, j->y + r0);
}

void rk_gemv_bf16(ptrdiff_t rows, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw, const float *x, float beta,
                  float *y) {
    if (rows <= 0) return;
    if (cols < 0) cols = 0;
    rk_gemv_bf16_fn fn = rk_gemv_bf16_portable;
#if defined(__x86_64__)
    int level = rk_active_level();
    if (level >= RK_LEVEL_AVX512) fn = rk_gemv_bf16_avx512;
    else if (level >= RK_LEVEL_AVX2_FMA) fn = rk_gemv_bf16_avx2;
#endif
    int nt = rk_threads();
    if (nt > 1 && (double)rows * (double)cols >= RK_BF16_PARALLEL_MIN) {
        // Contiguous row ranges, multiples of 16 so only the last one has a row tail (rows are independent anyway).
        ptrdiff_t chunk = ((rows + nt - 1) / nt + 15) / 16 * 16;
        rk_gemv_bf16_job job = {fn, rows, cols, ldw, chunk, w, x, beta, y};
        rk_parallel((int)((rows + chunk - 1) / chunk), rk_gemv_bf16_task, &job);
        return;
    }
    fn(rows, cols, w, ldw, x, beta, y);
}
