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

// 8 x 8 float transpose: row k of dst = column k of src.
static inline __attribute__((always_inline)) TGT void rk_tr8x8_ps(const float *s, ptrdiff_t ls,
                                                                   float *d, ptrdiff_t ld) {
    __m256 r0 = _mm256_loadu_ps(s + 0 * ls), r1 = _mm256_loadu_ps(s + 1 * ls);
    __m256 r2 = _mm256_loadu_ps(s + 2 * ls), r3 = _mm256_loadu_ps(s + 3 * ls);
    __m256 r4 = _mm256_loadu_ps(s + 4 * ls), r5 = _mm256_loadu_ps(s + 5 * ls);
    __m256 r6 = _mm256_loadu_ps(s + 6 * ls), r7 = _mm256_loadu_ps(s + 7 * ls);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(d + 0 * ld, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + 1 * ld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(d + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// 4 x 4 double transpose.
static inline __attribute__((always_inline)) TGT void rk_tr4x4_pd(const double *s, ptrdiff_t ls,
                                                                   double *d, ptrdiff_t ld) {
    __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + ls);
    __m256d r2 = _mm256_loadu_pd(s + 2 * ls), r3 = _mm256_loadu_pd(s + 3 * ls);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(d + ld, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(d + 2 * ld, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(d + 3 * ld, _mm256_permute2f128_pd(t1, t3, 0x31));
}

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
