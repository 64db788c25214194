import RecurrentKit
import _RecurrentKitMPI

/// A `GradientReducer` over `MPI_COMM_WORLD` with `MPI_Allreduce(MPI_IN_PLACE, ..., MPI_SUM)`.
///
/// The MPI library is loaded when the first reducer is made (not linked): Open MPI (`libmpi.so.40`) or MPICH
/// (`libmpi.so.12`), or the library the environment variable `RK_MPI_LIBRARY` names. Programs that never make an
/// `MPIReducer` need no MPI installed. Start the program with the launcher, e.g.
/// `mpirun -np 4 my-trainer`; each process makes one reducer, and MPI is finalized when the process exits normally.
/// A process that fails while the others may be waiting in a sum should call ``abortJob(code:)``.
///
/// All calls must come from one thread (MPI thread level FUNNELED).
public final class MPIReducer: GradientReducer {
    /// This process's rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The size of `MPI_COMM_WORLD`.
    public let processCount: Int
    /// The MPI library's own version line, e.g. "Open MPI v4.1.4".
    public let libraryVersion: String

    /// Loads and initialises MPI; throws a one-line error naming what to install when no MPI library is found.
    public init() throws {
        var message = [CChar](repeating: 0, count: 512)
        guard rk_mpi_open(&message, message.count) == 0 else {
            throw RecurrentKitError(
                "MPI: " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        rank = Int(rk_mpi_rank())
        processCount = Int(rk_mpi_size())
        var version = [CChar](repeating: 0, count: 256)
        rk_mpi_library_version(&version, version.count)
        libraryVersion = String(decoding: version.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(whereSeparator: \.isWhitespace).joined(separator: " ")  // MPICH: "MPICH Version:\t4.0.2"
    }

    /// Whether the environment says this process was started by an MPI launcher (mpirun, mpiexec, srun) with more
    /// than one process, and how many (1 when not launched so).
    public static var launchedProcessCount: Int {
        var size: Int32 = 1
        _ = rk_mpi_launched(&size)
        return Int(size)
    }

    /// Processes of this job on this host, when the launcher says (nil otherwise).
    public static var localProcessCount: Int? {
        let n = Int(rk_mpi_local_size())
        return n > 0 ? n : nil
    }

    /// Sums in place with `MPI_Allreduce` (pieces of 2^30 elements beyond that).
    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        let status = rk_mpi_allreduce_sum_float(values, Int64(count))
        guard status == 0 else { throw RecurrentKitError("MPI_Allreduce failed with error \(status)") }
    }

    /// Sums in place with `MPI_Allreduce` (pieces of 2^30 elements beyond that).
    public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {
        let status = rk_mpi_allreduce_sum_double(values, Int64(count))
        guard status == 0 else { throw RecurrentKitError("MPI_Allreduce failed with error \(status)") }
    }

    /// Ends every process of the job with `code` (`MPI_Abort`): for a failure on one process that the others cannot
    /// see, so none stays blocked in a collective call.
    public static func abortJob(code: Int32) -> Never {
        rk_mpi_abort(code)
        fatalError("MPI_Abort returned")
    }
}
