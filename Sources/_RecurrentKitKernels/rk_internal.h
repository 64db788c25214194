// Internal declarations shared by the GEMM driver and the per-level kernel files.
#ifndef RK_INTERNAL_H
#define RK_INTERNAL_H

#include "_RecurrentKitKernels.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Kernel table for one element type at one instruction-set level.
//
// Packed layout (BLIS style): a packed A micro-panel holds kc columns of MR rows,
// element (i, k) at pa[k*MR + i]; a packed B micro-panel holds kc rows of NR columns,
// element (k, j) at pb[k*NR + j]. Panels are zero-padded to MR / NR.
#define RK_DECLARE_OPS(T, NAME)                                                              \
    typedef struct {                                                                         \
        int mr, nr;          /* micro-tile */                                                \
        int kc, mc, nc;      /* compiled blocking: fallback and largest kc of rk_blocking */ \
        /* C[mr x nr] = alpha * PA * PB + beta * C over kc steps (beta == 0: C not read). */ \
        void (*kern)(int mr, int nr, ptrdiff_t kc, const T *pa, const T *pb,                 \
                     T *c, ptrdiff_t ldc, T alpha, T beta);                                  \
        /* kern with mr = 1 over np consecutive packed panels (same results, more ILP). */   \
        void (*kern_row)(ptrdiff_t np, int nr_last, ptrdiff_t kc, const T *pa, const T *pb,  \
                         T *c, T alpha, T beta);                                             \
        /* Small-M product without packing (m <= 4, n <= RK_GEMV_NB, y: m*(n+32) scratch):        \
           C[i, 0:n] = alpha * sum_k A(i,k) * B[k, 0:n] + beta * C, A(i,k) = a[i*rsa + k*csa]. */ \
        void (*gemv_n)(int m, ptrdiff_t n, ptrdiff_t K, const T *a, ptrdiff_t rsa,           \
                       ptrdiff_t csa, const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc,        \
                       T alpha, T beta, T *y);                                               \
        /* dst[k*W + r] = src[k*ld + r] (r < w), zero for w <= r < W. */                    \
        void (*pack_n)(T *dst, const T *src, ptrdiff_t ld, ptrdiff_t kc, int w, int W);      \
        /* dst[k*W + r] = src[r*ld + k] (r < w), zero for w <= r < W. */                    \
        void (*pack_t)(T *dst, const T *src, ptrdiff_t ld, ptrdiff_t kc, int w, int W);      \
        /* Optional dot-product kernel for op(B) = B^T with contiguous A rows:              \
           C[i][j] = alpha * dot(a + i*lda, b + j*ldb, K) + beta * C[i][j], i < mr <= dr,    \
           j < nr <= dc. NULL when the level has none. */                                    \
        int dr, dc;                                                                          \
        void (*dot)(int mr, int nr, ptrdiff_t K, const T *a, ptrdiff_t lda, const T *b,      \
                    ptrdiff_t ldb, T *c, ptrdiff_t ldc, T alpha, T beta);                    \
    } NAME;

// Column block of the small-M kernel (its scratch holds 4 x (RK_GEMV_NB + 32) elements).
#ifndef RK_GEMV_NB
#define RK_GEMV_NB 1024
#endif

RK_DECLARE_OPS(float, rk_ops_s)
RK_DECLARE_OPS(double, rk_ops_d)

extern const rk_ops_s rk_ops_s_portable;
extern const rk_ops_d rk_ops_d_portable;
#if defined(__x86_64__)
extern const rk_ops_s rk_ops_s_avx2;
extern const rk_ops_d rk_ops_d_avx2;
extern const rk_ops_s rk_ops_s_avx512;
extern const rk_ops_d rk_ops_d_avx512;
#endif

// The ops tables of a level (the highest one at or below it that was compiled).
const rk_ops_s *rk_ops_s_for(int level);
const rk_ops_d *rk_ops_d_for(int level);

// Elements a thread-local packing buffer of the GEMM driver is allocated with at least: the largest A block (mc * kc,
// b_block 0) or B block (kc * nc, b_block 1) of any level's current blocking (blocking.c), so a buffer never grows later
// because its thread happened to run a larger product than before.
size_t rk_tls_floor(int element_bytes, int b_block);

// Task of rk_parallel (declared in _RecurrentKitKernels.h): chunks are claimed dynamically by the
// caller and idle workers; every chunk runs on the caller when n <= 1 or the pool is busy.
typedef void (*rk_task_fn)(void *ctx, int chunk, int nchunks);

// The f32 GEMM driver behind rk_sgemm and its packed forms (same contracts).
void rk_sgemm_f32(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                  ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc);
void rk_sgemm_f32_tn_pair(ptrdiff_t M, ptrdiff_t K, const float *A, ptrdiff_t lda, ptrdiff_t N1, const float *B1,
                          ptrdiff_t ldb1, float *C1, ptrdiff_t ldc1, ptrdiff_t N2, const float *B2, ptrdiff_t ldb2,
                          float *C2, ptrdiff_t ldc2);
size_t rk_sgemm_f32_pack_b_size(ptrdiff_t K, ptrdiff_t N);
void rk_sgemm_f32_pack_b(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb, void *packed);
void rk_sgemm_f32_packed(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
                         const void *packedB, float beta, float *C, ptrdiff_t ldc);
// One value to bfloat16: adding 0x7FFF plus the lowest kept bit rounds to nearest even (a carry into the exponent
// gives inf); NaN is truncated and quieted instead (rounding could carry its payload into inf or flip the sign).
static inline uint16_t rk_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x40u : r);
}

// One bfloat16 widened to float (exact: its bits become the high half).
static inline float rk_f32_from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
