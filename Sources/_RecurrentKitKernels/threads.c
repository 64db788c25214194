// Persistent fork-join worker pool for the GEMM kernels, and the default thread count.
//
// Workers are created lazily (threads - 1 of them) and kept for the life of the process.
// A job is split into chunks that the caller and the workers claim dynamically, so the caller
// never waits for a worker that is slow to wake up (waking a sleeping vCPU took ~300 us on the
// test VM): it simply runs the remaining chunks itself. After a job a worker spins for a short
// while (RK_SPIN_NS) waiting for the next one, so back-to-back calls (one per RNN time step) do
// not pay for a futex wake-up; then it sleeps on a condition variable. The caller, once no chunk
// is left to claim, spins as long for the chunks still running on workers, then sleeps on a
// condition variable that the worker finishing the last chunk signals: under load (more runnable
// threads than cores) a worker can be preempted in the middle of a chunk for a whole time slice,
// and a caller that kept polling (sched_yield) took the core from it and from everyone else.
//
// Under load a worker can also be preempted in the middle of a chunk, and the caller then waits for it a whole time
// slice (milliseconds for microseconds of work): a 2-thread run beside busy processes was 1.4x slower than a 1-thread
// one. So the caller measures each job: when it waited for workers longer than RK_PREEMPT_NS and longer than it
// worked, the jobs of the next RK_SERIAL_MIN_NS run on the caller alone (the workers go to sleep), doubling up to
// RK_SERIAL_MAX_NS while it happens again, halving again after twice its length of parallel jobs without it (a count
// of clean jobs would not do: jobs last microseconds, and beside one busy process the span never grew). On an idle
// machine a wait like that does not happen, and the window is short enough to cost little if it does.
//
// Which thread runs a chunk never changes the arithmetic, so results do not depend on timing.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE // sched_getaffinity
#endif
#include "rk_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define RK_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define RK_PAUSE() __asm__ __volatile__("yield")
#else
#define RK_PAUSE() ((void)0)
#endif

#define RK_MAX_WORKERS 63 // rk_set_threads clamps to 64 = the caller and 63 workers
#define RK_SPIN_NS 200000LL // 200 us
#define RK_PREEMPT_NS 1000000LL // a wait of 1 ms for a worker's chunk: it was preempted
#define RK_SERIAL_MIN_NS 20000000LL // then 20 ms of jobs on the caller alone,
#define RK_SERIAL_MAX_NS 1280000000LL // doubling up to 1.28 s,

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
// The caller's sleep once it has spun RK_SPIN_NS for the last chunks (g_caller_waiting: it sleeps or is about to).
static pthread_mutex_t g_done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_done_cond = PTHREAD_COND_INITIALIZER;
static _Atomic int g_caller_waiting;
static rk_task_fn g_fn;
static void *g_ctx;
// The serial windows (guarded by g_job_lock): jobs that start before g_serial_until run on the caller alone.
static long long g_serial_until, g_serial_span = RK_SERIAL_MIN_NS;
static long long g_last_change; // when the span last doubled or halved
static _Atomic long long g_serial_windows; // how many windows were opened (rk_pool_serial_windows)

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
            // seq_cst, like the caller's store of g_caller_waiting before it re-reads g_done: either the caller sees
            // this chunk done, or the worker finishing the last chunk sees the caller waiting and wakes it.
            if (atomic_fetch_add(&g_done, 1) + 1 == (int)count && atomic_load(&g_caller_waiting)) {
                pthread_mutex_lock(&g_done_lock); // (a late signal to the next job's caller is only spurious)
                pthread_cond_signal(&g_done_cond);
                pthread_mutex_unlock(&g_done_lock);
            }
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
    long long t0 = rk_now_ns();
    if (t0 < g_serial_until) {
        for (int p = 0; p < nchunks; p++) fn(ctx, p, nchunks);
        pthread_mutex_unlock(&g_job_lock);
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
    long long t1 = rk_now_ns(); // the caller's own share is done
    // Chunks still running on workers: spin for a while (they usually finish within microseconds), then sleep.
    long long start = 0;
    unsigned spins = 0;
    while (atomic_load_explicit(&g_done, memory_order_acquire) < nchunks) {
        RK_PAUSE();
        if ((++spins & 255u) == 0) {
            long long t = rk_now_ns();
            if (start == 0) start = t;
            else if (t - start > RK_SPIN_NS) break;
        }
    }
    if (atomic_load_explicit(&g_done, memory_order_acquire) < nchunks) {
        pthread_mutex_lock(&g_done_lock);
        atomic_store(&g_caller_waiting, 1);
        while (atomic_load(&g_done) < nchunks) pthread_cond_wait(&g_done_cond, &g_done_lock);
        atomic_store(&g_caller_waiting, 0);
        pthread_mutex_unlock(&g_done_lock);
    }
    long long t2 = start == 0 ? t1 : rk_now_ns(); // start == 0: the workers were done within 256 spins
    if (t2 - t1 > RK_PREEMPT_NS && t2 - t1 > t1 - t0) {
        g_serial_until = t2 + g_serial_span;
        if (g_serial_span < RK_SERIAL_MAX_NS) g_serial_span *= 2;
        g_last_change = g_serial_until;
        atomic_fetch_add_explicit(&g_serial_windows, 1, memory_order_relaxed);
    } else if (g_serial_span > RK_SERIAL_MIN_NS && t2 - g_last_change > 2 * g_serial_span) {
        g_serial_span /= 2;
        g_last_change = t2;
    }
    pthread_mutex_unlock(&g_job_lock);
}

long long rk_pool_serial_windows(void) { return atomic_load_explicit(&g_serial_windows, memory_order_relaxed); }

int rk_max_threads(void) { return RK_MAX_WORKERS + 1; }

// ---- Default thread count ----------------------------------------------------------------------------------------

// A positive decimal integer from the environment, or 0.
static int rk_env_int(const char *name) {
    const char *value = getenv(name);
    if (!value || !*value) return 0;
    char *end = NULL;
    long n = strtol(value, &end, 10);
    return (*end == 0 && n > 0 && n < INT_MAX) ? (int)n : 0;
}

int rk_local_ranks(void) {
    // The launchers' own variables (the same ones RecurrentKitMPI reads): Open MPI, MPICH/Hydra and Intel MPI, PMI.
    int n = rk_env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!n) n = rk_env_int("MPI_LOCALNRANKS");
    if (!n) n = rk_env_int("PMI_LOCAL_SIZE");
    return n > 0 ? n : 1;
}

#if defined(__linux__)
// Reads a small file (a /proc or /sys entry) into buf as a C string; returns its length, or -1. No heap allocation.
static int rk_read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0) { close(fd); return -1; }
        if (r == 0 || (len += (size_t)r) == cap - 1) break;
    }
    close(fd);
    buf[len] = 0;
    return (int)len;
}

// CPUs a quota of `quota` per `period` microseconds allows: rounded down, at least 1; INT_MAX without a quota.
static int rk_quota_cpus(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return INT_MAX;
    long long n = quota / period;
    return n < 1 ? 1 : (n > INT_MAX ? INT_MAX : (int)n);
}

// The tightest quota of the cgroup at `dir` (under the controller's mount `root`) and of its ancestors up to the
// mount: cgroup v2 cpu.max ("max 100000" or "200000 100000") or v1 cpu.cfs_quota_us / cpu.cfs_period_us (-1: none).
// Folders that do not exist (a cgroup path seen from outside a container's namespace) are skipped.
static int rk_cgroup_cpus(const char *root, const char *path, int v2) {
    char dir[512], file[600], text[128];
    int n = snprintf(dir, sizeof dir, "%s%s", root, path);
    if (n < 0 || (size_t)n >= sizeof dir) return INT_MAX;
    size_t rootlen = strlen(root);
    int best = INT_MAX;
    for (;;) {
        while (n > (int)rootlen && dir[n - 1] == '/') dir[--n] = 0; // no trailing '/'
        if (v2) {
            snprintf(file, sizeof file, "%s/cpu.max", dir);
            long long quota, period;
            if (rk_read_small(file, text, sizeof text) > 0 && sscanf(text, "%lld %lld", &quota, &period) == 2) {
                int c = rk_quota_cpus(quota, period); // "max ..." does not scan: no quota
                if (c < best) best = c;
            }
        } else {
            snprintf(file, sizeof file, "%s/cpu.cfs_quota_us", dir);
            long long quota, period;
            if (rk_read_small(file, text, sizeof text) > 0 && sscanf(text, "%lld", &quota) == 1) {
                snprintf(file, sizeof file, "%s/cpu.cfs_period_us", dir);
                if (rk_read_small(file, text, sizeof text) > 0 && sscanf(text, "%lld", &period) == 1) {
                    int c = rk_quota_cpus(quota, period);
                    if (c < best) best = c;
                }
            }
        }
        if (n <= (int)rootlen) return best;
        while (n > (int)rootlen && dir[n - 1] != '/') dir[--n] = 0; // up one level
    }
}

// CPUs allowed by the cgroup CPU quotas of this process (INT_MAX without one). The cgroup's path comes from
// /proc/self/cgroup ("0::/path" for v2, "N:cpu,cpuacct:/path" for the v1 cpu controller); the controllers are looked
// up where systemd, Docker, Kubernetes and LXC mount them (v2 at /sys/fs/cgroup or, hybrid, /sys/fs/cgroup/unified).
static int rk_cgroup_quota_cpus(void) {
    char text[4096];
    if (rk_read_small("/proc/self/cgroup", text, sizeof text) <= 0) return INT_MAX;
    int best = INT_MAX;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            *c2 = 0;
            const char *controllers = c1 + 1, *path = c2 + 1;
            if (*path == '/') {
                if (*controllers == 0) { // v2 unified hierarchy
                    int c = rk_cgroup_cpus("/sys/fs/cgroup", path, 1);
                    if (c < best) best = c;
                    c = rk_cgroup_cpus("/sys/fs/cgroup/unified", path, 1);
                    if (c < best) best = c;
                } else { // v1: the hierarchy that holds the cpu controller
                    int cpu = 0;
                    for (const char *p = controllers; *p;) {
                        size_t len = strcspn(p, ",");
                        if (len == 3 && strncmp(p, "cpu", 3) == 0) cpu = 1;
                        p += len + (p[len] == ',');
                    }
                    if (cpu) {
                        static const char *roots[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct",
                                                      "/sys/fs/cgroup/cpuacct,cpu"};
                        for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
                            int c = rk_cgroup_cpus(roots[i], path, 0);
                            if (c < best) best = c;
                        }
                    }
                }
            }
        }
        line = next;
    }
    return best;
}
#endif

int rk_usable_cpus(void) {
    int cpus = 0;
#if defined(__linux__)
    // The calling thread's affinity mask (taskset, numactl, a container's cpuset, Slurm's binding); up to 8192 CPUs
    // in a buffer on the stack.
    unsigned long mask[8192 / (8 * sizeof(unsigned long))];
    memset(mask, 0, sizeof mask);
    if (sched_getaffinity(0, sizeof mask, (cpu_set_t *)(void *)mask) == 0) {
        for (size_t i = 0; i < sizeof mask / sizeof mask[0]; i++) cpus += __builtin_popcountl(mask[i]);
    }
#endif
    if (cpus <= 0) { // other systems (macOS, iOS, the BSDs), or a larger machine: the CPUs online
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = online > 0 ? (online < INT_MAX ? (int)online : INT_MAX) : 1;
    }
#if defined(__linux__)
    int quota = rk_cgroup_quota_cpus();
    if (quota < cpus) cpus = quota;
#endif
    return cpus < 1 ? 1 : cpus;
}

int rk_default_threads(void) {
    int n = rk_usable_cpus() / rk_local_ranks();
    if (n < 1) n = 1;
    return n > rk_max_threads() ? rk_max_threads() : n;
}

// The kernels start at the default (gemm.c's g_threads starts at 1; this runs when the library is loaded, before
// main, so every product, from Swift or C, sees it).
__attribute__((constructor)) static void rk_threads_default_at_load(void) { rk_set_threads(rk_default_threads()); }
