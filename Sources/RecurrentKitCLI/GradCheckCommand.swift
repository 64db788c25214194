import ArgumentParser
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn gradcheck`: finite differences in Double against the hand-written backward.
struct GradCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check the hand-written BPTT gradients against finite differences in Double.",
        discussion: """
            Loss: sum(out * dOut) + sum(h_n * dh_n) [+ sum(c_n * dc_n)] with random weights, or the last step only.
            Prints, per tensor, the worst relative error |analytic - numeric| / max(|analytic|, |numeric|, floor).
            For rnn_relu, an element whose stencil moves a pre-activation across 0 (the ReLU kink) is checked one-sided
            on the side that keeps every sign, or skipped when both sides cross; both counts are printed, and more than
            2% skipped elements is a failure.
            """
    )

    @OptionGroup(title: "Model (defaults: lstm, --hidden 5, --layers 2, no dropout)") var model: ModelOptions
    @Option(help: "Input features I (>= 1).") var inputSize: Int = 4
    @Option(help: "Batch size B (>= 1).") var batch: Int = 3
    @Option(help: "Steps T per chunk (>= 1).") var steps: Int = 6
    @Option(help: "Truncated chunks; the state crosses chunks with its gradient cut (>= 1).") var chunks: Int = 1
    @Flag(help: "Put the loss on the last step only.") var lastStep = false
    @Option(help: "Finite-difference step h (> 0).") var step: Double = 1e-4
    @Option(help: "Fail (exit 1) when a relative error exceeds this.") var tolerance: Double = 1e-6
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(
        help: ArgumentHelp(
            "Self-test: multiply the analytic gradient of this parameter by 1.001 (the check must fail).",
            visibility: .hidden)) var corrupt: String?

    func run() throws {
        guard tolerance.isFinite, tolerance > 0 else {
            throw RecurrentKitError.invalidArgument("tolerance", tolerance, "must be a finite number > 0")
        }
        try model.refuse([.embedding], in: "gradcheck")
        let config = model.recurrentConfiguration(inputSize: inputSize, defaults: (.lstm, 5, 2))
        let (kind, hiddenSize, layers, dropout) = (config.cell, config.hiddenSize, config.numLayers, config.dropout)
        var options = GradientCheck.Options(
            configuration: config, batch: batch, steps: steps, chunks: chunks,
            lastStepOnly: lastStep, training: dropout > 0, step: step, seed: seed)
        options.corruption = corrupt.map { GradientCheck.Corruption(tensor: $0, relativeError: 1e-3) }
        let results = try GradientCheck.run(options)
        print(
            "gradcheck \(kind.rawValue): I=\(inputSize) H=\(hiddenSize) layers=\(layers) B=\(batch) T=\(steps) "
                + "chunks=\(chunks)\(lastStep ? " last-step" : "")\(dropout > 0 ? " dropout=\(dropout)" : "")\(config.bias ? "" : " no-bias")\(config.projectionSize > 0 ? " projection=\(config.projectionSize)" : "")"
        )
        let kinks = kind == .rnnReLU
        print(
            pad("tensor", 14) + pad("elements", 10) + pad("worst rel", 12) + pad("worst abs", 12)
                + (kinks ? pad("one-sided", 11) + pad("skipped", 9) : "") + "at")
        var worst = 0.0
        for r in results {
            worst = max(worst, r.worstRelativeError.isNaN ? .infinity : r.worstRelativeError)
            print(
                pad(r.name, 14) + pad("\(r.count)", 10) + pad(format(r.worstRelativeError), 12)
                    + pad(format(r.worstAbsoluteError), 12)
                    + (kinks ? pad("\(r.oneSidedCount)", 11) + pad("\(r.skippedCount)", 9) : "") + "\(r.worstIndex)")
        }
        let total = results.reduce(0) { $0 + $1.count }
        let oneSided = results.reduce(0) { $0 + $1.oneSidedCount }, skipped = results.reduce(0) { $0 + $1.skippedCount }
        // Skipping is allowed for a few elements only, so it cannot hide a wrong backward.
        let tooManySkipped = skipped * 50 > total
        if kinks {
            print(
                "ReLU kinks: \(oneSided) of \(total) elements checked one-sided, \(skipped) skipped (a kink on both "
                    + "sides; at most 2% allowed)"
            )
        }
        let ok = worst <= tolerance && !tooManySkipped
        print(
            "\(ok ? "PASS" : "FAIL"): worst relative error \(format(worst)) (tolerance \(format(tolerance)))"
                + (tooManySkipped
                    ? "; \(skipped) of \(total) elements skipped at ReLU kinks (more than 2%): use a smaller --step"
                    : ""))
        if !ok { throw ExitCode(1) }
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

func format(_ x: Double) -> String {
    if x == 0 { return "0" }
    if !x.isFinite { return "\(x)" }
    var exponent = 0
    var m = abs(x)
    while m >= 10 { m /= 10; exponent += 1 }
    while m < 1 { m *= 10; exponent -= 1 }
    let rounded = (m * 100).rounded() / 100
    return "\(x < 0 ? "-" : "")\(rounded)e\(exponent)"
}
