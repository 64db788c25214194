// Portable reference GEMM. Fast kernels replace the inner loops per instruction-set level.
#include "CRecurrentKernels.h"

static int g_level = -1;
static int g_threads = 1;

int rk_detected_level(void) {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return RK_LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RK_LEVEL_AVX2_FMA;
#endif
    return RK_LEVEL_PORTABLE;
}

int rk_active_level(void) {
    if (g_level < 0) g_level = rk_detected_level();
    return g_level;
}

int rk_set_level(int level) {
    int detected = rk_detected_level();
    g_level = level < 0 ? 0 : (level > detected ? detected : level);
    return g_level;
}

void rk_set_threads(int threads) { g_threads = threads < 1 ? 1 : threads; }
int rk_threads(void) { return g_threads; }

#define DEFINE_PORTABLE_GEMM(NAME, T)                                                        \
void NAME(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,                     \
          T alpha, const T *A, ptrdiff_t lda, const T *B, ptrdiff_t ldb,                    \
          T beta, T *C, ptrdiff_t ldc) {                                                     \
    for (ptrdiff_t i = 0; i < M; i++) {                                                      \
        T *c = C + i * ldc;                                                                  \
        if (beta == 0) { for (ptrdiff_t j = 0; j < N; j++) c[j] = 0; }                       \
        else if (beta != 1) { for (ptrdiff_t j = 0; j < N; j++) c[j] *= beta; }              \
        for (ptrdiff_t k = 0; k < K; k++) {                                                  \
            T a = alpha * (transA ? A[k * lda + i] : A[i * lda + k]);                        \
            if (!transB) { const T *b = B + k * ldb; for (ptrdiff_t j = 0; j < N; j++) c[j] += a * b[j]; } \
            else { for (ptrdiff_t j = 0; j < N; j++) c[j] += a * B[j * ldb + k]; }           \
        }                                                                                    \
    }                                                                                        \
}

DEFINE_PORTABLE_GEMM(rk_sgemm, float)
DEFINE_PORTABLE_GEMM(rk_dgemm, double)
