import ArgumentParser
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `--threads`, shared by every command that computes (`@OptionGroup`): validated and applied in one place.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for large matrix products and per-step element-wise work (1...256; results do not depend on it).")
    var threads: Int = 1

    /// Checks the value and sets the kernels' thread count.
    func apply() throws {
        guard threads >= 1, threads <= 256 else { throw RecurrentKitError.invalidArgument("threads", threads, "must be in 1...256") }
        Kernels.threadCount = threads
    }
}
