// Internal to the mixed-precision GEMM: its blocking, the packed layouts and the x86 packers and tiles
// (gemm_bf16_x86.c) that gemm_bf16.c chooses from at run time.
#ifndef RK_GEMM_BF16_KERNELS_H
#define RK_GEMM_BF16_KERNELS_H
#include <stddef.h>
#include <stdint.h>

// Tile BF_MR x BF_NR; KC 512 measured 1.5-4% faster end to end than 256 at 1 and 2 threads (fewer passes over C per
// product).
enum { BF_MR = 8, BF_NR = 32, BF_KC = 512, BF_MC = 128 };

// Packs rows r0 .. r0+rows of op(X) (rows indexed first; op(X)(i, k) = trans ? X[k*ld + i] : X[i*ld + k]), columns
// k0 .. k0+kc, as bf16 pairs of consecutive k (even k in the low half) in panels of `width` rows: panel p, pair q, row
// r at ((p*KP + q)*width + r), KP = (kc + 1) / 2; missing rows and the odd k's missing partner are zeros. A is packed
// with X = A, B with X = B viewed transposed (the columns of op(B) as rows). The "widened" A packer writes two f32 per
// pair instead: panel p, k at ((p*2*KP + k)*width + r).
typedef void (*rk_bf16_pack_fn)(const float *X, ptrdiff_t ld, int trans, ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                                ptrdiff_t kc, int width, uint32_t *out);
// One BF_MR x BF_NR tile over kp pairs of packed A and B: C[r][c] = alpha * sum + beta * C[r][c] for the rows x cols
// that exist (C is not read when beta == 0; the driver passes the caller's beta with the first k block, then 1).
typedef void (*rk_bf16_tile_fn)(ptrdiff_t kp, const uint32_t *a, const uint32_t *b, float *C, ptrdiff_t ldc, int rows,
                                int cols, float alpha, float beta);

#if defined(__x86_64__)
void rk_pack_pairs_bf16_avx512(const float *X, ptrdiff_t ld, int trans, ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                               ptrdiff_t kc, int width, uint32_t *out);
void rk_pack_pairs_bf16_avx2(const float *X, ptrdiff_t ld, int trans, ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                             ptrdiff_t kc, int width, uint32_t *out);
void rk_pack_a_widened_avx2(const float *X, ptrdiff_t ld, int trans, ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                            ptrdiff_t kc, int width, uint32_t *out);
void rk_tile_bf16_avx512(ptrdiff_t kp, const uint32_t *a, const uint32_t *b, float *C, ptrdiff_t ldc, int rows,
                         int cols, float alpha, float beta);
void rk_tile_bf16_avx512f(ptrdiff_t kp, const uint32_t *a, const uint32_t *b, float *C, ptrdiff_t ldc, int rows,
                          int cols, float alpha, float beta);
void rk_tile_bf16_avx2(ptrdiff_t kp, const uint32_t *a, const uint32_t *b, float *C, ptrdiff_t ldc, int rows, int cols,
                       float alpha, float beta);
#endif
#endif
