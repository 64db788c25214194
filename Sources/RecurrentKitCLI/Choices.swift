import ArgumentParser
import RecurrentKit
import RecurrentKitText

// The library's choice enums as command-line values (`--cell gru`, `--optimizer adam`, ...): the parser lists the
// values in --help and refuses anything else with one line naming the option and the values. The conformances live
// in the executable: the libraries do not depend on ArgumentParser.

extension CellKind: ExpressibleByArgument {
    /// Also PyTorch's and short spellings: rnn, tanh, relu, linear, rnn-tanh, ... (``CellKind/init(parsing:)``).
    public init?(argument: String) {
        guard let cell = try? CellKind(parsing: argument) else { return nil }
        self = cell
    }
}

extension Initialization: ExpressibleByArgument {}
extension TextMode: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension SamplingStrategy: ExpressibleByArgument {}
extension BPTTStrategy: ExpressibleByArgument {}
extension TrainingPreset: ExpressibleByArgument {}

extension ProductPrecision: ExpressibleByArgument {
    /// float32 or bfloat16, also bf16, fp32, f32.
    public init?(argument: String) {
        let aliases = ["bf16": "bfloat16", "fp32": "float32", "f32": "float32"]
        guard let value = ProductPrecision(rawValue: aliases[argument.lowercased()] ?? argument.lowercased()) else {
            return nil
        }
        self = value
    }
}

extension WeightPrecision: ExpressibleByArgument {
    /// float32, bfloat16 or int8, also bf16, fp32, f32, i8.
    public init?(argument: String) {
        let aliases = ["bf16": "bfloat16", "fp32": "float32", "f32": "float32", "i8": "int8"]
        guard let value = WeightPrecision(rawValue: aliases[argument.lowercased()] ?? argument.lowercased()) else {
            return nil
        }
        self = value
    }
}

/// `rnn bench --rows`.
enum BenchRows: String, CaseIterable, ExpressibleByArgument {
    case all, train, generate, memory
}

/// `rnn probe --workload`.
enum ProbeWorkload: String, CaseIterable, ExpressibleByArgument {
    case train, generate, trainer, sequential
}

/// `rnn probe --decoding`.
enum ProbeDecoding: String, CaseIterable, ExpressibleByArgument {
    case greedy, sample, nucleus
}

/// `rnn train --schedule`.
enum ScheduleKind: String, CaseIterable, ExpressibleByArgument {
    case constant, step, cosine
}
