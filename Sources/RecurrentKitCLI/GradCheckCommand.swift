import ArgumentParser
import RecurrentKit

/// `rnn gradcheck`: finite differences in Double against the hand-written backward.
struct GradCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check the hand-written BPTT gradients against finite differences in Double.",
        discussion: """
        Loss: sum(out * dOut) + sum(h_n * dh_n) [+ sum(c_n * dc_n)] with random weights, or the last step only.
        Prints, per tensor, the worst relative error |analytic - numeric| / max(|analytic|, |numeric|, floor).
        """
    )

    @Option(help: "Cell: rnn_tanh, rnn_relu, gru or lstm.") var cell: String = "lstm"
    @Option(help: "Input features I (>= 1).") var inputSize: Int = 4
    @Option(help: "Hidden units H (>= 1).") var hiddenSize: Int = 5
    @Option(help: "Stacked layers (>= 1).") var layers: Int = 2
    @Option(help: "Batch size B (>= 1).") var batch: Int = 3
    @Option(help: "Steps T per chunk (>= 1).") var steps: Int = 6
    @Option(help: "Truncated chunks; the state crosses chunks with its gradient cut (>= 1).") var chunks: Int = 1
    @Flag(help: "Put the loss on the last step only.") var lastStep = false
    @Option(help: "Dropout between layers, [0, 1); masks are fixed by the seed.") var dropout: Double = 0
    @Option(help: "Finite-difference step h (> 0).") var step: Double = 1e-4
    @Option(help: "Fail (exit 1) when a relative error exceeds this.") var tolerance: Double = 1e-6
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        let kind = try CellKind(parsing: cell)
        let config = RecurrentConfiguration(cell: kind, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: layers, dropout: dropout)
        let options = GradientCheck.Options(configuration: config, batch: batch, steps: steps, chunks: chunks,
                                            lastStepOnly: lastStep, training: dropout > 0, step: step, seed: seed)
        let results = try GradientCheck.run(options)
        print("gradcheck \(kind.rawValue): I=\(inputSize) H=\(hiddenSize) layers=\(layers) B=\(batch) T=\(steps) chunks=\(chunks)\(lastStep ? " last-step" : "")\(dropout > 0 ? " dropout=\(dropout)" : "")")
        print(pad("tensor", 14) + pad("elements", 10) + pad("worst rel", 12) + pad("worst abs", 12) + "at")
        var worst = 0.0
        for r in results {
            worst = max(worst, r.worstRelativeError.isNaN ? .infinity : r.worstRelativeError)
            print(pad(r.name, 14) + pad("\(r.count)", 10) + pad(format(r.worstRelativeError), 12) + pad(format(r.worstAbsoluteError), 12) + "\(r.worstIndex)")
        }
        let ok = worst <= tolerance
        print("\(ok ? "PASS" : "FAIL"): worst relative error \(format(worst)) (tolerance \(format(tolerance)))")
        if !ok { throw ExitCode(1) }
    }
}

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }

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
