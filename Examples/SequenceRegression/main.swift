// An LSTM predicts the next value of a noisy multi-frequency sine series from the 24 values before it, trained with
// Adam on mean squared error; the test MSE is compared with the "repeat the last value" baseline. Public API only.
// Usage: SequenceRegression [updates]   (exits 1 unless the test MSE is at most half the baseline's)
import Foundation
import RecurrentKit

let updates = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 300
let (T, B, H) = (24, 32, 32)
var rng = SeededGenerator(seed: 42)
func noisySines(_ x: Double, _ noise: inout SeededGenerator) -> Float {
    Float(sin(0.21 * x) + 0.5 * sin(0.47 * x + 1) + 0.3 * sin(0.031 * x) + 0.05 * noise.normal())
}
let series = try Tensor<Float>(shape: [6000], scalars: (0..<6000).map { noisySines(Double($0), &rng) })
let windows = try SlidingWindows(series: series, window: T, horizon: 1)  // inputs (T, B, 1), targets (B, 1)
let model = try Sequential {
    ("lstm", try LSTM<Float>(inputSize: 1, hiddenSize: H, generator: &rng))  // nn.LSTM(1, H), PyTorch init
    LastStep<Float>()  // out[-1]: (B, H)
    ("head", try Linear<Float>(inputSize: H, outputSize: 1, generator: &rng))  // lstm.weight_ih_l0, ..., head.bias
}
let adam = try Adam(learningRate: 0.01)

for update in 1...updates {
    let (x, y) = try windows.batch(starts: (0..<B).map { _ in rng.nextInt(below: 4000 - T) })
    let pass = try model.forward(x)  // keeps every layer's record
    let (loss, dPrediction) = try meanSquaredError(predictions: pass.output, targets: y)
    model.parameters.zeroGradients()
    try pass.backward(dPrediction)  // the layers' hand-written backwards, last layer first
    try clipGradientNorm(model.parameters, maxNorm: 1, style: .pytorch)
    try adam.step(model.parameters)
    if update % 100 == 0 { print("update \(update): training MSE \(loss)") }
}

// Test on the unseen end of the series.
model.eval()
let (x, y) = try windows.batch(starts: Array(stride(from: 4000, to: 6000 - T - 1, by: 7)))
let mse = try meanSquaredError(predictions: try model(x), targets: y).loss
let baseline = try meanSquaredError(predictions: try x[-1], targets: y).loss  // the last input value, (B, 1)
print("test MSE \(mse), repeat-last-value baseline \(baseline), ratio \(mse / baseline)")
if !(mse <= 0.5 * baseline) { print("FAIL: the LSTM should at least halve the baseline's error"); exit(1) }
