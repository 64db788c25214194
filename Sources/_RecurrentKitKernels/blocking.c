// GEMM blocking per CPU: the analytical model that turns a cache description into kc, mc and nc, the table of the
// blocking in use (per level and element type) and the testing hook that replaces it.
//
// The driver (gemm_driver.h) runs BLIS's loops: jc over NC columns of B, pc over KC rows of the depth (pack a KC x NC
// block of B), ic over MC rows of A (pack an MC x KC block of A), jr over NR columns, ir over MR rows, each step one
// MR x NR micro-kernel call that keeps its tile of C in registers for KC multiply-adds. The B micro-panel (KC x NR)
// is reused across the ir loop; the packed A block across the whole jr loop.
//
// Why not Low et al.'s L1 rule. "Analytical Modeling Is Enough for High-Performance BLIS" (TOMS 2016) sizes KC so
// that the reused micro-panel stays in L1 beside the streamed one: C_Ar = floor((W_L1 - 1) / (1 + NR / MR)) ways for
// A, KC = C_Ar * N_L1 * C_L1 / (MR * S). For our 8 x 32 float tile on a 32 KiB 8-way L1 (64 sets of 64 bytes) that is
// floor(7 / 5) = 1 way, KC = 64 * 64 / (8 * 4) = 128; on a 48 KiB 12-way L1 (Ice Lake, Zen 5), floor(11 / 5) = 2,
// KC = 256. On Zen 4 KC 128 runs 6-21% and KC 256 2-8% slower than KC 512 (five training shapes, one thread). The
// kernel needs little from L2 per multiply-add: per k step MR + NR elements, 160 bytes, for 16 AVX-512 FMAs that take
// 16 cycles on Zen 4, 10 bytes per cycle, a fraction of what an L2 delivers; so the B micro-panel may stream from L2,
// while each KC block costs a pass over C (the tile loaded and stored once per micro-kernel call, plus the call's start
// and end). Longer K blocks win as long as the blocks the loops reuse stay in L2. So the model sizes KC and MC from the
// L2 and NC from the L3, in bytes (S = 4 or 8, MR x NR the level's tile):
//
//   L2 = the L2 per core (its size / cores sharing it; cores = logical CPUs sharing / those sharing the L1d),
//   half = L2 / 2: the packed A block and two B micro-panels (the one in use and the next, being fetched); the other
//          half holds the C tiles, the B block streaming in from L3 and the slack of a set-associative L2.
//   KC = the largest power of two in [64, KC_kernel] with S * KC * (128 + 2 * NR) <= half: an A block of at least
//        128 rows (every packed B micro-panel serves 16 or more micro-tiles) beside the two B micro-panels.
//        KC_kernel, the level's compiled KC (512 float / 256 double at AVX-512 and AVX2, 256 portable), bounds it, so
//        CPUs whose L2 allows more keep today's sums. (On Zen 4, KC 1024 measured 0-5% faster than 512 on products
//        with K >= 1024 and equal below; the half-L2 rule already excludes it there.)
//   MC = the largest multiple of MR with S * KC * (MC + 2 * NR) <= half (the A block fills the half), at most 256.
//        (On Zen 4, MC 128, 192 and 256 measured within 0.5% of each other.)
//   NC = the largest multiple of NR with S * KC * NC <= min(L3 per core / 2, 2 MiB), in [8 NR, 4096]: the packed
//        B block in half the core's share of L3, and within the 2 MiB per thread that TrainingOptions' memory estimate
//        counts for it (the float block before this model). Without an L3 (or unknown): the kernel's NC.
//   Unknown caches (no L2 size): the kernel's compiled blocking.
//
// Only KC changes sums (MC and NC partition rows and columns; every element of C sees the same operations), so
// results on two machines agree where the level and KC agree. What the model gives (float tile 8 x 32 at AVX-512,
// 6 x 16 at AVX2; double 8 x 16 and 6 x 8; BlockingTests checks these):
//
//   AMD EPYC Zen 4 (this machine: 32 KiB 8-way L1d, 1 MiB 8-way L2, 32 MiB L3 shared by the VM's 2 CPUs):
//     half = 512 KiB. Float AVX-512: 4 * KC * (128 + 64) <= 524288 gives KC <= 682, KC 512; MC = 524288 / 2048 - 64 =
//     192; NC = min(8 MiB, 2 MiB) / 2048 = 1024. Double AVX-512: 8 * KC * (128 + 32) <= 524288 gives KC <= 409, KC
//     256; MC = 524288 / 2048 - 32 = 224; NC 1024. AVX2: float KC <= 819, 512, MC 222; double KC <= 455, 256, MC 240.
//     KC as compiled before at every level: the same sums as before.
//   Intel Ice Lake server (48 KiB 12-way L1d, 1.25 MiB 20-way L2, 1.5 MiB of L3 per core): half = 640 KiB. Float
//     KC <= 853, 512; MC = 655360 / 2048 - 64 = 256; NC = 786432 / 2048 = 384. Double KC <= 512, 256 (the kernel's
//     bound), MC 256, NC 384. The same KC as Zen 4.
//   AMD Zen 5 (48 KiB 12-way L1d, 1 MiB 16-way L2, 32 MiB L3 per 8 cores): as Zen 4 (float 512 / 192 / 1024,
//     double 256 / 224 / 1024).
//   Intel Skylake client (32 KiB L1d, 256 KiB 4-way L2, 8 MiB L3 per 4 cores; AVX2): half = 128 KiB. Float AVX2:
//     4 * KC * (128 + 32) <= 131072 gives KC <= 204, KC 128 (was 512: its float sums change); MC = 131072 / 512 - 32
//     = 224, as a multiple of 6 222; NC = min(1 MiB, 2 MiB) / 512 = 2048. Double AVX2: 8 * KC * (128 + 16) gives KC
//     <= 113, 64 (was 256); MC = 131072 / 512 - 16 = 240; NC 2048.
//   Unknown caches: the compiled blocking, at AVX-512 float KC 512 MC 128 NC 1024 and double KC 256 MC 128 NC 512
//     (AVX2: 512 / 120 / 1024 and 256 / 96 / 512; portable: 256 / 64 / 1024 and 256 / 64 / 512).
#include "rk_internal.h"

#include <stdatomic.h>

#define RK_KC_MIN 64
#define RK_MC_ROWS 128        // rows of A the KC rule reserves
#define RK_MC_MAX 256
#define RK_NC_MAX 4096
#define RK_B_BLOCK_MAX ((int64_t)2 << 20)

static int64_t rk_per_core(rk_cache_level c, int64_t threads_per_core) {
    int64_t cores = c.shared_by > threads_per_core ? c.shared_by / threads_per_core : 1;
    return c.bytes / cores;
}

rk_block_sizes rk_blocking_model(const rk_cache_info *caches, rk_block_sizes kernel, int32_t element_bytes) {
    rk_block_sizes b = kernel;
    const int64_t S = element_bytes, mr = kernel.mr, nr = kernel.nr;
    if (!caches || caches->l2.bytes <= 0 || S <= 0 || mr <= 0 || nr <= 0 || kernel.kc <= 0) return b;
    const int64_t tpc = caches->l1d.shared_by > 0 ? caches->l1d.shared_by : 1;
    const int64_t half = rk_per_core(caches->l2, tpc) / 2;
    int64_t kc = kernel.kc < RK_KC_MIN ? kernel.kc : RK_KC_MIN;
    while (2 * kc <= kernel.kc && S * 2 * kc * (RK_MC_ROWS + 2 * nr) <= half) kc *= 2;
    int64_t mc = (half / (S * kc) - 2 * nr) / mr * mr;
    if (mc > RK_MC_MAX / mr * mr) mc = RK_MC_MAX / mr * mr;
    if (mc < mr) mc = mr;
    int64_t nc = kernel.nc;
    if (caches->l3.bytes > 0) {
        int64_t block = rk_per_core(caches->l3, tpc) / 2;
        if (block > RK_B_BLOCK_MAX) block = RK_B_BLOCK_MAX;
        nc = block / (S * kc) / nr * nr;
    }
    if (nc > RK_NC_MAX / nr * nr) nc = RK_NC_MAX / nr * nr;
    if (nc < 8 * nr) nc = 8 * nr;
    b.kc = (int32_t)kc;
    b.mc = (int32_t)mc;
    b.nc = (int32_t)nc;
    return b;
}

rk_block_sizes rk_kernel_blocking(int level, int element_bytes) {
    rk_block_sizes b;
    if (element_bytes == 8) {
        const rk_ops_d *o = rk_ops_d_for(level);
        b = (rk_block_sizes){o->mr, o->nr, o->kc, o->mc, o->nc};
    } else {
        const rk_ops_s *o = rk_ops_s_for(level);
        b = (rk_block_sizes){o->mr, o->nr, o->kc, o->mc, o->nc};
    }
    return b;
}

// The blocking in use per level and element type (float, double): 0 until first computed, else
// 1 << 63 | kc << 32 | mc << 16 | nc. One word, so a product always reads a consistent triple.
static _Atomic uint64_t g_blocking[3][2];

static uint64_t rk_blocking_word(rk_block_sizes b) {
    return (uint64_t)1 << 63 | (uint64_t)b.kc << 32 | (uint64_t)b.mc << 16 | (uint64_t)b.nc;
}

static int rk_clamp_level(int level) {
    int detected = rk_detected_level();
    return level < 0 ? 0 : (level > detected ? detected : level);
}

rk_block_sizes rk_blocking(int level, int element_bytes) {
    level = rk_clamp_level(level);
    rk_block_sizes b = rk_kernel_blocking(level, element_bytes);
    _Atomic uint64_t *slot = &g_blocking[level][element_bytes == 8];
    uint64_t w = atomic_load_explicit(slot, memory_order_relaxed);
    if (w == 0) {
        rk_cache_info caches = rk_detected_caches();
        uint64_t expected = 0;
        w = rk_blocking_word(rk_blocking_model(&caches, b, element_bytes));
        // Every thread computes the same word; the first store wins, later ones keep it (or a test's override).
        if (!atomic_compare_exchange_strong_explicit(slot, &expected, w, memory_order_relaxed, memory_order_relaxed))
            w = expected;
    }
    b.kc = (int32_t)((w >> 32) & 0xFFFF);
    b.mc = (int32_t)((w >> 16) & 0xFFFF);
    b.nc = (int32_t)(w & 0xFFFF);
    return b;
}

int rk_set_blocking(int level, int element_bytes, int kc, int mc, int nc) {
    if (element_bytes != 4 && element_bytes != 8) return -1;
    level = rk_clamp_level(level);
    rk_block_sizes b = rk_kernel_blocking(level, element_bytes);
    if (kc == 0 && mc == 0 && nc == 0) {
        rk_cache_info caches = rk_detected_caches();
        b = rk_blocking_model(&caches, b, element_bytes);
    } else {
        if (kc < 8 || kc > 4096 || mc < b.mr || mc > 4096 || mc % b.mr != 0 || nc < 2 * b.nr || nc > 8192 ||
            nc % b.nr != 0)
            return -1;
        b.kc = kc;
        b.mc = mc;
        b.nc = nc;
    }
    atomic_store_explicit(&g_blocking[level][element_bytes == 8], rk_blocking_word(b), memory_order_relaxed);
    return 0;
}

size_t rk_tls_floor(int element_bytes, int b_block) {
    size_t most = 0;
    for (int level = 0; level <= rk_detected_level(); level++) {
        rk_block_sizes b = rk_blocking(level, element_bytes);
        size_t n = b_block ? (size_t)b.kc * (size_t)b.nc : (size_t)b.mc * (size_t)b.kc;
        if (n > most) most = n;
    }
    return most;
}
