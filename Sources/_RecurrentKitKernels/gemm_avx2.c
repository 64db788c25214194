// AVX2 + FMA kernels, compiled through target attributes (no global -mavx2 needed).
#include "rk_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) TGT __m256i rk_mask8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __attribute__((always_inline)) TGT __m256i rk_mask4d(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}

#include "rk_transposes.h"

// Sums each of 8 vectors: lane l of the result = sum of the lanes of v[l]; every lane uses the
// same tree ((x0+x1)+(x2+x3)) + ((x4+x5)+(x6+x7)).
static inline __attribute__((always_inline)) TGT __m256 rk_reduce8_ps(const __m256 *v) {
    __m256 h01 = _mm256_hadd_ps(v[0], v[1]), h23 = _mm256_hadd_ps(v[2], v[3]);
    __m256 h45 = _mm256_hadd_ps(v[4], v[5]), h67 = _mm256_hadd_ps(v[6], v[7]);
    __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

// Sums each of 4 vectors: lane l = (x0+x1)+(x2+x3) of v[l].
static inline __attribute__((always_inline)) TGT __m256d rk_reduce4_pd(const __m256d *v) {
    __m256d h01 = _mm256_hadd_pd(v[0], v[1]), h23 = _mm256_hadd_pd(v[2], v[3]);
    return _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
}

#define VFMA(a, b, c) VFMA_(a, b, c)
#define VMUL(a, b) VMUL_(a, b)

// ---- float: 6 x 16 micro-tile, 4 x 3 dot tile ----
#define T float
#define SFX(x) x##_s_avx2
#define OPS_T rk_ops_s
#define OPS_NAME rk_ops_s_avx2
#define VT __m256
#define VL 8
#define MR 6
#define NV 2
#define KC_ 512
#define MC_ 120
#define NC_ 1024
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA_(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL_(a, b) _mm256_mul_ps(a, b)
#define VMASK __m256i
#define VMASK_FIRST(n) rk_mask8(n)
#define VLOADM(p, m) _mm256_maskload_ps(p, m)
#define VSTOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define TB 8
#define TRANSPOSE_BLOCK(s, ls, d, ld) rk_tr8x8_ps(s, ls, d, ld)
#define DR 4
#define DC 3
#define VREDUCE(vv) rk_reduce8_ps(vv)
#define RED_LANE(l) (l)
#include "gemm_template.h"
#undef T
#undef SFX
#undef OPS_T
#undef OPS_NAME
#undef VT
#undef VL
#undef MR
#undef NV
#undef KC_
#undef MC_
#undef NC_
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VFMA_
#undef VMUL_
#undef VMASK
#undef VMASK_FIRST
#undef VLOADM
#undef VSTOREM
#undef TB
#undef TRANSPOSE_BLOCK
#undef DR
#undef DC
#undef VREDUCE
#undef RED_LANE

// ---- double: 6 x 8 micro-tile ----
#define T double
#define SFX(x) x##_d_avx2
#define OPS_T rk_ops_d
#define OPS_NAME rk_ops_d_avx2
#define VT __m256d
#define VL 4
#define MR 6
#define NV 2
#define KC_ 256
#define MC_ 96
#define NC_ 512
#define VZERO() _mm256_setzero_pd()
#define VLOAD(p) _mm256_loadu_pd(p)
#define VSTORE(p, v) _mm256_storeu_pd(p, v)
#define VBCAST(x) _mm256_set1_pd(x)
#define VFMA_(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VMUL_(a, b) _mm256_mul_pd(a, b)
#define VMASK __m256i
#define VMASK_FIRST(n) rk_mask4d(n)
#define VLOADM(p, m) _mm256_maskload_pd(p, m)
#define VSTOREM(p, m, v) _mm256_maskstore_pd(p, m, v)
#define TB 4
#define TRANSPOSE_BLOCK(s, ls, d, ld) rk_tr4x4_pd(s, ls, d, ld)
#define DR 4
#define DC 3
#define VREDUCE(vv) rk_reduce4_pd(vv)
#define RED_LANE(l) (l)
#include "gemm_template.h"

#endif
