// Atomic writes that never replace what is not a regular file, and the checks of an output location before them.
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
            "cannot move the new file into place at \(path): \(errnoDescription()); the previous file, if any, "
                + "is unchanged"
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
                    "not enough free space in \(folder): \(Int(free / 1_000_000)) MB free, checkpoints need about "
                        + "\(requiredBytes / 1_000_000 + 1) MB"
                )
            }
        }
    }
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
        "output \(path) is \(what), not a regular file; an output only replaces a regular file (it is left as it is: "
            + "remove it or choose another path)"
    )
}

func fileTypeName(_ type: mode_t) -> String {
    switch type {
    case S_IFIFO: return "a FIFO or pipe"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFSOCK: return "a socket"
    case S_IFLNK: return "a symbolic link"
    default: return "not a regular file"
    }
}

/// The folder part of `path` ("." for a bare file name, "/" for a file at the root).
public func parentFolder(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let folder = String(path[..<slash])
    return folder.isEmpty ? "/" : folder
}

func errnoDescription() -> String { String(cString: strerror(errno)) }

// Message helpers shared by the IO files.
extension String {
    /// Newlines and other control characters as `\n`-style or `\u{..}` escapes (a message stays one line).
    var replacingControlCharacters: String {
        unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? $0.escaped(asASCII: true) : String($0) }.joined()
    }

    /// The string without leading and trailing spaces and newlines.
    var trimmingWhitespace: String {
        String(
            unicodeScalars.drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed().map(
                Character.init))
    }
}
