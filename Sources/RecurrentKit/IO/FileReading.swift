// Reading a whole input file, bounded and checked before anything is allocated.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file; a clear error when it is missing, a folder, unreadable, or larger than `maximumBytes`.
///
/// The file is opened with `O_NONBLOCK`, so a FIFO with no writer never blocks, and checked with `fstat` on the open
/// descriptor. Unless `allowStreams` is true, only regular files are accepted (a checkpoint must be one): a FIFO,
/// socket or device such as `/dev/zero` is refused at once. With `allowStreams` (a corpus may come from a pipe, e.g.
/// `--corpus <(zcat big.txt.gz)`), pipes and character devices are read to their end, and an endless one stops at
/// `maximumBytes` with an error; a named FIFO is opened as `cat` opens it, waiting for its writer.
/// - Parameters:
///   - path: the file.
///   - what: how messages name it ("checkpoint", "text file").
///   - maximumBytes: the most bytes accepted (default 16 GiB).
///   - allowStreams: accept FIFOs, pipes and character devices.
/// - Returns: the bytes.
public func readFileBytes(
    _ path: String, what: String = "file", maximumBytes: Int = 16 << 30, allowStreams: Bool = false
) throws -> [UInt8] {
    // A FIFO the caller accepts is opened as `cat` opens it: once, blocking until its writer comes. (Opening it
    // without blocking, then again to wait, lost a writer that came at the first open and was gone by the second,
    // which then waited for ever.) Anything else is opened with O_NONBLOCK, so that a FIFO never blocks otherwise.
    var named = stat()
    let fifo = allowStreams && stat(path, &named) == 0 && (named.st_mode & S_IFMT) == S_IFIFO
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (fifo ? 0 : O_NONBLOCK))
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
        // Streams are read with blocking reads (the writer may be slower than we are).
        let current = fcntl(fd, F_GETFL)
        if current >= 0 { _ = fcntl(fd, F_SETFL, current & ~O_NONBLOCK) }
    }
    let declared = Int(info.st_size)
    if regular && declared > maximumBytes {
        throw RecurrentKitError("\(what) \(path) is \(declared) bytes, more than the \(maximumBytes) bytes accepted")
    }
    // A large file is read into memory whole: checked first, as everything large is (a stream cannot be).
    if regular && declared > 1 << 20 { try checkMemory(declared, for: "reading \(what) \(path) (\(declared) bytes)") }
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
                "\(what) \(path) is longer than the \(maximumBytes) bytes accepted (an endless stream such as "
                    + "/dev/zero?)"
            )
        }
        result.append(contentsOf: chunk[0..<n])
    }
    return result
}
