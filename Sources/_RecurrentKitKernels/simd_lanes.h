// One element-wise loop, three widths: a file writes its loop once in the macros below and includes it after defining
// RK_LANES to 16 (AVX-512F), 8 (AVX) or 1 (plain C, every platform); each inclusion of this header first undefines
// what the previous one defined. Not a public header, and deliberately without an include guard.
//
//   LANES(name)   the function's name at this width (name_16, name_8, name_1)
//   LANES_TARGET  its target attribute          VF         the vector type (float at width 1)
//   VL            lanes per vector              VLOAD(p), VSTORE(p, v), VSET1(x)
//   VADD VSUB VMUL VDIV (a, b), VSQRT(a)        IEEE operations, each rounded on its own as the scalar ones are
//
// A loop runs `for (; j + VL <= n; j += VL)` and returns the j it reached, so the caller runs the widths in turn
// (16, then 8, then 1) and every element sees the same operations at any width: with contraction off
// (`#pragma STDC FP_CONTRACT OFF` in the including file) each lane computes the scalar loop's bits.

#undef LANES
#undef LANES_TARGET
#undef VF
#undef VL
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VSQRT

#define LANES_CAT_(name, n) name##_##n
#define LANES_CAT(name, n) LANES_CAT_(name, n)
#define LANES(name) LANES_CAT(name, RK_LANES)

#if RK_LANES == 16
#include <immintrin.h>
#define LANES_TARGET __attribute__((target("avx512f")))
#define VF __m512
#define VL 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VDIV(a, b) _mm512_div_ps((a), (b))
#define VSQRT(a) _mm512_sqrt_ps(a)
#elif RK_LANES == 8
#include <immintrin.h>
#define LANES_TARGET __attribute__((target("avx")))
#define VF __m256
#define VL 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VDIV(a, b) _mm256_div_ps((a), (b))
#define VSQRT(a) _mm256_sqrt_ps(a)
#elif RK_LANES == 1
#include <math.h>
#define LANES_TARGET
#define VF float
#define VL 1
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) (x)
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VSQRT(a) sqrtf(a)
#else
#error "RK_LANES must be 16, 8 or 1"
#endif

// Runs LANES-width function `fn` (fn_16, fn_8, fn_1, each taking the start index first and returning where it stopped)
// at every width the active level allows, widest first; `level` is rk_active_level().
#if defined(__x86_64__)
#define RK_EACH_WIDTH(level, fn, ...)                                                                                   \
    do {                                                                                                               \
        ptrdiff_t each_j_ = 0;                                                                                         \
        if ((level) >= RK_LEVEL_AVX512) each_j_ = fn##_16(each_j_, __VA_ARGS__);                                       \
        if ((level) >= RK_LEVEL_AVX2_FMA) each_j_ = fn##_8(each_j_, __VA_ARGS__);                                      \
        (void)fn##_1(each_j_, __VA_ARGS__);                                                                            \
    } while (0)
#else
#define RK_EACH_WIDTH(level, fn, ...) ((void)(level), (void)fn##_1(0, __VA_ARGS__))
#endif
