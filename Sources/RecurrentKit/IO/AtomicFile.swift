#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `bytes` to `path` so that a reader sees either the old file or the complete new one, never a mix:
/// a temporary file in the same folder, written, flushed to disk (fsync), then renamed over `path`.
/// On any failure the temporary file is removed and the old file at `path` is left untouched.
///
/// An output only ever replaces a regular file: when `path` exists and is anything else (a symbolic link, even to a
/// regular file, a FIFO, a socket, a character or block device, a folder) the write is refused with one line naming
/// it, before anything is created, and the path is left exactly as it was. The check is an `lstat` (it never opens
/// `path`, so a FIFO cannot block it, and it does not follow a symbolic link); a missing `path` is created.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try refuseNonRegularOutput(path)
    let folder = parentFolder(of: path)
    let name = path.split(separator: "/").last.map(String.init) ?? path
    let temporary = (folder == "." && !path.hasPrefix("./") ? "" : folder + "/") + ".\(name).tmp-\(getpid())"
    // O_EXCL | O_NOFOLLOW: never write through a file or symbolic link someone placed at the temporary's name. A
    // leftover of an earlier process with this PID (or a planted link) is removed (the link, not its target) once.
    let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
    var fd = open(temporary, flags, 0o644)
    if fd < 0 && errno == EEXIST && unlink(temporary) == 0 { fd = open(temporary, flags, 0o644) }
    guard fd >= 0 else { throw RecurrentKitError("cannot write \(path): \(errnoDescription()) (folder \(folder))") }
    var ok = false
    defer {
        if !ok { unlink(temporary) }
    }
    var written = 0
    try bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = errnoDescription()
                close(fd)
                throw RecurrentKitError("cannot write \(path): \(reason); the previous file, if any, is unchanged")
            }
            written += n
        }
    }
    guard flushToDisk(fd) == 0 else {
        let reason = errnoDescription()
        close(fd)
        throw RecurrentKitError("cannot flush \(path) to disk: \(reason); the previous file, if any, is unchanged")
    }
    close(fd)
    // Checked again just before the rename: writing and flushing a large file takes a while, and something may have
    // been put at `path` meanwhile. What remains is the short window between this `lstat` and `rename`, and it cannot
    // make us write into anything: rename(2) replaces the directory entry `path` itself and never follows it (Linux
    // rename(2): "if newpath refers to a symbolic link, the link will be overwritten"; POSIX: the entry is removed).
    // A symbolic link put there in that window is replaced, its target untouched; a FIFO or device node loses that
    // name and is never opened or written. `path` itself is never opened, so nothing is ever written through it.
    try refuseNonRegularOutput(path)
    guard rename(temporary, path) == 0 else {
        throw RecurrentKitError(
            "cannot move the new file into place at \(path): \(errnoDescription()); the previous file, if any, is unchanged"
        )
    }
    ok = true
    // Make the rename itself durable.
    let dirFD = open(folder, O_RDONLY)
    if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    removeStaleTemporaries(of: name, in: folder)
}

/// Deletes `.<name>.tmp-<pid>` files left by writers that were killed (SIGKILL, power loss) before they could
/// clean up: only those whose process does not exist here and that nobody has written to for `minimumAge` seconds
/// (10 minutes by default: a writer in another PID namespace sharing the folder has its own PIDs, and its live
/// temporary is still being written). A process holding the folder's ``OutputFolderLock`` passes 0: no other
/// trainer can be writing there.
func removeStaleTemporaries(of name: String, in folder: String, minimumAge: Int = 600) {
    guard let directory = opendir(folder) else { return }
    defer { closedir(directory) }
    let prefix = ".\(name).tmp-"
    var stale: [String] = []
    while let entry = readdir(directory) {
        let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard entryName.hasPrefix(prefix), let pid = Int32(entryName.dropFirst(prefix.count)), pid > 0, pid != getpid()
        else { continue }
        var info = stat()
        guard kill(pid, 0) != 0, errno == ESRCH, stat(folder + "/" + entryName, &info) == 0 else { continue }
        if Int(time(nil)) - modificationSeconds(info) >= minimumAge { stale.append(entryName) }
    }
    for entryName in stale { unlink(folder + "/" + entryName) }
}

/// Throws a clear error unless a file can be created in the folder that will hold `path`, `path` is missing or a
/// regular file (as ``writeFileAtomically(_:to:)`` requires) and, when `requiredBytes` is given, the file system has
/// that much free space (checked before long work starts).
public func checkWritableLocation(_ path: String, requiredBytes: Int = 0) throws {
    let folder = parentFolder(of: path)
    var info = stat()
    guard stat(folder, &info) == 0 else { throw RecurrentKitError("output folder \(folder) does not exist") }
    guard (info.st_mode & S_IFMT) == S_IFDIR else { throw RecurrentKitError("\(folder) is not a folder") }
    guard access(folder, W_OK) == 0 else { throw RecurrentKitError("output folder \(folder) is not writable") }
    try refuseNonRegularOutput(path)
    if requiredBytes > 0 {
        var fs = statvfs()
        if statvfs(folder, &fs) == 0 {
            let free = Double(fs.f_bavail) * Double(fs.f_frsize)
            guard free >= Double(requiredBytes) else {
                throw RecurrentKitError(
                    "not enough free space in \(folder): \(Int(free / 1_000_000)) MB free, checkpoints need about \(requiredBytes / 1_000_000 + 1) MB"
                )
            }
        }
    }
}

/// Reads a whole file; a clear error when it is missing, a folder, unreadable, or larger than `maximumBytes`.
///
/// The file is opened with `O_NONBLOCK`, so a FIFO with no writer never blocks, and checked with `fstat` on the open
/// descriptor. Unless `allowStreams` is true, only regular files are accepted (a checkpoint must be one): a FIFO,
/// socket or device such as `/dev/zero` is refused at once. With `allowStreams` (a corpus may come from a pipe, e.g.
/// `--corpus <(zcat big.txt.gz)`), pipes and character devices are read to their end, and an endless one stops at
/// `maximumBytes` with an error.
/// - Parameters:
///   - path: the file.
///   - what: how messages name it ("checkpoint", "text file").
///   - maximumBytes: the most bytes accepted (default 16 GiB).
///   - allowStreams: accept FIFOs, pipes and character devices.
/// - Returns: the bytes.
public func readFileBytes(
    _ path: String, what: String = "file", maximumBytes: Int = 16 << 30, allowStreams: Bool = false
) throws -> [UInt8] {
    var fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
    guard fd >= 0 else {
        if errno == ENOENT { throw RecurrentKitError("\(what) not found: \(path) does not exist") }
        throw RecurrentKitError("cannot read \(what) \(path): \(errnoDescription())")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw RecurrentKitError("cannot read \(what) \(path): \(errnoDescription())") }
    let type = info.st_mode & S_IFMT
    if type == S_IFDIR { throw RecurrentKitError("\(what) \(path) is a directory (a folder), not a file") }
    let regular = type == S_IFREG
    if !regular {
        guard allowStreams, type == S_IFIFO || type == S_IFCHR || type == S_IFSOCK else {
            throw RecurrentKitError(
                "\(what) \(path) is not a regular file (\(fileTypeName(type))); give the path of a file")
        }
        if type == S_IFIFO {
            // A named FIFO is read like `cat` reads it: opened again without O_NONBLOCK, which waits for its writer
            // (without one, a non-blocking read would see end-of-file at once).
            let blocking = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
            guard blocking >= 0 else { throw RecurrentKitError("cannot read \(what) \(path): \(errnoDescription())") }
            close(fd)
            fd = blocking
        } else {
            // Other streams are read with blocking reads (the writer may be slower than we are).
            let current = fcntl(fd, F_GETFL)
            if current >= 0 { _ = fcntl(fd, F_SETFL, current & ~O_NONBLOCK) }
        }
    }
    let declared = Int(info.st_size)
    if regular && declared > maximumBytes {
        throw RecurrentKitError("\(what) \(path) is \(declared) bytes, more than the \(maximumBytes) bytes accepted")
    }
    var result = [UInt8]()
    result.reserveCapacity(regular ? min(max(declared, 0), maximumBytes) : 1 << 16)
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw RecurrentKitError("cannot read \(what) \(path): \(errnoDescription())")
        }
        if n == 0 { break }
        guard result.count <= maximumBytes - n else {
            throw RecurrentKitError(
                "\(what) \(path) is longer than the \(maximumBytes) bytes accepted (an endless stream such as /dev/zero?)"
            )
        }
        result.append(contentsOf: chunk[0..<n])
    }
    return result
}

/// Throws, with one line naming `path` and what it is, when `path` exists and is not a regular file: the rule that an
/// output never replaces anything but a regular file. `lstat` only: the path is not opened (a FIFO cannot block) and a
/// symbolic link is not followed (a link to a regular file is refused too: replacing it would break the link, and
/// writing through it would write elsewhere). A missing path, or one that cannot be examined, passes: creating the
/// file then reports its own error.
func refuseNonRegularOutput(_ path: String) throws {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    let type = info.st_mode & S_IFMT
    guard type != S_IFREG else { return }
    var what: String
    switch type {
    case S_IFLNK: what = "a symbolic link"
    case S_IFDIR: what = "a folder"
    case S_IFIFO: what = "a FIFO"
    case S_IFSOCK: what = "a socket"
    case S_IFCHR: what = "a character device"
    case S_IFBLK: what = "a block device"
    default: what = "a special file"
    }
    if type == S_IFLNK {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = buffer.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, 4096) }
        if n >= 0 {
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            what += " (to \(target.replacingControlCharacters))"
        }
    }
    throw RecurrentKitError(
        "output \(path) is \(what), not a regular file; an output only replaces a regular file (it is left as it is: remove it or choose another path)"
    )
}

private func fileTypeName(_ type: mode_t) -> String {
    switch type {
    case S_IFIFO: return "a FIFO or pipe"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFSOCK: return "a socket"
    case S_IFLNK: return "a symbolic link"
    default: return "not a regular file"
    }
}

/// Exclusive use of an output folder by one writer, through `flock` on the folder itself (released when the lock is
/// deinitialized or the process ends, even by SIGKILL), so deleting any file in it cannot free it. The holder's pid is
/// written to `.rnn.lock` in the folder for the message a second process gets: an error naming the process that holds
/// it. While the lock is held, temporaries of dead processes in the folder are removed at once (no other writer can
/// own them).
public final class OutputFolderLock {
    /// The locked folder.
    public let folder: String
    private let fd: Int32

    /// Locks `folder` (which must exist) or throws naming the holder.
    /// - Parameters:
    ///   - folder: the output folder.
    ///   - names: file names (e.g. `model.safetensors`) whose leftover temporaries from dead processes are removed
    ///     once the lock is held.
    public init(folder: String, staleTemporariesOf names: [String] = []) throws {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw RecurrentKitError("cannot lock output folder \(folder): \(errnoDescription())") }
        let pidPath = folder + "/.rnn.lock"
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            close(fd)
            if busy {
                let holder =
                    (try? readFileBytes(pidPath, maximumBytes: 32)).map {
                        String(decoding: $0, as: UTF8.self).trimmingWhitespace
                    } ?? ""
                let pid = holder.allSatisfy(\.isNumber) && !holder.isEmpty ? " (pid \(holder))" : ""
                throw RecurrentKitError(
                    "output folder \(folder) is in use by another training run\(pid); wait for it to finish or choose another --output"
                )
            }
            throw RecurrentKitError("cannot lock output folder \(folder): \(errnoDescription())")
        }
        // The pid, for the message above (informational: the lock is the folder's).
        let pidFD = open(pidPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if pidFD >= 0 {
            var pid = Array("\(getpid())\n".utf8)
            _ = pid.withUnsafeMutableBytes { write(pidFD, $0.baseAddress!, $0.count) }
            close(pidFD)
        }
        self.fd = fd
        self.folder = folder
        for name in names { removeStaleTemporaries(of: name, in: folder, minimumAge: 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

private extension String {
    /// Newlines and other control characters as `\n`-style or `\u{..}` escapes (a message stays one line).
    var replacingControlCharacters: String {
        unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? $0.escaped(asASCII: true) : String($0) }.joined()
    }

    var trimmingWhitespace: String {
        String(
            unicodeScalars.drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed().map(
                Character.init))
    }
}

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
            "\(purpose) needs about \(megabytes(bytes)) of memory, but the address-space limit (ulimit -v) leaves only \(megabytes(space))"
        )
    }
}

func megabytes(_ bytes: Int) -> String {
    bytes >= 10 << 30 ? "\(bytes >> 30) GiB (\(bytes) bytes)" : "\(max(bytes >> 20, 1)) MiB (\(bytes) bytes)"
}

/// The folder part of `path` ("." for a bare file name, "/" for a file at the root).
public func parentFolder(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let folder = String(path[..<slash])
    return folder.isEmpty ? "/" : folder
}

func errnoDescription() -> String { String(cString: strerror(errno)) }
