import _RecurrentKitKernels

/// The C kernels' process-wide settings: the thread pool and the instruction-set level.
///
/// One pool of worker threads serves the whole process. Large matrix products and per-step element-wise work are split
/// over it in chunks whose boundaries depend on the sizes only, so results are bit-identical for any thread count.
/// When two models compute at the same time (two Swift threads), the first caller of a product gets the pool and the
/// other runs its chunks on its own thread: both results are exact and bit-identical to a run alone, only the second
/// caller does not get the extra threads for that product (`KernelTests` checks concurrent callers).
public enum Kernels {
    /// Threads large products may use (>= 1; 1 by default). Setting it affects every model in the process.
    public static var threadCount: Int {
        get { Int(rk_threads()) }
        set { rk_set_threads(Int32(max(1, min(newValue, 256)))) }
    }

    /// Instruction-set levels of the kernels.
    public enum Level: Int, CaseIterable, Sendable {
        /// Plain C, any CPU.
        case portable = 0
        /// x86-64 with AVX2 and FMA.
        case avx2 = 1
        /// x86-64 with AVX-512F.
        case avx512 = 2

        /// "portable", "AVX2+FMA" or "AVX-512".
        public var name: String { ["portable", "AVX2+FMA", "AVX-512"][rawValue] }
    }

    /// The highest level this CPU supports.
    public static var detectedLevel: Level { Level(rawValue: Int(rk_detected_level())) ?? .portable }
    /// The level the kernels use now.
    public static var activeLevel: Level { Level(rawValue: Int(rk_active_level())) ?? .portable }

    /// Measured single-core FMA peak in GFLOP/s at `level` (independent FMA chains in registers, the best of five
    /// runs of 20 million FMAs each after a warm-up): the machine's ceiling that benchmarks report a share of.
    /// Levels above ``detectedLevel`` measure the portable loop.
    public static func fmaPeak(level: Level) -> Double {
        _ = rk_fma_peak_flops(Int32(level.rawValue), 1_000_000)
        var best = 0.0
        for _ in 0..<5 {
            let start = monotonicSeconds()
            let flops = rk_fma_peak_flops(Int32(level.rawValue), 20_000_000)
            best = max(best, flops / (monotonicSeconds() - start) / 1e9)
        }
        return best
    }
}
