#ifndef C_RECURRENT_KERNELS_H
#define C_RECURRENT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#include "rk_peak.h"
#include "rk_activations.h"
#endif

/// Instruction-set levels the kernels can run at.
enum {
    RK_LEVEL_PORTABLE = 0, ///< plain C, any CPU
    RK_LEVEL_AVX2_FMA = 1, ///< x86-64 with AVX2 and FMA
    RK_LEVEL_AVX512 = 2    ///< x86-64 with AVX-512F
};

/// Highest level this CPU supports (checked once with cpuid).
int rk_detected_level(void);
/// Level the kernels use now (<= detected).
int rk_active_level(void);
/// Caps the level used (for tests and benchmarks); returns the level now active.
int rk_set_level(int level);

/// Row-major GEMM: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
/// op(X) = X when trans is 0, X^T when 1. lda/ldb/ldc are row strides of the stored matrices.
/// When beta == 0, C is not read (NaN in C does not propagate).
void rk_sgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
              float alpha, const float *A, ptrdiff_t lda,
              const float *B, ptrdiff_t ldb,
              float beta, float *C, ptrdiff_t ldc);

/// Double-precision twin of rk_sgemm, same contract.
void rk_dgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
              double alpha, const double *A, ptrdiff_t lda,
              const double *B, ptrdiff_t ldb,
              double beta, double *C, ptrdiff_t ldc);

/// Number of threads large products may be split over (>= 1). Default 1.
void rk_set_threads(int threads);
/// Current thread count used by the kernels.
int rk_threads(void);

#ifdef __cplusplus
}
#endif
#include "rk_peak.h"
#include "rk_activations.h"
#endif
