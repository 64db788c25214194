import ArgumentParser
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitMPI
import RecurrentKitText

/// `--threads`, shared by every command that computes (`@OptionGroup`): validated and applied in one place.
struct ThreadOptions: ParsableArguments {
    @Option(
        name: .customLong("threads"),
        help: ArgumentHelp(
            "Threads for large matrix products and per-step element-wise work (1...\(Kernels.maxThreadCount); results "
                + "do not depend on it). "
                + "Default: the cores this process may use (affinity mask, cgroup CPU quota), divided among the "
                + "processes of an mpirun job on this host: "
                + "\(Kernels.defaultThreadCount) here.",
            valueName: "threads"))
    var requested: Int?

    /// The thread count: `--threads`, else ``Kernels/defaultThreadCount``.
    var threads: Int { requested ?? Kernels.defaultThreadCount }

    /// "2" for an explicit `--threads 2`, else the default and where it comes from: "2 (default: 2 usable cores)",
    /// "1 (default: 2 usable cores / 2 processes on this host)". For the lines that report what ran.
    var summary: String {
        if let requested { return String(requested) }
        let cores = Kernels.usableCoreCount
        let processes = MPIReducer.localProcessCount.map { $0 > 1 ? " / \($0) processes on this host" : "" } ?? ""
        return "\(threads) (default: \(cores) usable core\(cores == 1 ? "" : "s")\(processes))"
    }

    /// Checks the value and sets the kernels' thread count.
    func apply() throws {
        let limit = Kernels.maxThreadCount
        guard (1...limit).contains(threads) else {
            throw RecurrentKitError.invalidArgument(
                "threads", threads, "must be in 1...\(limit) (the most threads the kernels' pool runs)")
        }
        Kernels.threadCount = threads
    }
}
