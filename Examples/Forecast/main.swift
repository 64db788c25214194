// A 2-layer LSTM with dropout forecasts the next 5 values of a noisy multi-sine series from the 50 before it. The
// Trainer validates after every epoch, keeps the best parameters in a file and stops early when validation stops
// improving; the best parameters are then loaded into a freshly built model, which must give exactly the test MSE
// the trained model had when it was best. Public API only.
// Usage: Forecast [epochs]   (exits 1 unless the test MSE is at most half that of repeating the last value)
import Foundation
import RecurrentKit

let epochs = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 30
let (window, horizon, H) = (50, 5, 48)
var rng = SeededGenerator(seed: 2026)
let series = try Tensor<Float>(
    shape: [6000],
    scalars: (0..<6000).map { t in
        let x = Double(t)
        return Float(sin(0.11 * x) + 0.6 * sin(0.37 * x + 1) + 0.3 * sin(0.023 * x + 2) + 0.1 * rng.normal())
    })
let windows = try SlidingWindows(series: series, window: window, horizon: horizon)  // inputs (50, B, 1), targets (B, 5)
// 70% train, 15% validation, 15% test
let (trainEnd, validationEnd) = (windows.count * 7 / 10, windows.count * 85 / 100)
let train = try WindowBatches(windows, starts: 0..<trainEnd, batchSize: 32, seed: 1)
let validation = try WindowBatches(windows, starts: trainEnd..<validationEnd, batchSize: 512, shuffle: false)
let (testInputs, testTargets) = try windows.batch(starts: Array(validationEnd..<windows.count))

let makeModel = { (generator: inout SeededGenerator) in
    try Sequential(seed: 5) {
        ("lstm", try LSTM<Float>(inputSize: 1, hiddenSize: H, numLayers: 2, dropout: 0.2, generator: &generator))
        LastStep<Float>()  // out[-1]: (B, H)
        try Dropout<Float>(probability: 0.1)
        ("head", try Linear<Float>(inputSize: H, outputSize: horizon, generator: &generator))  // (B, 5)
    }
}
let model = try makeModel(&rng)
let best = FileManager.default.temporaryDirectory.appendingPathComponent("forecast-best.safetensors").path
let trainer = try Trainer(
    model: model, optimizer: try Adam(learningRate: 0.004), data: train, validation: validation,
    options: TrainerOptions(epochs: epochs, clip: 1, earlyStopPatience: 3, seed: 7, bestCheckpointPath: best)
) {
    try meanSquaredError(predictions: $0, targets: $1)
}
var testMSEWhenBest = Double.nan
try trainer.train(progress: { event in
    if case .validation(let report) = event, report.isBest {  // the model now is the one saved to `best`
        model.eval()
        testMSEWhenBest = (try? meanSquaredError(predictions: try model(testInputs), targets: testTargets).loss) ?? .nan
    }
    if case .epoch(let e) = event {
        print("epoch \(e.epoch): training MSE \(e.trainingLoss), validation MSE \(e.validationLoss!)")
    }
})
print(
    trainer.stoppedEarly ? "stopped early after epoch \(trainer.history.count)" : "ran \(trainer.history.count) epochs",
    "(best validation at update \(trainer.bestValidationStep))")

// A fresh model (other initial weights) with the best parameters loaded from the file.
var other = SeededGenerator(seed: 99)
let reloaded = try makeModel(&other)
try reloaded.parameters.load(from: best)
reloaded.eval()
let testMSE = try meanSquaredError(predictions: try reloaded(testInputs), targets: testTargets).loss
let lastValue = try Tensor.concatenated(Array(repeating: try testInputs[-1], count: horizon), along: 1)  // (B, 5)
let baseline = try meanSquaredError(predictions: lastValue, targets: testTargets).loss
print(
    "test MSE \(testMSE) (when best: \(testMSEWhenBest)), repeat-last-value baseline \(baseline), ratio \(testMSE / baseline)"
)
if testMSE != testMSEWhenBest {
    print("FAIL: the reloaded model does not reproduce the best model's test MSE"); exit(1)
}
if !(testMSE <= 0.5 * baseline) { print("FAIL: the LSTM should at least halve the baseline's error"); exit(1) }
