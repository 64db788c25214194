import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// The Trainer for composed models: it is the plain loop (bit for bit), resumes exactly from its checkpoint, validates
/// in evaluation mode, keeps the best parameters, stops early, on time and on request, and refuses bad checkpoints.
final class TrainerTests: XCTestCase {
    private typealias Model = Sequential<
        Chain<Chain<Chain<Named<LSTM<Float>>, Named<LastStep<Float>>>, Named<Dropout<Float>>>, Named<Linear<Float>>>
    >

    private func makeModel(seed: UInt64) throws -> Model {
        var g = SeededGenerator(seed: seed)
        return try Sequential(seed: 5) {
            ("lstm", try LSTM<Float>(inputSize: 2, hiddenSize: 6, numLayers: 2, dropout: 0.3, generator: &g))
            LastStep<Float>()
            try Dropout<Float>(probability: 0.2)
            ("head", try Linear<Float>(inputSize: 6, outputSize: 3, generator: &g))
        }
    }

    private func windows() throws -> SlidingWindows<Float> {
        var g = SeededGenerator(seed: 1)
        let series = try Tensor<Float>(
            shape: [160, 2], scalars: (0..<320).map { i in Float(sin(0.3 * Double(i / 2)) + 0.1 * g.normal()) })
        // targets (B, 4)... with F = 2: horizon x F = 4
        return try SlidingWindows(series: series, window: 8, horizon: 2)
    }

    private func makeTrainer(_ model: Model, options: TrainerOptions) throws -> Trainer<Model, WindowBatches<Float>> {
        let w = try windows()
        let train = try WindowBatches(w, starts: 0..<100, batchSize: 16, seed: 2)
        let validation = try WindowBatches(w, starts: 100..<w.count, batchSize: 20, shuffle: false)
        return try Trainer(
            model: model, optimizer: try Adam(learningRate: 0.01), data: train, validation: validation, options: options
        ) {
            let (loss, gradient) = try meanSquaredError(
                predictions: $0, targets: try $1.split(sizes: [3, 1], along: 1)[0])
            return (loss, gradient)
        }
    }

    private func values(_ store: ParameterStore<Float>) -> [Float] {
        Array(UnsafeBufferPointer(start: store.values, count: store.count))
    }

    func testTrainerIsThePlainLoop() throws {
        let options = TrainerOptions(epochs: 2, clip: 0.5, seed: 9)
        let model = try makeModel(seed: 3)
        let trainer = try makeTrainer(model, options: options)
        try trainer.train()
        // The same updates written out: batches in the data's order, the model's mode, the trainer's generator.
        let manual = try makeModel(seed: 3)
        let data = trainer.data
        let adam = try Adam(learningRate: 0.01)
        for epoch in 0..<2 {
            for index in 0..<data.batchesPerEpoch {
                var generator = trainer.maskGenerator(epoch: epoch, index: index)
                let batch = try data.batch(epoch: epoch, index: index)
                manual.parameters.zeroGradients()
                let (output, record) = try manual.forward(batch.input, generator: &generator)
                let (_, gradient) = try meanSquaredError(
                    predictions: output, targets: try batch.target.split(sizes: [3, 1], along: 1)[0])
                _ = try manual.backward(record, outputGradient: gradient)
                try clipGradientNorm(manual.parameters, maxNorm: 0.5, style: .pytorch)
                try adam.step(manual.parameters)
            }
        }
        XCTAssertEqual(values(trainer.model.parameters), values(manual.parameters))
        XCTAssertEqual(trainer.step, 2 * data.batchesPerEpoch)
        XCTAssertEqual(trainer.history.map(\.epoch), [1, 2])
        XCTAssertTrue(trainer.isFinished)
        XCTAssertTrue(trainer.model.isTraining, "validation restores training mode")
    }

    func testResumesBitIdenticallyFromACheckpoint() throws {
        let options = TrainerOptions(
            epochs: 3, clip: 1, learningRateSchedule: .cosine(warmup: 2, minimumFactor: 0.1), validateEvery: 4, seed: 11
        )
        let whole = try makeTrainer(try makeModel(seed: 4), options: options)
        try whole.train()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-resume-\(UUID()).safetensors")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Stop after 9 updates (mid-epoch 2), save, and continue in a trainer whose model started elsewhere.
        let first = try makeTrainer(try makeModel(seed: 4), options: options)
        var updates = 0
        XCTAssertFalse(
            try first.train(shouldStop: {
                updates += 1; return updates == 9
            }))
        XCTAssertEqual(first.position, BatchSampler.Position(epoch: 1, batch: 2))
        try first.save(to: path, metadata: ["model": "test"])
        let second = try makeTrainer(try makeModel(seed: 77), options: options)
        let metadata = try second.restore(from: path)
        XCTAssertEqual(metadata["model"], "test")
        XCTAssertEqual(second.step, 9)
        XCTAssertTrue(try second.train())
        XCTAssertEqual(values(second.model.parameters), values(whole.model.parameters), "weights bit for bit")
        XCTAssertEqual(second.optimizer.stateBuffers, whole.optimizer.stateBuffers, "Adam moments")
        XCTAssertEqual(second.validations, whole.validations)
        XCTAssertEqual(second.history.map { $0.trainingLoss }, whole.history.map { $0.trainingLoss })
        XCTAssertEqual(second.history.map { $0.validationLoss }, whole.history.map { $0.validationLoss })
        XCTAssertEqual(second.optimizer.learningRate, whole.optimizer.learningRate)
    }

    func testBestParametersEarlyStoppingAndMetrics() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-best-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = TrainerOptions(
            epochs: 200, earlyStopPatience: 2, seed: 1, bestCheckpointPath: folder + "/best.safetensors",
            metricsPath: folder + "/metrics.jsonl")
        options.validateEvery = 3
        let trainer = try makeTrainer(try makeModel(seed: 5), options: options)
        var events: [ValidationReport] = []
        XCTAssertTrue(try trainer.train(progress: { if case .validation(let r) = $0 { events.append(r) } }))
        XCTAssertTrue(trainer.stoppedEarly)
        XCTAssertLessThan(trainer.history.count, 200)
        XCTAssertEqual(events, trainer.validations)
        XCTAssertEqual(events.suffix(2).map(\.isBest), [false, false])
        XCTAssertEqual(events.last?.sinceBest, 2)
        // The best file holds the model as it was measured: a fresh model with it gives the best loss exactly.
        let fresh = try makeTrainer(try makeModel(seed: 6), options: TrainerOptions(epochs: 1))
        try fresh.model.parameters.load(from: folder + "/best.safetensors")
        XCTAssertEqual(try fresh.validationLoss(), trainer.bestValidationLoss)
        let lines = try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, trainer.history.count + trainer.validations.count)
        XCTAssertTrue(lines[0].contains("\"event\":\"epoch\""), String(lines[0]))
    }

    /// bf16 products in the forward and backward only: the weights differ from a Float run by bf16 rounding, not
    /// more, and validation (Float) of the same weights is the Float validation.
    func testMixedPrecisionProducts() throws {
        let float = try makeTrainer(try makeModel(seed: 3), options: TrainerOptions(epochs: 1, seed: 2))
        let bf16 = try makeTrainer(
            try makeModel(seed: 3), options: TrainerOptions(epochs: 1, precision: .bfloat16, seed: 2))
        try float.train()
        try bf16.train()
        let (a, b) = (values(float.model.parameters), values(bf16.model.parameters))
        let worst = zip(a, b).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(worst, 0, "bf16 operands round")
        XCTAssertLessThan(worst, 2e-2, "and stay close after \(float.step) updates")
        XCTAssertEqual(Kernels.productPrecision, .float32, "the precision is restored after each update")
    }

    /// Under a time limit a cosine schedule is fitted to the updates that fit, once, after 3 untimed and 10 timed
    /// updates; the fitted length is part of the checkpoint.
    func testCosineScheduleFitsATimeLimit() throws {
        let options = TrainerOptions(
            epochs: 1000, learningRateSchedule: .cosine(warmup: 0, minimumFactor: 0.1), timeLimitSeconds: 3600)
        let trainer = try makeTrainer(try makeModel(seed: 1), options: options)
        var updates = 0
        try trainer.train(shouldStop: {
            updates += 1; return updates == 20
        })
        let fitted = try XCTUnwrap(trainer.calibratedUpdates, "fixed after 13 updates")
        XCTAssertGreaterThan(fitted, 20)
        XCTAssertLessThanOrEqual(fitted, 1000 * trainer.data.batchesPerEpoch)
        XCTAssertEqual(trainer.scheduledUpdates, fitted)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-cosine-\(UUID()).safetensors")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try trainer.save(to: path)
        let resumed = try makeTrainer(try makeModel(seed: 2), options: options)
        try resumed.restore(from: path)
        XCTAssertEqual(resumed.calibratedUpdates, fitted)
        let untimed = try makeTrainer(
            try makeModel(seed: 1),
            options: TrainerOptions(epochs: 2, learningRateSchedule: .cosine(warmup: 0, minimumFactor: 0.1)))
        try untimed.train()
        XCTAssertNil(untimed.calibratedUpdates)
        XCTAssertEqual(untimed.optimizer.learningRate, 0.01 * 0.1, accuracy: 1e-3, "the cosine ends at its minimum")
    }

    func testEvaluationModeHasNoDropout() throws {
        let trainer = try makeTrainer(try makeModel(seed: 8), options: TrainerOptions(epochs: 1, seed: 3))
        let a = try trainer.validationLoss(), b = try trainer.validationLoss()
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(trainer.maskGenerator(epoch: 0, index: 1), trainer.maskGenerator(epoch: 0, index: 2))
        XCTAssertNotEqual(trainer.maskGenerator(epoch: 0, index: 1), trainer.maskGenerator(epoch: 1, index: 1))
    }

    /// N threads joined by an in-memory reducer run the protocol of N MPI processes: every rank ends on the same
    /// weights, and without dropout they match one process up to the summation order; validation is sharded and
    /// agrees; only rank 0 writes files.
    func testDataParallelTrainingMatchesOneProcess() throws {
        func plainModel() throws -> Sequential<
            Chain<Chain<Named<GRU<Float>>, Named<LastStep<Float>>>, Named<Linear<Float>>>
        > {
            var g = SeededGenerator(seed: 21)
            return try Sequential {
                ("gru", try GRU<Float>(inputSize: 2, hiddenSize: 5, numLayers: 2, generator: &g))
                LastStep<Float>()
                ("head", try Linear<Float>(inputSize: 5, outputSize: 4, generator: &g))
            }
        }
        let w = try windows()
        func run(_ reducer: GradientReducer, folder: String?) throws -> ([Float], [Double?]) {
            let model = try plainModel()
            let options = TrainerOptions(
                epochs: 2, clip: 1, validateEvery: 3, seed: 4,
                metricsPath: folder.map { $0 + "/metrics-\(reducer.rank).jsonl" })
            let trainer = try Trainer(
                model: model, optimizer: try Adam(learningRate: 0.01),
                data: try WindowBatches(w, starts: 0..<96, batchSize: 12, seed: 2),
                validation: try WindowBatches(w, starts: 96..<w.count, batchSize: 11, shuffle: false), options: options,
                reducer: reducer
            ) { try meanSquaredError(predictions: $0, targets: $1) }
            try trainer.train()
            return (values(model.parameters), trainer.history.map(\.validationLoss))
        }
        let one = try run(SingleProcessReducer(), folder: nil)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-parallel-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for processes in [2, 3] {
            let ranks = try ThreadedJob.run(processes: processes) { reducer in try run(reducer, folder: folder) }
            for r in ranks.dropFirst() {
                XCTAssertEqual(r.0, ranks[0].0, "\(processes) processes: every rank holds the same weights")
                XCTAssertEqual(r.1, ranks[0].1, "the same validation losses")
            }
            let worst = zip(ranks[0].0, one.0).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 2e-5, "\(processes) processes against one: summation order only")
            for (a, b) in zip(ranks[0].1, one.1) { XCTAssertEqual(a!, b!, accuracy: 1e-5) }
        }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: folder), ["metrics-0.jsonl"], "rank 0 writes")
        XCTAssertThrowsError(
            try ThreadedJob.run(processes: 2) { reducer in
                try Trainer(
                    model: try plainModel(), optimizer: try SGD(learningRate: 0.1),
                    data: AnySource(try WindowBatches(w, batchSize: 4)),
                    reducer: reducer
                ) { try meanSquaredError(predictions: $0, targets: $1) }
            }
        ) {
            XCTAssertTrue("\($0)".hasPrefix("a data-parallel job needs data that give each process its rows"), "\($0)")
        }
    }

    /// A batch source that cannot shard (a user's own type).
    private struct AnySource: BatchSource {
        let wrapped: WindowBatches<Float>
        init(_ wrapped: WindowBatches<Float>) { self.wrapped = wrapped }
        var batchesPerEpoch: Int { wrapped.batchesPerEpoch }
        func batch(epoch: Int, index: Int) throws -> Batch<SequenceBatch<Float>, Tensor<Float>> {
            try wrapped.batch(epoch: epoch, index: index)
        }
    }

    func testStopsOnTimeAndRefusesNonFiniteLosses() throws {
        let timed = try makeTrainer(try makeModel(seed: 9), options: TrainerOptions(epochs: 5, timeLimitSeconds: 1e-9))
        XCTAssertFalse(try timed.train())
        XCTAssertEqual(timed.step, 1, "the limit is checked after every update")
        let limited = try makeTrainer(try makeModel(seed: 9), options: TrainerOptions(epochs: 5, maxUpdates: 10))
        XCTAssertTrue(try limited.train())
        XCTAssertEqual(limited.step, 10)
        let nan = try Trainer(model: try makeModel(seed: 9), optimizer: try SGD(learningRate: 0.1), data: timed.data) {
            output, _ in
            (Double.nan, Tensor(zeros: output.shape))
        }
        XCTAssertThrowsError(try nan.train()) {
            XCTAssertEqual(
                "\($0)",
                "training stopped: loss is nan at update 1 (epoch 1); try a lower learning rate, clipping, or "
                    + "skipNonFinite"
            )
        }
        let skipping = try Trainer(
            model: try makeModel(seed: 9), optimizer: try SGD(learningRate: 0.1), data: timed.data,
            options: TrainerOptions(epochs: 1, skipNonFinite: true)
        ) { output, _ in (Double.nan, Tensor(zeros: output.shape)) }
        XCTAssertTrue(try skipping.train())
        XCTAssertEqual(skipping.skippedSteps, timed.data.batchesPerEpoch)
        XCTAssertEqual(skipping.step, 0)
    }

    func testRefusesCheckpointsItCannotContinue() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-bad-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trainer = try makeTrainer(try makeModel(seed: 1), options: TrainerOptions(epochs: 2, seed: 1))
        try trainer.train(shouldStop: { true })
        try trainer.save(to: folder + "/run.safetensors")
        let before = values(trainer.model.parameters)
        let other = try makeTrainer(try makeModel(seed: 2), options: TrainerOptions(epochs: 2, clip: 3, seed: 1))
        XCTAssertThrowsError(try other.restore(from: folder + "/run.safetensors")) {
            XCTAssertTrue(
                "\($0)".hasSuffix(
                    "it was trained with other options (only epochs, maxUpdates, timeLimitSeconds, validateEvery, "
                        + "earlyStopPatience and the output paths may change)"
                ), "\($0)")
        }
        XCTAssertNotEqual(values(other.model.parameters), before, "nothing was loaded")
        try trainer.model.parameters.save(to: folder + "/plain.safetensors")
        XCTAssertThrowsError(try other.restore(from: folder + "/plain.safetensors")) {
            XCTAssertTrue("\($0)".contains("no training metadata"), "\($0)")
        }
        let longer = try makeTrainer(
            try makeModel(seed: 2), options: TrainerOptions(epochs: 5, timeLimitSeconds: 60, seed: 1))
        XCTAssertNoThrow(try longer.restore(from: folder + "/run.safetensors"), "length and time limit may change")
        XCTAssertEqual(values(longer.model.parameters), before)
    }

    func testTokenSequenceBatchesTrainAClassifier() throws {
        var g = SeededGenerator(seed: 3)
        let sequences = (0..<64).map { _ in (0..<(2 + g.nextInt(below: 6))).map { _ in g.nextInt(below: 3) } }
        let labels = sequences.map { $0.last! == $0.first! ? 1 : 0 }
        let data = try TokenSequenceBatches<Float>(
            sequences: sequences, labels: labels, batchSize: 16, seed: 1, bucketByLength: true)
        let model = try Sequential {
            ("emb", try Embedding<Float>(vocabularySize: 3, dimension: 4, generator: &g))
            ("gru", try GRU<Float>(inputSize: 4, hiddenSize: 8, bidirectional: true, generator: &g))
            FinalHiddenState<Float>()
            ("head", try Linear<Float>(inputSize: 16, outputSize: 2, generator: &g))
        }
        let trainer = try Trainer(
            model: model, optimizer: try Adam(learningRate: 0.02), data: data, options: TrainerOptions(epochs: 3)
        ) {
            try softmaxCrossEntropy(logits: $0, targets: $1, ignoreIndex: nil)
        }
        try trainer.train()
        XCTAssertEqual(trainer.history.count, 3)
        XCTAssertTrue(trainer.history.allSatisfy { $0.trainingLoss.isFinite && $0.validationLoss == nil })
    }
}
