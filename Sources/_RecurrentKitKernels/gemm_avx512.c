// AVX-512F kernels, compiled through target attributes (no global -mavx512f needed).
#include "rk_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx2,fma")))

#include "rk_transposes.h"

// Sums each of 16 vectors with the same tree for every lane: x[l]+x[l+8], then +4, +2, +1.
// The sum of v[l] ends in lane 4*(l%4) + l/4.
static inline __attribute__((always_inline)) TGT __m512 rk_reduce16_ps(const __m512 *v) {
    __m512 w[8], y[4], z[2];
    for (int p = 0; p < 8; p++)
        w[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
    for (int q = 0; q < 4; q++)
        y[q] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * q], w[2 * q + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * q], w[2 * q + 1], 0xDD));
    for (int r = 0; r < 2; r++)
        z[r] = _mm512_add_ps(_mm512_shuffle_ps(y[2 * r], y[2 * r + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(y[2 * r], y[2 * r + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Sums each of 8 vectors with the same tree for every lane: x[l]+x[l+4], then +2, +1.
// The sum of v[l] ends in lane 2*(l%4) + l/4.
static inline __attribute__((always_inline)) TGT __m512d rk_reduce8_pd(const __m512d *v) {
    __m512d w[4], y[2];
    for (int p = 0; p < 4; p++)
        w[p] = _mm512_add_pd(_mm512_shuffle_f64x2(v[2 * p], v[2 * p + 1], 0x44),
                             _mm512_shuffle_f64x2(v[2 * p], v[2 * p + 1], 0xEE));
    for (int q = 0; q < 2; q++)
        y[q] = _mm512_add_pd(_mm512_shuffle_f64x2(w[2 * q], w[2 * q + 1], 0x88),
                             _mm512_shuffle_f64x2(w[2 * q], w[2 * q + 1], 0xDD));
    return _mm512_add_pd(_mm512_unpacklo_pd(y[0], y[1]), _mm512_unpackhi_pd(y[0], y[1]));
}

#define VFMA(a, b, c) VFMA_(a, b, c)
#define VMUL(a, b) VMUL_(a, b)

// ---- float: 8 x 32 micro-tile, 4 x 4 dot tile ----
#define T float
#define SFX(x) x##_s_avx512
#define OPS_T rk_ops_s
#define OPS_NAME rk_ops_s_avx512
#define VT __m512
#define VL 16
#define MR 8
#define NV 2
#define KC_ 512
#define MC_ 128
#define NC_ 1024
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA_(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL_(a, b) _mm512_mul_ps(a, b)
#define VMASK __mmask16
#define VMASK_FIRST(n) ((__mmask16)((1u << (n)) - 1u))
#define VLOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define VSTOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define TB 8
#define TRANSPOSE_BLOCK(s, ls, d, ld) rk_tr8x8_ps(s, ls, d, ld)
#define DR 4
#define DC 4
#define VREDUCE(vv) rk_reduce16_ps(vv)
#define RED_LANE(l) (4 * ((l) % 4) + (l) / 4)
#define GEMV_KU 4
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

// ---- double: 8 x 16 micro-tile ----
#define T double
#define SFX(x) x##_d_avx512
#define OPS_T rk_ops_d
#define OPS_NAME rk_ops_d_avx512
#define VT __m512d
#define VL 8
#define MR 8
#define NV 2
#define KC_ 256
#define MC_ 128
#define NC_ 512
#define VZERO() _mm512_setzero_pd()
#define VLOAD(p) _mm512_loadu_pd(p)
#define VSTORE(p, v) _mm512_storeu_pd(p, v)
#define VBCAST(x) _mm512_set1_pd(x)
#define VFMA_(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VMUL_(a, b) _mm512_mul_pd(a, b)
#define VMASK __mmask8
#define VMASK_FIRST(n) ((__mmask8)((1u << (n)) - 1u))
#define VLOADM(p, m) _mm512_maskz_loadu_pd(m, p)
#define VSTOREM(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define TB 4
#define TRANSPOSE_BLOCK(s, ls, d, ld) rk_tr4x4_pd(s, ls, d, ld)
#define DR 4
#define DC 4
#define VREDUCE(vv) rk_reduce8_pd(vv)
#define RED_LANE(l) (2 * ((l) % 4) + (l) / 4)
#define GEMV_KU 4
#include "gemm_template.h"

#endif
