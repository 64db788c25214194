// One writer per output folder: an flock on the folder itself.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
                    "output folder \(folder) is in use by another training run\(pid); wait for it to finish or choose "
                        + "another --output"
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
