// Optimizer updates in Float (rk_optimizer.h): Adam's element-wise loop sixteen or eight lanes at a time and over the
// kernel pool. Only IEEE operations rounded one by one (contraction off, the square root and the divisions exact), so
// every level and any split gives the Swift loop's bits (OptimizerKernelTests). Scalar Swift spent about 4 ns per
// parameter here (a square root and two divisions each), 1.6 % of a shakespeare-lstm update.
#include "_RecurrentKitKernels.h"

#include <math.h>

#pragma STDC FP_CONTRACT OFF

static void adam_scalar(float *p, const float *g, float *m, float *v, ptrdiff_t i, ptrdiff_t end,
                        const rk_adam_f32_args *a) {
    for (; i < end; i++) {
        float grad = g[i];
        if (a->decayMode == 2) p[i] = p[i] * a->decay;
        else if (a->decayMode == 1) grad = grad + a->wd * p[i];
        float mi = m[i], vi = v[i];
        mi = mi + (grad - mi) * a->b1;
        vi = vi * a->b2 + a->oneMinusB2 * grad * grad;
        m[i] = mi; v[i] = vi;
        float denominator = sqrtf(vi) / a->bc2 + a->eps;
        p[i] = p[i] - a->stepSize * (mi / denominator);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static ptrdiff_t adam_512(float *p, const float *g, float *m, float *v,
                                                             ptrdiff_t i, ptrdiff_t end, const rk_adam_f32_args *a) {
    const __m512 b1 = _mm512_set1_ps(a->b1), b2 = _mm512_set1_ps(a->b2), ob2 = _mm512_set1_ps(a->oneMinusB2);
    const __m512 bc2 = _mm512_set1_ps(a->bc2), eps = _mm512_set1_ps(a->eps), step = _mm512_set1_ps(a->stepSize);
    const __m512 wd = _mm512_set1_ps(a->wd), decay = _mm512_set1_ps(a->decay);
    for (; i + 16 <= end; i += 16) {
        __m512 grad = _mm512_loadu_ps(g + i), pi = _mm512_loadu_ps(p + i);
        if (a->decayMode == 2) pi = _mm512_mul_ps(pi, decay);
        else if (a->decayMode == 1) grad = _mm512_add_ps(grad, _mm512_mul_ps(wd, pi));
        __m512 mi = _mm512_loadu_ps(m + i), vi = _mm512_loadu_ps(v + i);
        mi = _mm512_add_ps(mi, _mm512_mul_ps(_mm512_sub_ps(grad, mi), b1));
        vi = _mm512_add_ps(_mm512_mul_ps(vi, b2), _mm512_mul_ps(_mm512_mul_ps(ob2, grad), grad));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 denominator = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        _mm512_storeu_ps(p + i, _mm512_sub_ps(pi, _mm512_mul_ps(step, _mm512_div_ps(mi, denominator))));
    }
    return i;
}

__attribute__((target("avx"))) static ptrdiff_t adam_256(float *p, const float *g, float *m, float *v, ptrdiff_t i,
                                                         ptrdiff_t end, const rk_adam_f32_args *a) {
    const __m256 b1 = _mm256_set1_ps(a->b1), b2 = _mm256_set1_ps(a->b2), ob2 = _mm256_set1_ps(a->oneMinusB2);
    const __m256 bc2 = _mm256_set1_ps(a->bc2), eps = _mm256_set1_ps(a->eps), step = _mm256_set1_ps(a->stepSize);
    const __m256 wd = _mm256_set1_ps(a->wd), decay = _mm256_set1_ps(a->decay);
    for (; i + 8 <= end; i += 8) {
        __m256 grad = _mm256_loadu_ps(g + i), pi = _mm256_loadu_ps(p + i);
        if (a->decayMode == 2) pi = _mm256_mul_ps(pi, decay);
        else if (a->decayMode == 1) grad = _mm256_add_ps(grad, _mm256_mul_ps(wd, pi));
        __m256 mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        mi = _mm256_add_ps(mi, _mm256_mul_ps(_mm256_sub_ps(grad, mi), b1));
        vi = _mm256_add_ps(_mm256_mul_ps(vi, b2), _mm256_mul_ps(_mm256_mul_ps(ob2, grad), grad));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denominator = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_mul_ps(step, _mm256_div_ps(mi, denominator))));
    }
    return i;
}
#endif

typedef struct {
    float *p, *m, *v;
    const float *g;
    ptrdiff_t n;
    const rk_adam_f32_args *args;
    int level;
} adam_job;

static void adam_range(const adam_job *j, ptrdiff_t begin, ptrdiff_t end) {
    ptrdiff_t i = begin;
#if defined(__x86_64__)
    if (j->level >= RK_LEVEL_AVX512) i = adam_512(j->p, j->g, j->m, j->v, i, end, j->args);
    else if (j->level >= RK_LEVEL_AVX2_FMA) i = adam_256(j->p, j->g, j->m, j->v, i, end, j->args);
#endif
    adam_scalar(j->p, j->g, j->m, j->v, i, end, j->args);
}

static void adam_part(void *ctx, int chunk, int nchunks) {
    const adam_job *j = (const adam_job *)ctx;
    ptrdiff_t blocks = (j->n + 15) / 16;
    ptrdiff_t begin = blocks * chunk / nchunks * 16, end = blocks * (chunk + 1) / nchunks * 16;
    if (end > j->n) end = j->n;
    if (begin < end) adam_range(j, begin, end);
}

// Below this many parameters one thread does the update (the pool's hand-off costs more than half of it).
#define RK_ADAM_SPLIT_MIN 65536

void rk_adam_f32(float *p, const float *g, float *m, float *v, ptrdiff_t n, const rk_adam_f32_args *args) {
    adam_job job = {p, m, v, g, n, args, rk_active_level()};
    if (n >= RK_ADAM_SPLIT_MIN && rk_threads() > 1) rk_parallel(2 * rk_threads(), adam_part, &job);
    else adam_range(&job, 0, n);
}
