// GEMM entry points: instruction-set level selection, path choice (packed micro-kernel,
// direct small-M kernel, dot-product kernel for A * B^T, rk_gemv_f32 for one row times B^T),
// threading and pre-packed B; the Float entry points (rk_sgemm and its packed forms) choose between the f32 driver
// and gemm_bf16.c's bf16 products by the calling thread's setting.
#include "rk_gemm_bf16.h"
#include "rk_internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

// Products below this many flops run on one thread.
#define RK_PARALLEL_MIN_FLOPS 1.0e6
// A * B^T with at most this many rows of C uses the dot-product kernel (no packing of B);
// beyond it, packing B per call pays off (measured on Zen 4: equal at M = 32, packed +10-30% at 64+).
#ifndef RK_DOT_MAX_M
#define RK_DOT_MAX_M 32
#endif
// A * B with at most this many rows of C reads B in place (no packing).
#ifndef RK_DIRECT_MAX_M
#define RK_DIRECT_MAX_M 4
#endif
// Packed path with few rows (<= MC): B panels packed at a time, right before use.
#ifndef RK_FUSED_PANELS
#define RK_FUSED_PANELS 2
#endif
#define RK_PACK_MAGIC 0x524B5042u // "RKPB" (+ element size)

static _Atomic int g_level = -1;
static _Atomic int g_threads = 1;

int rk_detected_level(void) {
    static _Atomic int detected = -1;
    int d = atomic_load_explicit(&detected, memory_order_relaxed);
    if (d >= 0) return d;
    d = RK_LEVEL_PORTABLE;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) d = RK_LEVEL_AVX2_FMA;
    if (d == RK_LEVEL_AVX2_FMA && __builtin_cpu_supports("avx512f")) d = RK_LEVEL_AVX512;
#endif
    atomic_store_explicit(&detected, d, memory_order_relaxed);
    return d;
}

int rk_active_level(void) {
    int l = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (l < 0) {
        l = rk_detected_level();
        atomic_store_explicit(&g_level, l, memory_order_relaxed);
    }
    return l;
}

int rk_set_level(int level) {
    int detected = rk_detected_level();
    int l = level < 0 ? 0 : (level > detected ? detected : level);
    atomic_store_explicit(&g_level, l, memory_order_relaxed);
    return l;
}

void rk_set_threads(int threads) {
    atomic_store_explicit(&g_threads, threads < 1 ? 1 : (threads > rk_max_threads() ? rk_max_threads() : threads),
                          memory_order_relaxed);
}

int rk_threads(void) { return atomic_load_explicit(&g_threads, memory_order_relaxed); }

void *rk_alloc(size_t bytes) {
    size_t align = 64;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= ((size_t)4 << 20)) align = (size_t)2 << 20;
#endif
    size_t rounded = (bytes + align - 1) / align * align;
    if (rounded == 0) rounded = align;
    void *p = NULL;
    if (posix_memalign(&p, align, rounded) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Transparent huge pages (when the system allows them via madvise) spare the TLB misses of
    // streaming a large packed weight: ~10% on a 16 MB weight on Zen 4. Failure is harmless.
    if (align > 64) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

void rk_free(void *p) { free(p); }

const rk_ops_s *rk_ops_s_for(int level) {
#if defined(__x86_64__)
    if (level >= RK_LEVEL_AVX512) return &rk_ops_s_avx512;
    if (level >= RK_LEVEL_AVX2_FMA) return &rk_ops_s_avx2;
#endif
    (void)level;
    return &rk_ops_s_portable;
}

const rk_ops_d *rk_ops_d_for(int level) {
#if defined(__x86_64__)
    if (level >= RK_LEVEL_AVX512) return &rk_ops_d_avx512;
    if (level >= RK_LEVEL_AVX2_FMA) return &rk_ops_d_avx2;
#endif
    (void)level;
    return &rk_ops_d_portable;
}

#define T float
#define OPS rk_ops_s
#define P(x) x##_s
#define OPS_FOR_LEVEL(l) rk_ops_s_for(l)
// The f32 driver; rk_sgemm, rk_sgemm_pack_b_size, rk_sgemm_pack_b and rk_sgemm_packed (at the end) call it unless
// the calling thread asked for bf16 products (rk_set_bf16_products).
#define PUBLIC_GEMM rk_sgemm_f32
#define PUBLIC_PACK_SIZE rk_sgemm_f32_pack_b_size
#define PUBLIC_PACK rk_sgemm_f32_pack_b
#define PUBLIC_PACKED rk_sgemm_f32_packed
#define GEMV_ROW rk_gemv_f32
#define PUBLIC_GEMM_PAIR rk_sgemm_f32_tn_pair
#include "gemm_driver.h"
#undef GEMV_ROW
#undef PUBLIC_GEMM_PAIR
#undef T
#undef OPS
#undef P
#undef OPS_FOR_LEVEL
#undef PUBLIC_GEMM
#undef PUBLIC_PACK_SIZE
#undef PUBLIC_PACK
#undef PUBLIC_PACKED

#define T double
#define OPS rk_ops_d
#define P(x) x##_d
#define OPS_FOR_LEVEL(l) rk_ops_d_for(l)
#define PUBLIC_GEMM rk_dgemm
#define PUBLIC_PACK_SIZE rk_dgemm_pack_b_size
#define PUBLIC_PACK rk_dgemm_pack_b
#define PUBLIC_PACKED rk_dgemm_packed
#include "gemm_driver.h"

// ---- The Float GEMM entry points: f32, or bf16 products when the calling thread asked for them ----

static _Thread_local int rk_tls_bf16_products;

void rk_set_bf16_products(int on) { rk_tls_bf16_products = on != 0; }
int rk_bf16_products(void) { return rk_tls_bf16_products; }

void rk_sgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
              const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc) {
    if (rk_tls_bf16_products) rk_sgemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else rk_sgemm_f32(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void rk_sgemm_tn_pair(ptrdiff_t M, ptrdiff_t K, const float *A, ptrdiff_t lda, ptrdiff_t N1, const float *B1,
                      ptrdiff_t ldb1, float *C1, ptrdiff_t ldc1, ptrdiff_t N2, const float *B2, ptrdiff_t ldb2, float *C2,
                      ptrdiff_t ldc2) {
    if (rk_tls_bf16_products) { // the bf16 products pack their own operands: two calls
        rk_sgemm_bf16(1, 0, M, N1, K, 1, A, lda, B1, ldb1, 1, C1, ldc1);
        rk_sgemm_bf16(1, 0, M, N2, K, 1, A, lda, B2, ldb2, 1, C2, ldc2);
    } else {
        rk_sgemm_f32_tn_pair(M, K, A, lda, N1, B1, ldb1, C1, ldc1, N2, B2, ldb2, C2, ldc2);
    }
}

// A bf16-packed buffer carries this tag after its panels (in the 64 spare bytes), so a buffer packed in one mode and
// used in the other stops the process instead of computing garbage.
static const uint64_t rk_bf16_packed_tag = 0x3631666250414B52ull; // "RKAPbf16"

size_t rk_sgemm_pack_b_size(ptrdiff_t K, ptrdiff_t N) {
    size_t f = rk_sgemm_f32_pack_b_size(K, N), b = rk_sgemm_bf16_pack_b_size(K, N);
    return f > b ? f : b; // either layout fits, whatever the mode when it is packed
}

void rk_sgemm_pack_b(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb, void *packed) {
    if (!rk_tls_bf16_products) {
        rk_sgemm_f32_pack_b(transB, K, N, B, ldb, packed);
        return;
    }
    rk_sgemm_bf16_pack_b(transB, K, N, B, ldb, packed);
    memcpy((char *)packed + rk_sgemm_bf16_pack_b_size(K, N) - 64, &rk_bf16_packed_tag, 8);
}

void rk_sgemm_packed(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
                     const void *packedB, float beta, float *C, ptrdiff_t ldc) {
    if (!rk_tls_bf16_products) {
        rk_sgemm_f32_packed(transA, M, N, K, alpha, A, lda, packedB, beta, C, ldc);
        return;
    }
    uint64_t tag = 0;
    memcpy(&tag, (const char *)packedB + rk_sgemm_bf16_pack_b_size(K, N) - 64, 8);
    if (tag != rk_bf16_packed_tag) {
        fprintf(stderr, "_RecurrentKitKernels: rk_sgemm_packed with bf16 products on a buffer not packed with them\n");
        abort();
    }
    rk_sgemm_bf16_packed(transA, M, N, K, alpha, A, lda, packedB, beta, C, ldc);
}
