import _RecurrentKitKernels

/// The C kernels' process-wide settings: the thread pool and the instruction-set level.
///
/// One pool of worker threads serves the whole process. Large matrix products and per-step element-wise work are split
/// over it in chunks whose boundaries depend on the sizes only, so results are bit-identical for any thread count.
/// When two models compute at the same time (two Swift threads), the first caller of a product gets the pool and the
/// other runs its chunks on its own thread: both results are exact and bit-identical to a run alone, only the second
/// caller does not get the extra threads for that product (`KernelTests` checks concurrent callers).
public enum Kernels {
    /// Mixed precision: the precision of the Float matrix products made on the calling thread. With `.bfloat16` every
    /// product (forward, backward, weight gradients, the recurrent step) rounds its two operands to bfloat16 (round to
    /// nearest even) and sums in Float; AVX512_BF16's `vdpbf16ps` computes them where the CPU has it, and the other
    /// levels compute the same bf16 products with Float multiply-adds. Weights, optimizer state, cell states and the
    /// element-wise math stay Float. Per thread (other threads' models are not affected); `.float32` by default. A
    /// weight packed for the recurrent step in one precision must be used in the same one (checked: the process stops).
    public static var productPrecision: ProductPrecision {
        get { rk_bf16_products() != 0 ? .bfloat16 : .float32 }
        set { rk_set_bf16_products(newValue == .bfloat16 ? 1 : 0) }
    }

    /// Runs `body` with ``productPrecision`` set to `precision` on this thread, then restores the previous value.
    public static func withProductPrecision<R>(_ precision: ProductPrecision, _ body: () throws -> R) rethrows -> R {
        let saved = productPrecision
        productPrecision = precision
        defer { productPrecision = saved }
        return try body()
    }

    /// Threads large products may use, in `1...maxThreadCount` (values outside are clamped to it); starts at
    /// ``defaultThreadCount``. Setting it affects every model in the process.
    public static var threadCount: Int {
        get { Int(rk_threads()) }
        set { rk_set_threads(Int32(max(1, min(newValue, maxThreadCount)))) }
    }

    /// The most threads the kernels' pool can run (the calling thread and its workers): 64. The upper end of
    /// ``threadCount`` and of `rnn --threads`.
    public static var maxThreadCount: Int { Int(rk_max_threads()) }

    /// The thread count the process starts with: the cores this process may use, shared among the processes of an MPI
    /// job on this host, in `1...maxThreadCount`. That is ``usableCoreCount`` divided by the processes the launcher
    /// says run on this host (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's and Intel MPI's `MPI_LOCALNRANKS`, or
    /// `PMI_LOCAL_SIZE`; 1 outside a job), rounded down and at least 1. So `mpirun -np 2` on 2 cores runs each process
    /// at 1 thread, and a container limited to 1.5 CPUs runs at 1. Read anew on each use (the affinity mask is the
    /// calling thread's).
    public static var defaultThreadCount: Int { Int(rk_default_threads()) }

    /// The cores this process may use: the CPUs in the calling thread's affinity mask (`taskset`, `numactl`, a
    /// container's cpuset, a batch system's binding; on Linux, elsewhere the CPUs online), bounded by the cgroup CPU
    /// quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, of the process's cgroup and its
    /// ancestors) rounded down; at least 1.
    public static var usableCoreCount: Int { Int(rk_usable_cpus()) }

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

    /// Measured single-core peak of the bfloat16 dot-product instruction (`vdpbf16ps`, AVX512_BF16) in GFLOP/s,
    /// measured like ``fmaPeak(level:)``: the ceiling of bf16 mixed-precision products. Nil when the CPU (or the active
    /// level) has no AVX512_BF16.
    public static func bf16DotPeak() -> Double? {
        guard rk_bf16_dot_peak_flops(1_000_000) > 0 else { return nil }
        var best = 0.0
        for _ in 0..<5 {
            let start = monotonicSeconds()
            let flops = rk_bf16_dot_peak_flops(20_000_000)
            best = max(best, flops / (monotonicSeconds() - start) / 1e9)
        }
        return best
    }

    /// Whether bfloat16 products use AVX512_BF16's `vdpbf16ps` now: true when the CPU has it, the active level is
    /// AVX-512 and it was not switched off here. Setting false runs, on such a CPU, the path of an AVX-512 CPU without
    /// those instructions (an Ice Lake Xeon, for example): the same bf16 operands widened to Float and summed with
    /// Float multiply-adds in an 8 x 32 register tile, the bits of the AVX2+FMA level. Setting true allows them again
    /// (no effect on a CPU without them). For benchmarks and tests; affects the whole process.
    public static var usesBFloat16DotInstructions: Bool {
        get { rk_bf16_dot_available() != 0 }
        set { _ = rk_set_bf16_dot(newValue ? 1 : 0) }
    }

    /// How bfloat16 products are computed now, as training states record it: "vdpbf16ps" (AVX512_BF16's dot
    /// instructions, ``usesBFloat16DotInstructions``) or "widened" (the bf16 operands widened to Float and summed with
    /// multiply-adds). The two round the sums differently, so a run with ``ProductPrecision/bfloat16`` resumes bit for
    /// bit only where this agrees, beside the ``activeLevel`` and the ``blocking``.
    public static var bfloat16Products: String { usesBFloat16DotInstructions ? "vdpbf16ps" : "widened" }

    /// The values ``bfloat16Products`` takes.
    public static let bfloat16ProductPaths: Set<String> = ["vdpbf16ps", "widened"]
}

/// The precision of matrix products (``Kernels/productPrecision``).
public enum ProductPrecision: String, Codable, CaseIterable, Sendable {
    /// Float operands and sums (the default; the path the PyTorch fixtures check).
    case float32
    /// Mixed precision: bfloat16 operands (8 significant bits), Float sums, Float master weights.
    case bfloat16
}
