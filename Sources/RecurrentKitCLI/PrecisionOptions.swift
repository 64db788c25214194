import ArgumentParser
import Foundation
import RecurrentKit

// The two precisions have two names on the command line, as in the library: `--product-precision` (the matrix products
// of training, `ProductPrecision`) and `--weight-precision` (how generation and evaluation store the weights,
// `WeightPrecision`). `--precision`, which meant the first in `train` and the second elsewhere, still works as the old
// spelling of each and prints one line saying so.

/// Lines naming the new spelling of an old option, printed (standard error, so output meant for files stays clean)
/// when the command has succeeded: a failure stays the one line of its error.
nonisolated(unsafe) var deprecationNotes: [String] = []

/// Records the line that names an option's new spelling (once per option).
func noteDeprecatedSpelling(_ old: String, use new: String) {
    let line = "note: \(old) is the old spelling of \(new); use \(new)"
    if !deprecationNotes.contains(line) { deprecationNotes.append(line) }
}

/// `--product-precision` (and its old spelling `--precision`) of `rnn train`.
struct ProductPrecisionOption: ParsableArguments {
    @Option(
        name: .customLong("product-precision"),
        help:
            "Matrix products while training: float32, or bf16 (mixed precision: bfloat16 operands, float32 sums, master weights and states)."
    ) var value: ProductPrecision?
    @Option(name: .customLong("precision"), help: .hidden) var oldSpelling: ProductPrecision?

    func validate() throws {
        if value != nil, oldSpelling != nil {
            throw ValidationError("give --product-precision once (--precision is its old spelling)")
        }
    }

    /// The precision asked for, nil when neither spelling is given.
    var resolved: ProductPrecision? {
        if let oldSpelling {
            noteDeprecatedSpelling("--precision", use: "--product-precision")
            return oldSpelling
        }
        return value
    }
}

/// `--weight-precision` (and its old spelling `--precision`) of `rnn sample` and `rnn eval`.
struct WeightPrecisionOption: ParsableArguments {
    @Option(
        name: .customLong("weight-precision"),
        help:
            "Weight storage: float32, bfloat16 (half the bytes per token) or int8 (a quarter; a scale per row). bfloat16 and int8 read the text token by token, like generation."
    ) var value: WeightPrecision?
    @Option(name: .customLong("precision"), help: .hidden) var oldSpelling: WeightPrecision?

    func validate() throws {
        if value != nil, oldSpelling != nil {
            throw ValidationError("give --weight-precision once (--precision is its old spelling)")
        }
    }

    /// The storage asked for, float32 by default.
    var resolved: WeightPrecision {
        if let oldSpelling {
            noteDeprecatedSpelling("--precision", use: "--weight-precision")
            return oldSpelling
        }
        return value ?? .float32
    }
}
