// An LSTM predicts the next value of a noisy multi-frequency sine series from the 24 values before it, trained with
// Adam on mean squared error; the test MSE is compared with the "repeat the last value" baseline. Public API only.
// Usage: SequenceRegression [updates]   (exits 1 unless the test MSE is at most half the baseline's)
import Foundation
import RecurrentKit

let updates = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 300
let (T, B, H) = (24, 32, 32)
var rng = SeededGenerator(seed: 42)
let series = (0..<6000).map { t -> Float in
    let x = Double(t)
    return Float(sin(0.21 * x) + 0.5 * sin(0.47 * x + 1) + 0.3 * sin(0.031 * x) + 0.05 * rng.normal())
}
/// Windows starting at `starts`: inputs (T, B, 1) time-major, targets (B, 1).
@MainActor func batch(_ starts: [Int]) throws -> (x: Tensor<Float>, y: Tensor<Float>) {
    var x = Tensor<Float>(zeros: [T, starts.count, 1])
    for (b, s) in starts.enumerated() { for t in 0..<T { x.scalars[t * starts.count + b] = series[s + t] } }
    return (x, try Tensor(shape: [starts.count, 1], scalars: starts.map { series[$0 + T] }))
}

// Each layer declares its own parameters; one store gathers them (lstm.weight_ih_l0, ..., head.bias) so clipping,
// Adam and checkpoints see every parameter.
let lstm = try LSTM<Float>(inputSize: 1, hiddenSize: H, generator: &rng) // nn.LSTM(1, H), PyTorch init
let head = try Linear<Float>(inputSize: H, outputSize: 1, generator: &rng)
let parameters = try ParameterStore<Float>(gathering: ["lstm": lstm, "head": head])
let adam = try Adam(learningRate: 0.01)

/// Predictions (B, 1) from the last step's hidden state; the LSTM's record and that state (B, H) for the backward.
@MainActor func predict(_ x: Tensor<Float>) throws -> (prediction: Tensor<Float>, record: RecurrentRecord<Float>, last: Tensor<Float>) {
    let record = try lstm(.dense(x), generator: &rng)
    let n = x.shape[1]
    let last = try Tensor(shape: [n, H], scalars: Array(try record.output.scalars[((T - 1) * n * H)...]))
    return (try head(last), record, last)
}

for update in 1...updates {
    let (x, y) = try batch((0..<B).map { _ in rng.nextInt(below: 4000 - T) })
    parameters.zeroGradients()
    let (prediction, record, last) = try predict(x)
    let (loss, dPrediction) = try meanSquaredError(predictions: prediction, targets: y)
    let dLast = try head.backward(input: last, outputGradient: dPrediction)
    var dOut = Tensor<Float>(zeros: [T, B, H]) // the loss reads only the last step
    dOut.scalars.replaceSubrange(((T - 1) * B * H)..., with: dLast.scalars)
    _ = try lstm.backward(record, outputGradient: dOut) // throws if another forward ran in between
    try clipGradientNorm(parameters, maxNorm: 1, style: .pytorch)
    try adam.step(parameters)
    if update % 100 == 0 { print("update \(update): training MSE \(loss)") }
}

// Test on the unseen end of the series.
let (x, y) = try batch(Array(stride(from: 4000, to: 6000 - T - 1, by: 7)))
let mse = try meanSquaredError(predictions: try predict(x).prediction, targets: y).loss
let baseline = try meanSquaredError(predictions: try Tensor(shape: y.shape, scalars: (0..<y.shape[0]).map { x.scalars[(T - 1) * y.shape[0] + $0] }),
                                    targets: y).loss
print("test MSE \(mse), repeat-last-value baseline \(baseline), ratio \(mse / baseline)")
if !(mse <= 0.5 * baseline) { print("FAIL: the LSTM should at least halve the baseline's error"); exit(1) }
