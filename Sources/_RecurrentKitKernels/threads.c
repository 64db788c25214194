// Persistent fork-join worker pool for the GEMM kernels.
//
// Workers are created lazily (threads - 1 of them) and kept for the life of the process.
// A job is split into chunks that the caller and the workers claim dynamically, so the caller
// never waits for a worker that is slow to wake up (waking a sleeping vCPU took ~300 us on the
// test VM): it simply runs the remaining chunks itself. After a job a worker spins for a short
// while (RK_SPIN_NS) waiting for the next one, so back-to-back calls (one per RNN time step) do
// not pay for a futex wake-up; then it sleeps on a condition variable.
//
// Which thread runs a chunk never changes the arithmetic, so results do not depend on timing.
#include "rk_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define RK_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define RK_PAUSE() __asm__ __volatile__("yield")
#else
#define RK_PAUSE() ((void)0)
#endif

#define RK_MAX_WORKERS 63
#define RK_SPIN_NS 200000LL // 200 us

static pthread_mutex_t g_job_lock = PTHREAD_MUTEX_INITIALIZER; // one job at a time
static pthread_mutex_t g_sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_sleep_cond = PTHREAD_COND_INITIALIZER;

static int g_nworkers; // guarded by g_job_lock
// Job state in one word: generation (high 32 bits), chunk count (bits 16..31) and next unclaimed
// chunk (low 16 bits). A chunk is claimed with a compare-and-swap that still sees the job's
// generation and a free chunk, so a worker that wakes up late never touches a finished job, and
// g_fn / g_ctx are only read while a claimed chunk keeps the job alive.
static _Atomic uint64_t g_state;
static _Atomic int g_done; // chunks finished in the current job
static _Atomic int g_sleepers;
static rk_task_fn g_fn;
static void *g_ctx;

static long long rk_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline uint32_t rk_gen(uint64_t s) { return (uint32_t)(s >> 32); }

// Claims and runs chunks of generation `gen` until none is left.
static void rk_run_chunks(uint32_t gen) {
    uint64_t s = atomic_load_explicit(&g_state, memory_order_acquire);
    for (;;) {
        uint32_t next = (uint32_t)(s & 0xFFFFu), count = (uint32_t)((s >> 16) & 0xFFFFu);
        if (rk_gen(s) != gen || next >= count) return;
        if (atomic_compare_exchange_weak_explicit(&g_state, &s, s + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            g_fn(g_ctx, (int)next, (int)count);
            atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
            s = atomic_load_explicit(&g_state, memory_order_acquire);
        }
    }
}

static void *rk_worker(void *arg) {
    uint32_t seen = (uint32_t)(uintptr_t)arg; // generation current at creation
    for (;;) {
        // Spin first, then sleep.
        long long start = 0;
        unsigned spins = 0;
        while (rk_gen(atomic_load_explicit(&g_state, memory_order_acquire)) == seen) {
            RK_PAUSE();
            if ((++spins & 255u) == 0) {
                long long t = rk_now_ns();
                if (start == 0) start = t;
                else if (t - start > RK_SPIN_NS) break;
            }
        }
        if (rk_gen(atomic_load(&g_state)) == seen) {
            pthread_mutex_lock(&g_sleep_lock);
            atomic_fetch_add(&g_sleepers, 1);
            while (rk_gen(atomic_load(&g_state)) == seen)
                pthread_cond_wait(&g_sleep_cond, &g_sleep_lock);
            atomic_fetch_sub(&g_sleepers, 1);
            pthread_mutex_unlock(&g_sleep_lock);
        }
        seen = rk_gen(atomic_load_explicit(&g_state, memory_order_acquire));
        rk_run_chunks(seen);
    }
    return 0;
}

void rk_parallel(int nchunks, rk_task_fn fn, void *ctx) {
    if (nchunks > 0xFFFF) nchunks = 0xFFFF; // callers keep chunk counts small
    if (nchunks <= 1 || pthread_mutex_trylock(&g_job_lock) != 0) {
        // Serial fallback: the same chunks, so the same results.
        for (int p = 0; p < nchunks; p++) fn(ctx, p, nchunks);
        return;
    }
    int want = rk_threads() - 1;
    if (want > RK_MAX_WORKERS) want = RK_MAX_WORKERS;
    while (g_nworkers < want) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        uintptr_t gen = rk_gen(atomic_load(&g_state));
        int rc = pthread_create(&th, &attr, rk_worker, (void *)gen);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        g_nworkers++;
    }
    g_fn = fn;
    g_ctx = ctx;
    atomic_store_explicit(&g_done, 0, memory_order_relaxed);
    uint32_t gen = rk_gen(atomic_load(&g_state)) + 1;
    // seq_cst: publishes the job, and is ordered before reading g_sleepers (a worker going to
    // sleep increments g_sleepers before re-checking the generation).
    atomic_store(&g_state, ((uint64_t)gen << 32) | ((uint64_t)nchunks << 16));
    if (atomic_load(&g_sleepers) > 0) {
        pthread_mutex_lock(&g_sleep_lock);
        pthread_cond_broadcast(&g_sleep_cond);
        pthread_mutex_unlock(&g_sleep_lock);
    }
    rk_run_chunks(gen);
    unsigned spins = 0;
    while (atomic_load_explicit(&g_done, memory_order_acquire) < nchunks) {
        RK_PAUSE();
        if (++spins > 4096) sched_yield();
    }
    pthread_mutex_unlock(&g_job_lock);
}
