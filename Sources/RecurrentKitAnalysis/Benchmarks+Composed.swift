import RecurrentKit
import RecurrentKitText

extension Benchmarks {
    /// A composed model trained by the `Trainer` for `updates` updates: a forecaster (`Sequential` of a recurrent
    /// stack with dropout between layers, the last step, dropout, a linear head; `WindowBatches` of a synthetic
    /// series, mean squared error, clipping at 1), the loop a user's own model runs. `rnn probe --workload sequential`
    /// runs it for the allocation check: once warm, an update allocates nothing.
    /// - Parameters:
    ///   - cell: recurrent cell.
    ///   - H: hidden units.
    ///   - layers: recurrent layers.
    ///   - B: windows per batch.
    ///   - T: steps per window.
    ///   - dropout: dropout between the recurrent layers and before the head.
    ///   - optimizer: the optimizer.
    ///   - updates: updates to run (the epoch is longer, so no epoch ends).
    public static func composedTrainerUpdates(
        cell: CellKind, hidden H: Int, layers: Int, batch B: Int, steps T: Int, dropout: Double,
        optimizer: OptimizerKind, updates: Int
    ) throws {
        var g = SeededGenerator(seed: 1)
        let horizon = 3, windowsNeeded = (updates + 2) * B + T + horizon
        let series = try Tensor<Float>(
            shape: [windowsNeeded, 2],
            scalars: (0..<(2 * windowsNeeded)).map { i in
                Float(Double.sin(0.05 * Double(i / 2 + i % 2)) + 0.1 * g.normal())
            })
        let windows = try SlidingWindows(series: series, window: T, horizon: horizon)
        let data = try WindowBatches(windows, batchSize: B, seed: 2)
        let d = layers > 1 ? dropout : 0
        let rnn: RecurrentNetwork<Float> =
            switch cell {
            case .lstm: try LSTM<Float>(inputSize: 2, hiddenSize: H, numLayers: layers, dropout: d, generator: &g)
            case .gru: try GRU<Float>(inputSize: 2, hiddenSize: H, numLayers: layers, dropout: d, generator: &g)
            case .rnnTanh, .rnnLinear:
                try RNN<Float>(inputSize: 2, hiddenSize: H, numLayers: layers, dropout: d, generator: &g)
            case .rnnReLU:
                try RNN<Float>(
                    inputSize: 2, hiddenSize: H, numLayers: layers, nonlinearity: .relu, dropout: d, generator: &g)
            }
        let model = try Sequential(seed: 3) {
            ("rnn", rnn)
            LastStep<Float>()
            try Dropout<Float>(probability: dropout)
            ("head", try Linear<Float>(inputSize: H, outputSize: 2 * horizon, generator: &g))
        }
        let chosen: Optimizer =
            optimizer == .adam ? try Adam(learningRate: 0.001) : try SGD(learningRate: 0.01, momentum: 0.9)
        let loss = MeanSquaredErrorLoss<Float>()
        let trainer = try Trainer(
            model: model, optimizer: chosen, data: data,
            options: TrainerOptions(epochs: 1, maxUpdates: max(updates, 1), clip: 1)
        ) {
            try loss($0, $1)
        }
        if updates > 0 { try trainer.train() }
    }
}
