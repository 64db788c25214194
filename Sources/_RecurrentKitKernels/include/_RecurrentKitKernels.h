#ifndef RK_KERNELS_H
#define RK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#include "rk_peak.h"
#include "rk_activations.h"
#include "rk_gemv.h"
#include "rk_gemm_bf16.h"
#include "rk_blocking.h"
#include "rk_cell_rows.h"
#include "rk_optimizer.h"
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
/// M == 1 with transB == 1 runs rk_gemv_f32: another summation order than M > 1 (last bits may differ).
void rk_sgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
              float alpha, const float *A, ptrdiff_t lda,
              const float *B, ptrdiff_t ldb,
              float beta, float *C, ptrdiff_t ldc);

/// C1 += A^T B1 and C2 += A^T B2 for one A stored K x M (lda) and B1 (K x N1), B2 (K x N2) not transposed: the same
/// bits as rk_sgemm(1, 0, M, N1, K, 1, A, lda, B1, ldb1, 1, C1, ldc1) and the same call for B2, C2, with each block of
/// A packed once for both (a layer's weight gradients dW_ih and dW_hh share dGates^T). bf16 products: the two calls.
void rk_sgemm_tn_pair(ptrdiff_t M, ptrdiff_t K, const float *A, ptrdiff_t lda, ptrdiff_t N1, const float *B1,
                      ptrdiff_t ldb1, float *C1, ptrdiff_t ldc1, ptrdiff_t N2, const float *B2, ptrdiff_t ldb2, float *C2,
                      ptrdiff_t ldc2);

/// Double-precision twin of rk_sgemm, same contract.
void rk_dgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
              double alpha, const double *A, ptrdiff_t lda,
              const double *B, ptrdiff_t ldb,
              double beta, double *C, ptrdiff_t ldc);

/// Number of threads large products may be split over, clamped to 1...rk_max_threads(). Starts at
/// rk_default_threads() (set when the library is loaded).
void rk_set_threads(int threads);
/// Current thread count used by the kernels.
int rk_threads(void);
/// The most threads the pool can run (the caller and its workers): 64.
int rk_max_threads(void);
/// CPUs this process may use: the calling thread's affinity mask (Linux; the CPUs online elsewhere), bounded by the
/// cgroup CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, of the cgroup and its ancestors) rounded
/// down; at least 1. Read anew on every call (no heap allocation).
int rk_usable_cpus(void);
/// Processes of an MPI job on this host (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS, PMI_LOCAL_SIZE), else 1.
int rk_local_ranks(void);
/// The default thread count: rk_usable_cpus() / rk_local_ranks() rounded down, in 1...rk_max_threads().
int rk_default_threads(void);
/// Runs fn(ctx, chunk, nchunks) once for every chunk in [0, nchunks) on the caller and the kernel pool's workers
/// (all on the caller with 1 thread or when the pool is busy); returns when every chunk is done. Chunks must write
/// disjoint memory; which thread runs a chunk must not change its result. nchunks < 65536.
void rk_parallel(int nchunks, void (*fn)(void *ctx, int chunk, int nchunks), void *ctx);
/// How many times the pool saw a worker preempted in the middle of a chunk (the caller waited for it over 1 ms, longer
/// than it worked) and ran the next jobs on the caller alone for a while (20 ms, doubling while it recurs).
long long rk_pool_serial_windows(void);

/// Pre-packed B ("weights"): pack op(B) once, reuse it for many products with the same B
/// (e.g. W_hh for every time step of a sequence), which saves the per-call packing.
///
/// Bytes needed by rk_sgemm_pack_b for op(B) of shape [K, N]. Large enough for every
/// instruction-set level this CPU supports, so a buffer stays valid after rk_set_level.
size_t rk_sgemm_pack_b_size(ptrdiff_t K, ptrdiff_t N);
/// Packs op(B)[K, N] (transB and ldb as in rk_sgemm) into `packed`, which must hold
/// rk_sgemm_pack_b_size(K, N) bytes (64-byte alignment recommended). The layout belongs to the
/// level active at packing time and to its blocking's kc (rk_blocking); if either changes afterwards
/// rk_sgemm_packed still gives correct results, but slowly, so re-pack after rk_set_level or rk_set_blocking.
void rk_sgemm_pack_b(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb,
                     void *packed);
/// C[M,N] = alpha * op(A)[M,K] * Bpacked[K,N] + beta * C, same contract as rk_sgemm.
/// K and N must equal the values given to rk_sgemm_pack_b (checked; aborts otherwise).
/// Results do not depend on the thread count (they may differ in the last bits from rk_sgemm
/// on the same operands, which for some shapes sums in another order).
void rk_sgemm_packed(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                     const float *A, ptrdiff_t lda, const void *packedB, float beta, float *C,
                     ptrdiff_t ldc);

/// Allocates `bytes` (64-byte aligned) for packed weights or other large arrays; free with
/// rk_free. On Linux, blocks of 4 MiB and more are 2 MiB aligned and advised for transparent
/// huge pages, which makes streaming a large packed B about 10% faster. NULL on failure.
void *rk_alloc(size_t bytes);
/// Frees memory from rk_alloc (NULL is allowed).
void rk_free(void *p);

/// Double-precision twins of the pre-packed B functions.
size_t rk_dgemm_pack_b_size(ptrdiff_t K, ptrdiff_t N);
void rk_dgemm_pack_b(int transB, ptrdiff_t K, ptrdiff_t N, const double *B, ptrdiff_t ldb,
                     void *packed);
void rk_dgemm_packed(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, double alpha,
                     const double *A, ptrdiff_t lda, const void *packedB, double beta, double *C,
                     ptrdiff_t ldc);

#ifdef __cplusplus
}
#endif
#include "rk_peak.h"
#include "rk_activations.h"
#include "rk_gemv.h"
#include "rk_gemm_bf16.h"
#include "rk_blocking.h"
#include "rk_cell_rows.h"
#include "rk_optimizer.h"
#endif
