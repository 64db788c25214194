#ifndef RK_BLOCKING_H
#define RK_BLOCKING_H
#include <stdint.h>

/// One cache level as one core sees it.
typedef struct {
    int64_t bytes;     ///< capacity in bytes; 0 when unknown or absent
    int32_t ways;      ///< associativity; 0 when unknown
    int32_t line;      ///< line size in bytes; 0 when unknown
    int32_t shared_by; ///< logical CPUs sharing it; 0 when unknown (read as 1)
} rk_cache_level;

/// Where a cache description came from (bits of rk_cache_info.source).
enum {
    RK_CACHES_CPUID = 1,  ///< x86 CPUID leaf 4 (Intel) or 0x8000001D / 0x80000005-6 (AMD, Hygon)
    RK_CACHES_SYSFS = 2,  ///< Linux /sys/devices/system/cpu/cpu0/cache
    RK_CACHES_SYSCTL = 4  ///< Apple sysctl hw.*cachesize
};

/// The data caches the blocking model reads.
typedef struct {
    rk_cache_level l1d, l2, l3;
    int32_t source; ///< RK_CACHES_* bits; 0 when nothing was found (the model then gives the kernels' defaults)
} rk_cache_info;

/// GEMM blocking of one element type at one instruction-set level: micro-tile mr x nr (fixed per level) and cache
/// blocks kc (depth: the only one that changes sums), mc (rows of A per packed block, a multiple of mr) and nc (columns
/// of B per packed block, a multiple of nr).
typedef struct {
    int32_t mr, nr, kc, mc, nc;
} rk_block_sizes;

/// The analytical blocking model (blocking.c documents it): a pure function of the cache description, the kernel's
/// tile and the element size (4 or 8 bytes). `kernel` holds the level's tile and compiled blocking, which is the result
/// when the caches are unknown (caches->l2.bytes == 0) and whose kc is the largest kc the model gives.
rk_block_sizes rk_blocking_model(const rk_cache_info *caches, rk_block_sizes kernel, int32_t element_bytes);

/// This machine's caches: CPUID on x86, cross-checked with Linux sysfs (cpu0) where present; sysfs alone on other
/// Linux CPUs (aarch64); sysctl on Apple platforms. Detected once, never timed; all zero when nothing is known.
rk_cache_info rk_detected_caches(void);

/// The CPU's identity for reports, e.g. "AuthenticAMD family 25 model 17" (x86 CPUID) or "aarch64"; a static string.
const char *rk_cpu_name(void);

/// The level's tile and compiled blocking (the model's fallback) for element_bytes 4 (float) or 8 (double).
rk_block_sizes rk_kernel_blocking(int level, int element_bytes);

/// The blocking GEMM uses at `level` (capped at the detected level) for element_bytes 4 or 8: the model applied to
/// rk_detected_caches(), unless rk_set_blocking replaced it. The same in every thread; the thread count never enters.
rk_block_sizes rk_blocking(int level, int element_bytes);

/// Testing and benchmarking hook: replaces kc, mc and nc of the blocking at `level` (capped at the detected level) for
/// element_bytes 4 or 8; kc == mc == nc == 0 restores the model's. Checked: 8 <= kc <= 4096, mc a multiple of mr in
/// [mr, 4096], nc a multiple of nr in [2 nr, 8192]; returns 0, or -1 (nothing changed). Call it while no product runs.
/// Products after it use the new blocking; a B packed before (rk_sgemm_pack_b) with another kc stays correct but takes
/// the slow path, as after rk_set_level. Thread-local packing buffers grow to the new size once (an allocation).
int rk_set_blocking(int level, int element_bytes, int kc, int mc, int nc);

#endif
