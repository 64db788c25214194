import Foundation
import RecurrentKit
import RecurrentKitMPI

/// The MPI job this process belongs to, once `rnn train` has joined one (nil otherwise); `fail` ends the whole job.
nonisolated(unsafe) var mpiJob: MPIReducer? = nil

/// The job `rnn train` runs in: an MPI job when the launcher's environment (mpirun, mpiexec, srun) says there is
/// one with more than one process, else this process alone. MPI is loaded only then, so the `rnn` binary needs no
/// MPI library otherwise; a launch without a loadable library is a one-line error naming what to install.
func joinLaunchedJob() throws -> GradientReducer {
    guard MPIReducer.launchedProcessCount > 1 else { return SingleProcessReducer() }
    let launched = MPIReducer.launchedProcessCount
    let reducer = try MPIReducer()
    mpiJob = reducer
    guard reducer.processCount == launched else {
        // e.g. a binary loading MPICH started by Open MPI's mpirun: each process would train alone, all in one folder.
        throw RecurrentKitError(
            "the launcher started \(launched) processes but MPI (\(reducer.libraryVersion)) sees "
                + "\(reducer.processCount): use the mpirun of the MPI library that is loaded (RK_MPI_LIBRARY "
                + "selects it)"
        )
    }
    return reducer
}

/// A failure inside an MPI job: the line goes to stderr and `MPI_Abort` ends every process (none may stay blocked in
/// a sum). Rank 0 reports at once; the others wait 5 seconds first, so a failure every process meets (a bad option, a
/// diverged run) is printed once, by rank 0, whose abort ends them before they print (Open MPI took over a second).
func failJob(_ job: MPIReducer, _ line: String, code: Int32) -> Never {
    if job.rank != 0 { Thread.sleep(forTimeInterval: 5) }
    FileHandle.standardError.write(Data((job.rank == 0 ? line : "rank \(job.rank): " + line).utf8))
    MPIReducer.abortJob(code: code)
}
