import ArgumentParser
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn bench`: tokens/s for the training and generation rows of the performance table.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and generation tokens/s (build with -c release).",
        discussion: "Rows match Scripts/bench/torch_bench.py, so the two can be compared side by side."
    )

    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "Which rows (memory: LSTM T=1000 with and without memory-efficient BPTT).") var rows: BenchRows = .all
    @Option(help: "Seconds per training row (after warm-up).") var seconds: Double = 3
    @Flag(
        help:
            "Also measure the single-core FMA peak (AVX-512, AVX2+FMA, portable) and the bf16 dot-product peak, and print the caches and the matrix products' blocking."
    )
    var peak = false
    @Flag(help: "Print rows as CSV (name,tokens_per_second,gflops).") var csv = false
    @Flag(
        help:
            "Compute bf16 products without AVX512_BF16 (the path of an AVX-512 CPU that lacks it, e.g. Ice Lake)."
    )
    var withoutBF16Instructions = false
    @Option(help: "Only rows whose name contains this text, e.g. 'lstm H512'.") var filter: String?

    func run() throws {
        guard seconds > 0, seconds <= 3600 else {
            throw RecurrentKitError.invalidArgument("seconds", seconds, "must be in (0, 3600]")
        }
        try threadOptions.apply()
        if withoutBF16Instructions { Kernels.usesBFloat16DotInstructions = false }
        let levelName = Kernels.activeLevel.name
        let bf16 = Kernels.bfloat16Products == "widened" ? "widened to Float" : Kernels.bfloat16Products
        if !csv { print("kernels: \(levelName), bf16 products: \(bf16), threads: \(threadOptions.summary)") }
        if peak {
            for level in stride(from: Kernels.detectedLevel.rawValue, through: 0, by: -1) {
                let name = Kernels.Level(rawValue: level)!.name
                let value = Benchmarks.fmaPeak(level: level)
                print(csv ? "peak \(name),0,\(value)" : "FMA peak \(name): \(fixed(value, 1)) GFLOP/s per core")
            }
            if let value = Kernels.bf16DotPeak() {
                print(
                    csv
                        ? "peak bf16 dot,0,\(value)"
                        : "bf16 dot-product peak (vdpbf16ps): \(fixed(value, 1)) GFLOP/s per core")
            }
            if !csv {
                let blocking = Kernels.blocking
                print("CPU: \(blocking.caches.cpu); caches: \(blocking.caches)")
                print("GEMM blocking (\(blocking.level.name), from the caches): \(blocking)")
            }
        }
        var results: [Benchmarks.Result] = []
        func wanted(_ name: String) -> Bool { filter.map { name.contains($0) } ?? true }
        func report(_ r: @autoclosure () throws -> Benchmarks.Result, name: String) rethrows {
            guard wanted(name) else { return }
            let r = try r()
            results.append(r)
            let memory = r.activationBytes.map { "  activations \(fixed(Double($0) / 1_048_576, 1)) MiB" } ?? ""
            print(
                csv
                    ? "\(r.name),\(Int(r.tokensPerSecond)),\(fixed(r.gflops, 1))"
                    : "\(pad(r.name, 58)) \(pad(String(Int(r.tokensPerSecond)), 9)) tokens/s  \(fixed(r.gflops, 1)) "
                        + "GFLOP/s\(rows == .memory ? memory : "")"
            )
        }
        if rows == .memory {
            for interval in [nil, 64, 32] as [Int?] {
                try report(
                    try Benchmarks.training(
                        cell: .lstm, hidden: 512, batch: 8, steps: 1000, vocabulary: 65, embedding: 512,
                        seconds: seconds, recomputeInterval: interval),
                    name: "train lstm H512 B8 T1000 V65 embedding 512" + (interval.map { " recompute \($0)" } ?? ""))
            }
        }
        if rows == .all || rows == .train {
            try report(
                try Benchmarks.training(
                    cell: .rnnTanh, hidden: 512, batch: 32, steps: 35, vocabulary: 28, seconds: seconds),
                name: "train rnn_tanh H512 B32 T35 V28 one-hot")
            try report(
                try Benchmarks.d2lTrainingLoop(seconds: seconds),
                name: "train rnn_tanh H512 B32 T35 V28 d2l scratch loop")
            try report(
                try Benchmarks.training(
                    cell: .lstm, hidden: 512, batch: 32, steps: 35, vocabulary: 28, seconds: seconds),
                name: "train lstm H512 B32 T35 V28 one-hot")
            try report(
                try Benchmarks.training(
                    cell: .lstm, hidden: 1024, batch: 64, steps: 35, vocabulary: 65, embedding: 1024, seconds: seconds),
                name: "train lstm H1024 B64 T35 V65 embedding 1024")
            try report(
                try Benchmarks.training(
                    cell: .gru, hidden: 1024, batch: 64, steps: 35, vocabulary: 65, embedding: 1024, seconds: seconds),
                name: "train gru H1024 B64 T35 V65 embedding 1024")
            // Mixed precision (--precision bf16 on rnn train); PyTorch's rows: torch.autocast("cpu",
            // dtype=torch.bfloat16).
            try report(
                try Benchmarks.training(
                    cell: .rnnTanh, hidden: 512, batch: 32, steps: 35, vocabulary: 28, seconds: seconds,
                    precision: .bfloat16),
                name: "train rnn_tanh H512 B32 T35 V28 one-hot bf16")
            try report(
                try Benchmarks.training(
                    cell: .lstm, hidden: 512, batch: 32, steps: 35, vocabulary: 28, seconds: seconds,
                    precision: .bfloat16),
                name: "train lstm H512 B32 T35 V28 one-hot bf16")
            try report(
                try Benchmarks.training(
                    cell: .lstm, hidden: 1024, batch: 64, steps: 35, vocabulary: 65, embedding: 1024, seconds: seconds,
                    precision: .bfloat16),
                name: "train lstm H1024 B64 T35 V65 embedding 1024 bf16")
            try report(
                try Benchmarks.training(
                    cell: .gru, hidden: 1024, batch: 64, steps: 35, vocabulary: 65, embedding: 1024, seconds: seconds,
                    precision: .bfloat16),
                name: "train gru H1024 B64 T35 V65 embedding 1024 bf16")
            for packed in [true, false] {  // 64 sequences of lengths 10...100 (tokens/s count valid steps only)
                try report(
                    try Benchmarks.variableLengthTraining(
                        cell: .lstm, hidden: 512, input: 128, batch: 64, packed: packed, seconds: seconds),
                    name: "train lstm H512 B64 I128 lengths 10-100 " + (packed ? "packed" : "padded to 100"))
            }
        }
        if rows == .all || rows == .generate {
            for precision in [WeightPrecision.float32, .bfloat16, .int8] {
                let suffix = precision == .bfloat16 ? " bf16" : precision == .int8 ? " int8" : ""
                for cell in [CellKind.lstm, .gru, .rnnTanh] {
                    try report(
                        try Benchmarks.generation(
                            cell: cell, hidden: 512, layers: 2, vocabulary: 65, embedding: 512, precision: precision),
                        name: "generate \(cell.rawValue) H512 L2 V65 batch 1 greedy" + suffix)
                }
            }
        }
        if !csv { print("peak memory \(Int(peakResidentMegabytes())) MB") }
    }
}
