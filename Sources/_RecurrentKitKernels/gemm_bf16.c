// Mixed-precision GEMM building block: operands rounded to bfloat16 when packed, f32 accumulation. The AVX512_BF16
// micro-kernel (8 rows x 32 columns, 16 accumulators) reads packed A and B as pairs of consecutive k in one 32-bit
// lane, the layout vdpbf16ps multiplies: lane j of a B panel holds (b[k][j], b[k+1][j]); a broadcast A pair holds
// (a[i][k], a[i][k+1]). K is padded to even with zeros. The portable path computes the same bf16 products with f32
// FMA, one k at a time.
#include "rk_gemm_bf16.h"
#include "rk_gemv.h"
#include "rk_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { BF_MR = 8, BF_NR = 32, BF_KC = 256, BF_MC = 128, BF_NC = 2048 };

// rk_f32_to_bf16 of one value, inline: round to nearest even, NaN truncated and quieted.
static inline uint16_t rk_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x40u : r);
}

static inline float rk_bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// op(X)(i, k) for a row-major X with leading dimension ld.
static inline float rk_op_at(const float *X, ptrdiff_t ld, int trans, ptrdiff_t i, ptrdiff_t k) {
    return trans ? X[k * ld + i] : X[i * ld + k];
}

// Packs op(A)[i0 .. i0+mc, k0 .. k0+kc] into MR-row panels of k-pairs: panel p, pair q, row r at ((p*KP + q)*MR + r).
static void rk_pack_a_bf16(const float *A, ptrdiff_t lda, int transA, ptrdiff_t i0, ptrdiff_t mc, ptrdiff_t k0,
                           ptrdiff_t kc, uint32_t *out) {
    ptrdiff_t kp = (kc + 1) / 2;
    for (ptrdiff_t p = 0; p < (mc + BF_MR - 1) / BF_MR; p++)
        for (ptrdiff_t q = 0; q < kp; q++)
            for (int r = 0; r < BF_MR; r++) {
                ptrdiff_t i = p * BF_MR + r, k = 2 * q;
                uint32_t lo = 0, hi = 0;
                if (i < mc) {
                    lo = rk_bf16_round(rk_op_at(A, lda, transA, i0 + i, k0 + k));
                    if (k + 1 < kc) hi = rk_bf16_round(rk_op_at(A, lda, transA, i0 + i, k0 + k + 1));
                }
                out[(p * kp + q) * BF_MR + r] = lo | hi << 16;
            }
}

// Packs op(B)[k0 .. k0+kc, j0 .. j0+nc] into NR-column panels of k-pairs: panel p, pair q, column c at
// ((p*KP + q)*NR + c).
static void rk_pack_b_bf16(const float *B, ptrdiff_t ldb, int transB, ptrdiff_t k0, ptrdiff_t kc, ptrdiff_t j0,
                           ptrdiff_t nc, uint32_t *out) {
    ptrdiff_t kp = (kc + 1) / 2;
    for (ptrdiff_t p = 0; p < (nc + BF_NR - 1) / BF_NR; p++)
        for (ptrdiff_t q = 0; q < kp; q++)
            for (int c = 0; c < BF_NR; c++) {
                ptrdiff_t j = p * BF_NR + c, k = 2 * q;
                uint32_t lo = 0, hi = 0;
                if (j < nc) {
                    lo = rk_bf16_round(rk_op_at(B, ldb, !transB, j0 + j, k0 + k)); // op(B)(k, j) = B^T-view (j, k)
                    if (k + 1 < kc) hi = rk_bf16_round(rk_op_at(B, ldb, !transB, j0 + j, k0 + k + 1));
                }
                out[(p * kp + q) * BF_NR + c] = lo | hi << 16;
            }
}

// One MR x NR tile over kp pairs: C[r][c] += alpha * sum, for the rows x cols that exist.
static void rk_tile_bf16_portable(ptrdiff_t kp, const uint32_t *a, const uint32_t *b, float *C, ptrdiff_t ldc,
                                  int rows, int cols, float alpha) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float s = 0;
            for (ptrdiff_t q = 0; q < kp; q++) {
                uint32_t x = a[q * BF_MR + r], y = b[q * BF_NR + c];
                s += rk_bf16_value((uint16_t)x) * rk_bf16_value((uint16_t)y);
                s += rk_bf16_value((uint16_t)(x >> 16)) * rk_bf16_value((uint16_t)(y >> 16));
            }
            C[r * ldc + c] += alpha * s;
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,avx512bf16"))) static void rk_tile_bf16_avx512(ptrdiff_t kp, const uint32_t *a,
                                                                              const uint32_t *b, float *C, ptrdiff_t ldc,
                                                                              int rows, int cols, float alpha) {
    __m512 c[BF_MR][2];
    for (int r = 0; r < BF_MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (ptrdiff_t q = 0; q < kp; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * BF_NR), b1 = (__m512bh)_mm512_loadu_si512(b + q * BF_NR + 16);
        for (int r = 0; r < BF_MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[q * BF_MR + r]);
            c[r][0] = _mm512_dpbf16_ps(c[r][0], x, b0);
            c[r][1] = _mm512_dpbf16_ps(c[r][1], x, b1);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    for (int r = 0; r < rows; r++) { // C += alpha * acc, masked to the columns that exist
        float *cr = C + r * ldc;
        _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(al, c[r][0], _mm512_maskz_loadu_ps(m0, cr)));
        _mm512_mask_storeu_ps(cr + 16, m1, _mm512_fmadd_ps(al, c[r][1], _mm512_maskz_loadu_ps(m1, cr + 16)));
    }
}
#endif

int rk_bf16_dot_available(void) {
#if defined(__x86_64__)
    return rk_active_level() >= RK_LEVEL_AVX512 && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

void rk_sgemm_bf16(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                   ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
    for (ptrdiff_t i = 0; i < M; i++)
        for (ptrdiff_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    if (K <= 0 || alpha == 0.0f) return;
    void (*tile)(ptrdiff_t, const uint32_t *, const uint32_t *, float *, ptrdiff_t, int, int, float) = rk_tile_bf16_portable;
#if defined(__x86_64__)
    if (rk_bf16_dot_available()) tile = rk_tile_bf16_avx512;
#endif
    uint32_t *pa = rk_alloc((size_t)(BF_MC + BF_MR) * (BF_KC / 2) * 4);
    uint32_t *pb = rk_alloc((size_t)(BF_NC + BF_NR) * (BF_KC / 2) * 4);
    for (ptrdiff_t j0 = 0; j0 < N; j0 += BF_NC) {
        ptrdiff_t nc = N - j0 < BF_NC ? N - j0 : BF_NC;
        for (ptrdiff_t k0 = 0; k0 < K; k0 += BF_KC) {
            ptrdiff_t kc = K - k0 < BF_KC ? K - k0 : BF_KC, kp = (kc + 1) / 2;
            rk_pack_b_bf16(B, ldb, transB, k0, kc, j0, nc, pb);
            for (ptrdiff_t i0 = 0; i0 < M; i0 += BF_MC) {
                ptrdiff_t mc = M - i0 < BF_MC ? M - i0 : BF_MC;
                rk_pack_a_bf16(A, lda, transA, i0, mc, k0, kc, pa);
                for (ptrdiff_t ip = 0; ip < (mc + BF_MR - 1) / BF_MR; ip++)
                    for (ptrdiff_t jp = 0; jp < (nc + BF_NR - 1) / BF_NR; jp++) {
                        ptrdiff_t rows = mc - ip * BF_MR < BF_MR ? mc - ip * BF_MR : BF_MR;
                        ptrdiff_t cols = nc - jp * BF_NR < BF_NR ? nc - jp * BF_NR : BF_NR;
                        tile(kp, pa + ip * kp * BF_MR, pb + jp * kp * BF_NR, C + (i0 + ip * BF_MR) * ldc + j0 + jp * BF_NR,
                             ldc, (int)rows, (int)cols, alpha);
                    }
            }
        }
    }
    rk_free(pa);
    rk_free(pb);
}
