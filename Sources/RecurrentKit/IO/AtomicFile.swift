#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `bytes` to `path` so that a reader sees either the old file or the complete new one, never a mix:
/// a temporary file in the same folder, written, flushed to disk (fsync), then renamed over `path`.
/// On any failure the temporary file is removed and the old file at `path` is left untouched.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let folder = parentFolder(of: path)
    let name = path.split(separator: "/").last.map(String.init) ?? path
    let temporary = (folder == "." && !path.hasPrefix("./") ? "" : folder + "/") + ".\(name).tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
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
    guard fsync(fd) == 0 else {
        let reason = errnoDescription()
        close(fd)
        throw RecurrentKitError("cannot flush \(path) to disk: \(reason); the previous file, if any, is unchanged")
    }
    close(fd)
    guard rename(temporary, path) == 0 else {
        throw RecurrentKitError("cannot move the new file into place at \(path): \(errnoDescription())")
    }
    ok = true
    // Make the rename itself durable.
    let dirFD = open(folder, O_RDONLY)
    if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    removeStaleTemporaries(of: name, in: folder)
}

/// Deletes `.<name>.tmp-<pid>` files left by writers that were killed (SIGKILL, power loss) before they could
/// clean up: only those whose process does not exist here and that nobody has written to for 10 minutes (a writer in
/// another PID namespace sharing the folder has its own PIDs; its live temporary is still being written).
func removeStaleTemporaries(of name: String, in folder: String) {
    guard let directory = opendir(folder) else { return }
    defer { closedir(directory) }
    let prefix = ".\(name).tmp-"
    var stale: [String] = []
    while let entry = readdir(directory) {
        let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard entryName.hasPrefix(prefix), let pid = Int32(entryName.dropFirst(prefix.count)), pid > 0, pid != getpid() else { continue }
        var info = stat()
        guard kill(pid, 0) != 0, errno == ESRCH, stat(folder + "/" + entryName, &info) == 0 else { continue }
        #if canImport(Glibc)
        let modified = info.st_mtim.tv_sec
        #else
        let modified = info.st_mtimespec.tv_sec
        #endif
        if time(nil) - modified > 600 { stale.append(entryName) }
    }
    for entryName in stale { unlink(folder + "/" + entryName) }
}

/// Throws a clear error unless a file can be created in the folder that will hold `path` and, when `requiredBytes`
/// is given, the file system has that much free space (checked before long work starts).
public func checkWritableLocation(_ path: String, requiredBytes: Int = 0) throws {
    let folder = parentFolder(of: path)
    var info = stat()
    guard stat(folder, &info) == 0 else { throw RecurrentKitError("output folder \(folder) does not exist") }
    guard (info.st_mode & S_IFMT) == S_IFDIR else { throw RecurrentKitError("\(folder) is not a folder") }
    guard access(folder, W_OK) == 0 else { throw RecurrentKitError("output folder \(folder) is not writable") }
    if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { throw RecurrentKitError("\(path) is a folder, not a file") }
    if requiredBytes > 0 {
        var fs = statvfs()
        if statvfs(folder, &fs) == 0 {
            let free = Double(fs.f_bavail) * Double(fs.f_frsize)
            guard free >= Double(requiredBytes) else {
                throw RecurrentKitError("not enough free space in \(folder): \(Int(free / 1_000_000)) MB free, checkpoints need about \(requiredBytes / 1_000_000 + 1) MB")
            }
        }
    }
}

/// Reads a whole file; a clear error when it is missing, a folder, or unreadable.
public func readFileBytes(_ path: String, what: String = "file") throws -> [UInt8] {
    var info = stat()
    guard stat(path, &info) == 0 else { throw RecurrentKitError("\(what) \(path) does not exist") }
    guard (info.st_mode & S_IFMT) != S_IFDIR else { throw RecurrentKitError("\(what) \(path) is a folder, not a file") }
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw RecurrentKitError("cannot read \(what) \(path): \(errnoDescription())") }
    defer { close(fd) }
    var result = [UInt8]()
    result.reserveCapacity(Int(info.st_size))
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 { if errno == EINTR { continue }; throw RecurrentKitError("cannot read \(what) \(path): \(errnoDescription())") }
        if n == 0 { break }
        result.append(contentsOf: chunk[0..<n])
    }
    return result
}

/// The folder part of `path` ("." for a bare file name, "/" for a file at the root).
public func parentFolder(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let folder = String(path[..<slash])
    return folder.isEmpty ? "/" : folder
}

func errnoDescription() -> String { String(cString: strerror(errno)) }
