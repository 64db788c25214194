// The one place where RecurrentKit's Swift code differs by platform (`Scripts/check-portability.sh` enforces it): the
// C library module's name, and the few calls or fields whose spelling differs between Linux (Glibc, Musl) and Apple
// platforms (Darwin). Everything else uses POSIX names common to all of them.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Seconds from a monotonic clock (an arbitrary origin; for measuring durations).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Last modification time of a `stat` result, in seconds since the epoch.
func modificationSeconds(_ info: stat) -> Int {
    #if canImport(Darwin)
    return Int(info.st_mtimespec.tv_sec)
    #else
    return Int(info.st_mtim.tv_sec)
    #endif
}

/// Flushes a file's data to stable storage: `fsync`, or on Apple platforms `F_FULLFSYNC` (their `fsync` only reaches
/// the drive's cache), falling back to `fsync` where the file system refuses it. Returns 0 on success.
func flushToDisk(_ fd: Int32) -> Int32 {
    #if canImport(Darwin)
    if fcntl(fd, F_FULLFSYNC) == 0 { return 0 }
    #endif
    return fsync(fd)
}

/// The largest resident memory this process has used so far, in bytes (`getrusage`: Linux reports kilobytes, Apple
/// platforms bytes).
public func peakResidentBytes() -> Int {
    var usage = rusage()
    #if canImport(Darwin)
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss)
    #elseif canImport(Glibc)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_maxrss) * 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss) * 1024
    #endif
}

/// The soft address-space limit of this process (`ulimit -v`, `RLIMIT_AS`) in bytes, nil when unlimited or unknown.
func addressSpaceLimitBytes() -> Int? {
    var limit = rlimit()
    #if canImport(Glibc)
    let status = getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
    let unlimited = UInt64(rlim_t.max)  // RLIM_INFINITY, (rlim_t) -1, which Swift does not import
    #elseif canImport(Musl)
    let status = getrlimit(RLIMIT_AS, &limit)
    let unlimited = UInt64(rlim_t.max)
    #else
    let status = getrlimit(RLIMIT_AS, &limit)
    let unlimited = UInt64(RLIM_INFINITY)
    #endif
    let current = UInt64(limit.rlim_cur)
    guard status == 0, current != unlimited, current < UInt64(Int.max) else { return nil }
    return Int(current)
}
