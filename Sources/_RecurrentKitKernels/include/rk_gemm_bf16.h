#ifndef RK_GEMM_BF16_H
#define RK_GEMM_BF16_H
#include <stddef.h>

/// C[M,N] = alpha * bf16(op(A))[M,K] * bf16(op(B))[K,N] + beta * C, row-major as rk_sgemm: the operands are rounded to
/// bfloat16 (nearest even) while they are packed, every product of two bf16 values is exact in f32, and the sums are
/// f32. With AVX512_BF16 the micro-kernel is vdpbf16ps (two products per lane and instruction; denormal inputs and
/// results are flushed to zero, as the instruction does); elsewhere the same products go through f32 FMA one k at a
/// time, so levels agree within f32 summation-order rounding, not bit for bit. C is not read when beta == 0.
/// One thread (the building block of mixed-precision training; not yet used by the training path).
void rk_sgemm_bf16(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                   ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc);

/// Whether this CPU has AVX512_BF16 and the active level is AVX-512 (rk_sgemm_bf16 then uses vdpbf16ps).
int rk_bf16_dot_available(void);
#endif
