// The platform shim of the blocking model: the data caches of this machine and the CPU's name. Every platform-specific
// symbol of cache detection is here, each behind its guard: x86 CPUID, Linux sysfs, Apple sysctl.
//
// Rules (detection never times anything, and reads the same values whichever core it runs on):
// - x86: CPUID leaf 4 (Intel) or 0x8000001D (AMD, Hygon with TOPOEXT; 0x80000005/6 without) gives each data cache's
//   size, ways, line and sharing.
// - Linux: sysfs describes cpu0's caches (index*/level, type, size, ways_of_associativity, coherency_line_size,
//   shared_cpu_list). It checks CPUID: a level whose size differs (a hybrid CPU, whose CPUID answers for the core this
//   thread ran on, or a hypervisor's partial CPUID) is taken from sysfs, and the sharing counts always are (CPUID
//   gives only an upper bound of the APIC IDs). Elsewhere (aarch64) sysfs alone.
// - Apple: sysctl hw.perflevel0.* (the performance cores) or hw.l1dcachesize / hw.l2cachesize / hw.l3cachesize.
// Nothing found: all zero, and the model keeps the kernels' compiled blocking.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include "rk_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RK_HAVE_CPUID 1
#endif
#if defined(__linux__)
#include <fcntl.h>
#include <unistd.h>
#endif
#if defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

static rk_cache_info g_caches;
static char g_cpu_name[64] = "unknown CPU";
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(RK_HAVE_CPUID)
// Stores a cache of CPUID leaf 4 / 0x8000001D layout (EAX type, level, sharing; EBX ways, partitions, line; ECX sets).
static void rk_cpuid_cache_leaf(rk_cache_info *c, unsigned leaf) {
    for (unsigned i = 0; i < 16; i++) {
        unsigned a, b, cx, d;
        __cpuid_count(leaf, i, a, b, cx, d);
        unsigned type = a & 31, level = (a >> 5) & 7;
        if (type == 0) break;
        if (type == 2) continue; // instruction cache
        rk_cache_level e;
        e.ways = (int32_t)(((b >> 22) & 0x3FF) + 1);
        e.line = (int32_t)((b & 0xFFF) + 1);
        e.bytes = (int64_t)e.ways * (int64_t)(((b >> 12) & 0x3FF) + 1) * e.line * ((int64_t)cx + 1);
        e.shared_by = (int32_t)(((a >> 14) & 0xFFF) + 1);
        if (level == 1) c->l1d = e;
        else if (level == 2) c->l2 = e;
        else if (level == 3) c->l3 = e;
    }
}

static void rk_cpuid_caches(rk_cache_info *c) {
    unsigned a, b, cx, d, max = __get_cpuid_max(0, NULL);
    if (max == 0) return;
    __cpuid(0, a, b, cx, d);
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &cx, 4);
    vendor[12] = 0;
    __cpuid(1, a, b, cx, d);
    unsigned family = (a >> 8) & 15, model = (a >> 4) & 15;
    if (family == 15) family += (a >> 20) & 255;
    if (family == 6 || family >= 15) model |= ((a >> 16) & 15) << 4;
    snprintf(g_cpu_name, sizeof g_cpu_name, "%s family %u model %u", vendor, family, model);
    int amd = strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0;
    unsigned ext = __get_cpuid_max(0x80000000u, NULL);
    if (amd && ext >= 0x8000001Du) {
        __cpuid(0x80000001u, a, b, cx, d);
        if (cx & (1u << 22)) rk_cpuid_cache_leaf(c, 0x8000001Du); // TOPOEXT
    }
    if (amd && c->l2.bytes == 0 && ext >= 0x80000006u) { // sizes and lines only (no TOPOEXT)
        __cpuid(0x80000005u, a, b, cx, d);
        c->l1d = (rk_cache_level){(int64_t)(cx >> 24) << 10, 0, (int32_t)(cx & 255), 0};
        __cpuid(0x80000006u, a, b, cx, d);
        c->l2 = (rk_cache_level){(int64_t)(cx >> 16) << 10, 0, (int32_t)(cx & 255), 0};
        c->l3 = (rk_cache_level){(int64_t)(d >> 18) << 19, 0, (int32_t)(d & 255), 0};
    }
    if (!amd && max >= 4) rk_cpuid_cache_leaf(c, 4);
    if (c->l2.bytes > 0) c->source |= RK_CACHES_CPUID;
}
#endif

#if defined(__linux__)
// The first line of a small sysfs file into buf (NUL-terminated, newline removed); 0 on failure. open/read: no heap.
static int rk_read_line(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return 1;
}

static long long rk_read_number(const char *path) {
    char buf[64];
    if (!rk_read_line(path, buf, sizeof buf)) return 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end == 'K') v <<= 10;
    else if (*end == 'M') v <<= 20;
    return v > 0 ? v : 0;
}

// CPUs in a list such as "0-3,8,10-11".
static int rk_count_cpus(const char *list) {
    int count = 0;
    const char *p = list;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p) break;
        if (*end == '-') b = strtol(end + 1, &end, 10);
        if (b >= a) count += (int)(b - a + 1);
        p = *end == ',' ? end + 1 : end;
        if (*end != ',') break;
    }
    return count;
}

static void rk_sysfs_caches(rk_cache_info *c) {
    rk_cache_info s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 16; i++) {
        char path[128], buf[512];
        int base = snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/", i);
#define RK_SYSFS(name) (snprintf(path + base, sizeof path - (size_t)base, "%s", name), path)
        if (!rk_read_line(RK_SYSFS("type"), buf, sizeof buf)) break;
        if (strcmp(buf, "Data") != 0 && strcmp(buf, "Unified") != 0) continue;
        long long level = rk_read_number(RK_SYSFS("level"));
        rk_cache_level e;
        e.bytes = rk_read_number(RK_SYSFS("size"));
        e.ways = (int32_t)rk_read_number(RK_SYSFS("ways_of_associativity"));
        e.line = (int32_t)rk_read_number(RK_SYSFS("coherency_line_size"));
        e.shared_by = rk_read_line(RK_SYSFS("shared_cpu_list"), buf, sizeof buf) ? rk_count_cpus(buf) : 0;
#undef RK_SYSFS
        if (level == 1) s.l1d = e;
        else if (level == 2) s.l2 = e;
        else if (level == 3) s.l3 = e;
    }
    if (s.l2.bytes <= 0 && s.l1d.bytes <= 0) return;
    rk_cache_level *mine[3] = {&c->l1d, &c->l2, &c->l3};
    const rk_cache_level *theirs[3] = {&s.l1d, &s.l2, &s.l3};
    for (int i = 0; i < 3; i++) {
        if (theirs[i]->bytes <= 0) continue;
        if (mine[i]->bytes != theirs[i]->bytes) {
            *mine[i] = *theirs[i];
            continue;
        }
        if (theirs[i]->shared_by > 0) mine[i]->shared_by = theirs[i]->shared_by;
        if (mine[i]->ways <= 0) mine[i]->ways = theirs[i]->ways;
    }
    c->source |= RK_CACHES_SYSFS;
}
#endif

#if defined(__APPLE__)
static int64_t rk_sysctl(const char *name, const char *fallback) {
    int64_t v = 0;
    size_t size = sizeof v;
    if (sysctlbyname(name, &v, &size, NULL, 0) == 0 && v > 0) return v;
    v = 0;
    size = sizeof v;
    if (fallback && sysctlbyname(fallback, &v, &size, NULL, 0) == 0 && v > 0) return v;
    return 0;
}

static void rk_sysctl_caches(rk_cache_info *c) {
    int64_t line = rk_sysctl("hw.cachelinesize", NULL);
    rk_cache_info s;
    memset(&s, 0, sizeof s);
    s.l1d = (rk_cache_level){rk_sysctl("hw.perflevel0.l1dcachesize", "hw.l1dcachesize"), 0, (int32_t)line, 1};
    s.l2 = (rk_cache_level){rk_sysctl("hw.perflevel0.l2cachesize", "hw.l2cachesize"), 0, (int32_t)line,
                            (int32_t)rk_sysctl("hw.perflevel0.cpusperl2", NULL)};
    s.l3 = (rk_cache_level){rk_sysctl("hw.l3cachesize", NULL), 0, (int32_t)line, 0};
    if (s.l2.bytes <= 0) return;
    s.source = c->source | RK_CACHES_SYSCTL;
    if (c->l2.bytes <= 0) *c = s;
    else c->source = s.source;
#if !defined(RK_HAVE_CPUID)
    snprintf(g_cpu_name, sizeof g_cpu_name, "Apple arm64");
#endif
}
#endif

static void rk_detect_caches(void) {
    rk_cache_info c;
    memset(&c, 0, sizeof c);
#if defined(RK_HAVE_CPUID)
    rk_cpuid_caches(&c);
#elif defined(__aarch64__)
    snprintf(g_cpu_name, sizeof g_cpu_name, "aarch64");
#endif
#if defined(__linux__)
    rk_sysfs_caches(&c);
#endif
#if defined(__APPLE__)
    rk_sysctl_caches(&c);
#endif
    // Implausible values (a broken hypervisor's CPUID) count as unknown: the model then keeps the compiled blocking.
    if (c.l2.bytes < 16384 || c.l2.bytes > ((int64_t)1 << 36)) memset(&c, 0, sizeof c);
    g_caches = c;
}

rk_cache_info rk_detected_caches(void) {
    pthread_once(&g_once, rk_detect_caches);
    return g_caches;
}

const char *rk_cpu_name(void) {
    pthread_once(&g_once, rk_detect_caches);
    return g_cpu_name;
}
