// Optimizer updates in Float (rk_optimizer.h): Adam's element-wise loop (adam_lanes.h) sixteen or eight lanes at a
// time and over the kernel pool. Only IEEE operations rounded one by one (contraction off, the square root and the
// divisions exact), so every level and any split gives the Swift loop's bits (OptimizerKernelTests). Scalar Swift spent about 4 ns per
// parameter here (a square root and two divisions each), 1.6 % of a shakespeare-lstm update.
#include "_RecurrentKitKernels.h"

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#define RK_LANES 16
#include "adam_lanes.h"
#define RK_LANES 8
#include "adam_lanes.h"
#endif
#define RK_LANES 1
#include "adam_lanes.h"

typedef struct {
    float *p, *m, *v;
    const float *g;
    ptrdiff_t n;
    const rk_adam_f32_args *args;
    int level;
} adam_job;

static void adam_range(const adam_job *j, ptrdiff_t begin, ptrdiff_t end) {
    RK_EACH_WIDTH(j->level, adam, j->p + begin, j->g + begin, j->m + begin, j->v + begin, end - begin, j->args);
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
