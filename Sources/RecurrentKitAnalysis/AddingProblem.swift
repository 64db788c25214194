import RecurrentKit
import RecurrentKitText
/// The adding problem (Hochreiter and Schmidhuber 1997; Le et al. 2015), a long-range memory benchmark.
///
/// Each step feeds two features: a value from U[0, 1] and a marker that is 1 at exactly two steps (one in the first
/// half, one in the second) and 0 elsewhere. The target is the sum of the two marked values, read from the last
/// hidden state through a linear layer; the loss is the mean squared error. Always predicting the mean (1) gives
/// MSE Var(U + U) = 1/6 ≈ 0.167, the baseline a model must beat to show it remembers.
public enum AddingProblem {
    /// MSE of the constant prediction 1: 1/6.
    public static let baselineMSE = 1.0 / 6.0

    /// A batch: inputs (T, B, 2) time-major, targets (B).
    public static func batch(
        length T: Int, batch B: Int, generator: inout SeededGenerator
    ) throws -> (inputs: Tensor<Float>, targets: [Float]) {
        guard T >= 2 else { throw RecurrentKitError.invalidArgument("length", T, "must be at least 2") }
        guard B >= 1 else { throw RecurrentKitError.invalidArgument("batch", B, "must be at least 1") }
        var inputs = Tensor<Float>(zeros: [T, B, 2])
        var targets = [Float](repeating: 0, count: B)
        for b in 0..<B {
            let first = generator.nextInt(below: T / 2)
            let second = T / 2 + generator.nextInt(below: T - T / 2)
            for t in 0..<T {
                let value = Float(generator.nextUnit())
                inputs.scalars[(t * B + b) * 2] = value
                if t == first || t == second {
                    inputs.scalars[(t * B + b) * 2 + 1] = 1
                    targets[b] += value
                }
            }
        }
        return (inputs, targets)
    }

    /// Options of one adding-problem run.
    public struct Options: Sendable {
        /// Sequence length T (>= 2).
        public var length: Int = 100
        /// Recurrent cell; `.rnnReLU` with `.identity` initialisation is the IRNN.
        public var cell: CellKind = .lstm
        /// Hidden units (>= 1).
        public var hiddenSize: Int = 64
        /// Parameter initialisation.
        public var initialization: Initialization = .pytorch
        /// Training updates (>= 1).
        public var updates: Int = 2000
        /// Sequences per update (>= 1).
        public var batchSize: Int = 50
        /// Adam learning rate (> 0).
        public var learningRate: Double = 1e-3
        /// Global-norm clipping (0 disables).
        public var clip: Double = 1
        /// Test sequences (>= 1), drawn once from a separate stream.
        public var testSize: Int = 1000
        /// Evaluate every N updates (>= 1).
        public var evaluateEvery: Int = 200
        /// Seed.
        public var seed: UInt64 = 0

        /// Defaults: T 100, LSTM H 64, 2,000 Adam updates of 50 sequences, lr 1e-3, clip 1.
        public init() {}

        /// Throws naming the first invalid option.
        public func validate() throws {
            guard length >= 2, length <= 100_000 else {
                throw RecurrentKitError.invalidArgument("length", length, "must be in 2...100000")
            }
            guard hiddenSize >= 1 else {
                throw RecurrentKitError.invalidArgument("hidden", hiddenSize, "must be at least 1")
            }
            guard updates >= 1 else {
                throw RecurrentKitError.invalidArgument("updates", updates, "must be at least 1")
            }
            guard batchSize >= 1, batchSize <= 100_000 else {
                throw RecurrentKitError.invalidArgument("batch", batchSize, "must be in 1...100000")
            }
            guard learningRate > 0, learningRate.isFinite else {
                throw RecurrentKitError.invalidArgument("lr", learningRate, "must be > 0")
            }
            guard clip >= 0, clip.isFinite else {
                throw RecurrentKitError.invalidArgument("clip", clip, "must be >= 0")
            }
            guard testSize >= 1, testSize <= 1_000_000 else {
                throw RecurrentKitError.invalidArgument("test-size", testSize, "must be in 1...1000000")
            }
            guard evaluateEvery >= 1 else {
                throw RecurrentKitError.invalidArgument("evaluate-every", evaluateEvery, "must be at least 1")
            }
            // Name the count that is too large: the training batch, or the test sequences (1,000 by default).
            for (count, name) in [
                (batchSize, "batch \(batchSize)"), (testSize, "\(testSize) test sequences (testSize)"),
            ]
            where length * count > 1 << 26 {
                throw RecurrentKitError("length \(length) x \(name) is too large (max 67108864 steps x sequences)")
            }
        }
    }

    /// Test MSE after `update` updates.
    public struct Evaluation: Sendable, Equatable {
        /// Updates applied.
        public var update: Int
        /// Mean training MSE over the updates since the previous evaluation.
        public var trainMSE: Double
        /// MSE on the fixed test set.
        public var testMSE: Double
    }

    /// Trains a recurrent network + linear read-out with Adam and returns the test MSE after every `evaluateEvery`
    /// updates. Throws when the loss becomes NaN or infinite.
    public static func train(_ options: Options, progress: (Evaluation) -> Void = { _ in }) throws -> [Evaluation] {
        try options.validate()
        var generator = SeededGenerator(seed: options.seed)
        var testGenerator = SeededGenerator(seed: options.seed ^ 0x5EED_7E57)
        let H = options.hiddenSize
        var layout = ParameterLayout()
        let config = RecurrentConfiguration(cell: options.cell, inputSize: 2, hiddenSize: H)
        try config.validate()
        config.declareParameters(prefix: "rnn.", into: &layout)
        Linear<Float>.declareParameters(prefix: "output.", inputSize: H, outputSize: 1, into: &layout)
        let store = ParameterStore<Float>(layout: layout)
        let network = try RecurrentNetwork(config, parameters: store, prefix: "rnn.")
        let head = try Linear(prefix: "output.", inputSize: H, outputSize: 1, store: store)
        network.initialize(options.initialization, generator: &generator)
        head.initialize(.pytorch, generator: &generator)
        let adam = try Adam(learningRate: options.learningRate)
        let test = try batch(length: options.length, batch: options.testSize, generator: &testGenerator)

        func predict(_ inputs: Tensor<Float>, batch B: Int) throws -> (y: [Float], record: RecurrentRecord<Float>) {
            let record = try network(.dense(inputs), training: false, generator: &generator)
            var y = [Float](repeating: 0, count: B)
            try record.withUnsafeOutput { output in
                let last = output.baseAddress! + (options.length - 1) * B * H
                y.withUnsafeMutableBufferPointer { head.forward(last, rows: B, into: $0.baseAddress!) }
            }
            return (y, record)
        }
        func mse(_ y: [Float], _ targets: [Float]) -> Double {
            zip(y, targets).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(y.count)
        }

        var results: [Evaluation] = []
        var trainSum = 0.0, trainCount = 0
        let (T, B) = (options.length, options.batchSize)
        var dOutput = Tensor<Float>(zeros: [T, B, H])
        for update in 1...options.updates {
            let (inputs, targets) = try batch(length: T, batch: B, generator: &generator)
            store.zeroGradients()
            let (y, record) = try predict(inputs, batch: B)
            let loss = mse(y, targets)
            guard loss.isFinite else {
                throw RecurrentKitError(
                    "adding problem diverged: loss \(loss) at update \(update); try a lower learning rate")
            }
            trainSum += loss; trainCount += 1
            // dL/dy = 2 (y - target) / B; the read-out sees only h_T, so every other step's output gradient is 0.
            var dy = zip(y, targets).map { 2 * ($0 - $1) / Float(B) }
            let lastOffset = (T - 1) * B * H
            try dOutput.scalars.withUnsafeMutableBufferPointer { dOut in
                try record.withUnsafeOutput { output in
                    dy.withUnsafeMutableBufferPointer { dyPointer in
                        head.backward(
                            dyPointer.baseAddress!, x: output.baseAddress! + lastOffset, rows: B,
                            inputGradient: dOut.baseAddress! + lastOffset)
                    }
                }
                try network.backward(record, outputGradient: dOut.baseAddress!)
            }
            if options.clip > 0 {
                do { try clipGradientNorm(store, maxNorm: options.clip) } catch {
                    throw RecurrentKitError(
                        "adding problem diverged at update \(update): \(error); try a lower learning rate")
                }
            }
            try adam.step(store)
            if update % options.evaluateEvery == 0 || update == options.updates {
                let evaluation = Evaluation(
                    update: update, trainMSE: trainSum / Double(trainCount),
                    testMSE: mse(try predict(test.inputs, batch: options.testSize).y, test.targets))
                results.append(evaluation)
                progress(evaluation)
                trainSum = 0; trainCount = 0
            }
        }
        return results
    }
}
