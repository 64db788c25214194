import ArgumentParser
import Foundation
import RecurrentKit

// The two precisions have two names on the command line, as in the library: `--product-precision` (the matrix products
// of training, `ProductPrecision`) and `--weight-precision` (how generation and evaluation store the weights,
// `WeightPrecision`). `--precision`, which meant the first in `train` and the second elsewhere, still works as the old
// spelling of each and prints one line saying so.

/// `--product-precision` (and its old spelling `--precision`) of `rnn train`.
struct ProductPrecisionOption: ParsableArguments {
    @Option(
        name: .customLong("product-precision"),
        help:
            "Matrix products while training: float32, or bf16 (mixed precision: bfloat16 operands, float32 sums, master weights and states)."
    ) var value: ProductPrecision?
    @Option(name: .customLong("precision"), help: .hidden) var oldSpelling: ProductPrecision?

    func validate() throws {
        try requireOneSpelling(value != nil, oldSpelling != nil, new: "--product-precision", old: "--precision")
    }

    /// The precision asked for, nil when neither spelling is given.
    var resolved: ProductPrecision? {
        spelledValue(value, orOldSpelling: oldSpelling, new: "--product-precision", old: "--precision")
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
        try requireOneSpelling(value != nil, oldSpelling != nil, new: "--weight-precision", old: "--precision")
    }

    /// The storage asked for, float32 by default.
    var resolved: WeightPrecision {
        spelledValue(value, orOldSpelling: oldSpelling, new: "--weight-precision", old: "--precision")
            ?? .float32
    }
}
