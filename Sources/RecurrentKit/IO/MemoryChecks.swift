// Memory known before it is spent: what the process may still use (cgroup, MemAvailable) and map (RLIMIT_AS),
// checked before a large allocation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The memory this process may still use, in bytes: the smaller of the cgroup limit (minus current use, cgroup v2
/// `memory.max` / `memory.current` or v1 `memory.limit_in_bytes` / `memory.usage_in_bytes`) and `MemAvailable` of
/// `/proc/meminfo`; nil where neither can be read (non-Linux systems).
public func availableMemoryBytes() -> Int? {
    func number(_ path: String) -> Int? {
        guard let bytes = try? readFileBytes(path, maximumBytes: 4096) else { return nil }
        return Int(String(decoding: bytes, as: UTF8.self).trimmingWhitespace)
    }
    var best: Int? = nil
    if let meminfo = try? readFileBytes("/proc/meminfo", maximumBytes: 1 << 20) {
        for line in String(decoding: meminfo, as: UTF8.self).split(separator: "\n")
        where line.hasPrefix("MemAvailable:") {
            if let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }), kb < Int.max / 1024 {
                best = kb * 1024
            }
        }
    }
    for (limitPath, usagePath) in [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ] {
        if let limit = number(limitPath), limit > 0, limit < 1 << 60 {
            let free = max(limit - (number(usagePath) ?? 0), 0)
            best = min(best ?? free, free)
            break
        }
    }
    return best
}

/// The address space this process may still map, in bytes: the soft `RLIMIT_AS` (`ulimit -v`) minus what is mapped
/// now (`VmSize` of `/proc/self/status`); nil without such a limit (or where the mapped size cannot be read).
/// Allocations beyond it fail even when memory is free, so a run under `ulimit -v` is checked against both.
public func availableAddressSpaceBytes() -> Int? {
    guard let limit = addressSpaceLimitBytes() else { return nil }
    guard let status = try? readFileBytes("/proc/self/status", maximumBytes: 1 << 16) else { return nil }
    for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmSize:") {
        // "VmSize:\t  123456 kB"
        guard let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Int($0) }),
            kb < Int.max / 1024
        else { return nil }
        return max(limit - kb * 1024, 0)
    }
    return nil
}

/// Throws a clear error when `bytes` (what `purpose` needs) exceeds what ``availableMemoryBytes()`` reports (the
/// cgroup limit and `MemAvailable`) or what ``availableAddressSpaceBytes()`` leaves under `ulimit -v`, before anything
/// that large is allocated.
public func checkMemory(_ bytes: Int, for purpose: String) throws {
    if let available = availableMemoryBytes(), bytes > available {
        throw RecurrentKitError(
            "\(purpose) needs about \(megabytes(bytes)) of memory, but only \(megabytes(available)) are available")
    }
    if let space = availableAddressSpaceBytes(), bytes > space {
        throw RecurrentKitError(
            "\(purpose) needs about \(megabytes(bytes)) of memory, but the address-space limit (ulimit -v) leaves only "
                + "\(megabytes(space))"
        )
    }
}

func megabytes(_ bytes: Int) -> String {
    bytes >= 10 << 30 ? "\(bytes >> 30) GiB (\(bytes) bytes)" : "\(max(bytes >> 20, 1)) MiB (\(bytes) bytes)"
}
