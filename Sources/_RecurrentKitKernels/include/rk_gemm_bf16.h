#ifndef RK_GEMM_BF16_H
#define RK_GEMM_BF16_H
#include <stddef.h>

/// C[M,N] = alpha * bf16(op(A))[M,K] * bf16(op(B))[K,N] + beta * C, row-major as rk_sgemm: the operands are rounded to
/// bfloat16 (nearest even) while they are packed, every product of two bf16 values is exact in f32, and the sums are
/// f32. With AVX512_BF16 the operands are rounded by vcvtne2ps2bf16 and multiplied by vdpbf16ps (two products per
/// lane and instruction; denormal inputs and results are flushed to zero, as these instructions do); elsewhere the
/// same bf16 values (rounded with integer operations, AVX2 or scalar) are widened and multiplied with f32 FMA, each
/// pair's even k first (AVX-512F without AVX512_BF16: an 8 x 32 tile over A widened when packed, B's pairs widened
/// in registers; AVX2+FMA: 4 x 16 register blocks; these two give the same bits; portable: one k at a time), so
/// levels agree within f32 summation-order rounding, not bit for bit. C is not read when beta == 0. Uses the kernels' thread pool (row
/// blocks, or column panels over one shared packing of A for few rows; B's packing by column panels); results do not
/// depend on the thread count. Mixed-precision training reaches it through rk_sgemm (rk_set_bf16_products).
void rk_sgemm_bf16(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                   ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc);

/// Bytes rk_sgemm_bf16_pack_b needs for op(B) of shape [K, N].
size_t rk_sgemm_bf16_pack_b_size(ptrdiff_t K, ptrdiff_t N);
/// Packs op(B)[K, N] (transB and ldb as in rk_sgemm) as bf16 pairs once, for many products with the same B (a
/// recurrent weight matrix used at every step).
void rk_sgemm_bf16_pack_b(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb, void *packed);
/// rk_sgemm_bf16 with B pre-packed by rk_sgemm_bf16_pack_b (same K and N).
void rk_sgemm_bf16_packed(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
                          const void *packedB, float beta, float *C, ptrdiff_t ldc);

/// Makes rk_sgemm, rk_sgemm_pack_b and rk_sgemm_packed called from this thread compute bf16 products (on) or f32
/// products (off, the default): mixed-precision training switches it on around its forward and backward. Per thread,
/// so other threads' models are not affected; a buffer packed in one mode must be used in the same mode (checked).
void rk_set_bf16_products(int on);
/// Whether this thread computes bf16 products (rk_set_bf16_products).
int rk_bf16_products(void);

/// Whether this CPU has AVX512_BF16, the active level is AVX-512 and rk_set_bf16_dot allows it (rk_sgemm_bf16 then
/// uses vdpbf16ps).
int rk_bf16_dot_available(void);
/// Allows (1, the default) or forbids (0) the AVX512_BF16 instructions process-wide, so that tests and benchmarks can
/// run the path of an AVX-512 CPU without them; returns rk_bf16_dot_available() after the change. Like
/// rk_set_level, re-pack bf16 buffers after changing it.
int rk_set_bf16_dot(int allowed);
#endif
