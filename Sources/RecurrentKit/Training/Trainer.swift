// The training loop for any model made of layers: per batch, zero the gradients, forward, loss, backward (the
// layers' own, chained by the model), clip, update; validation, early stopping, best checkpoint, time limit.

/// Trains a model (any ``Layer`` with parameters, e.g. a ``Sequential``) on batches from a ``BatchSource`` with a
/// loss you choose, as PyTorch's usual loop does:
///
/// ```swift
/// let trainer = try Trainer(model: model, optimizer: try Adam(learningRate: 0.01), data: train, validation: held,
///                           options: TrainerOptions(epochs: 30, clip: 1, earlyStopPatience: 3)) {
///     try meanSquaredError(predictions: $0, targets: $1)
/// }
/// try trainer.train()
/// ```
///
/// The model is in training mode during updates and in evaluation mode while it is validated. Dropout masks come from a
/// generator seeded by the options' seed, the batch's position and the process's rank, so they do not depend on how a
/// run was interrupted (or, with ``RandomStream/continuous``, from one stream through the run). A model that carries
/// its state between batches (a ``StatefulLayer``, e.g. a language model reading a text in order) restarts from zeros
/// at every epoch and at every batch whose ``Batch/resetsState`` is set, and carries the final state of every applied
/// update into the next batch. A trainer can stop after any update (time limit, `shouldStop`) and be saved with
/// ``save(to:metadata:)``; a trainer built the same way and ``restore(from:)`` continues bit-identically (weights,
/// optimizer moments, position, best validation, history).
///
/// Data-parallel: with a ``ShardableBatchSource`` (``WindowBatches``, ``TokenSequenceBatches``) and a
/// ``GradientReducer`` of several processes (e.g. `RecurrentKitMPI`'s `MPIReducer`), every process runs its rows of
/// each batch (``BatchShard``: every batch needs at least one row per process), the gradients, scaled by B_r/B, are
/// summed with one call per update, and every process applies the same update; validation is sharded the same way and
/// stop decisions are collective. The result matches one process up to the summation order, except that each
/// process draws its own dropout masks. Files (best parameters, metrics, ``save(to:metadata:)``) are written by rank
/// 0 only.
public final class Trainer<Model: Layer & ParameterizedLayer, Data: BatchSource> where Data.Input == Model.Input {
    /// The loss of one batch and its gradient with respect to the model's output.
    public typealias LossFunction = (Model.Output, Data.Target) throws -> (
        loss: Double, gradient: Model.Output.Gradient
    )

    /// The model being trained.
    public let model: Model
    /// The optimizer, applied to `model.parameters` after every batch.
    public let optimizer: Optimizer
    /// The training batches.
    public let data: Data
    /// The validation batches, or nil.
    public let validationData: Data?
    /// The loss.
    public let loss: LossFunction
    /// The options (validated).
    public internal(set) var options: TrainerOptions
    /// Sums gradients, losses and decisions across the processes of a data-parallel job (one process by default).
    public let reducer: GradientReducer
    /// Measures the validation loss instead of ``meanLoss(on:)`` over validation data (nil: the data's mean loss).
    public let validationMeasure: ((Model) throws -> Double)?
    /// This process's rows of a batch (nil with one process).
    let shardedBatch: ((Data, Int, Int, BatchShard, inout Batch<Data.Input, Data.Target>?) throws -> Void)?
    /// Rows of a global batch (nil with one process).
    let globalRows: ((Data, Int, Int) -> Int)?
    /// Updates applied (skipped ones excluded).
    public internal(set) var step = 0
    /// Updates skipped for NaN or infinite values.
    public internal(set) var skippedSteps = 0
    /// The current epoch (from 0) and the batches done in it.
    public internal(set) var position = BatchSampler.Position(epoch: 0, batch: 0)
    /// One summary per finished epoch.
    public internal(set) var history: [EpochSummary] = []
    /// The lowest validation loss so far, and the update it was measured at.
    public internal(set) var bestValidationLoss: Double?
    /// The update at which ``bestValidationLoss`` was measured.
    public internal(set) var bestValidationStep = 0
    /// Validation measurements since the best one.
    public internal(set) var measurementsSinceBest = 0
    /// Whether early stopping ended the run.
    public internal(set) var stoppedEarly = false
    /// The optimizer's learning rate when the trainer was made (a schedule's base rate).
    public let baseLearningRate: Double
    /// The generator of a ``RandomStream/continuous`` run, where the next update draws from (seeded by the options).
    public internal(set) var streamGenerator: SeededGenerator
    /// Seconds this process has spent in the reducer's sums during updates (gradients, loss, stop decisions), waiting
    /// for the slowest process included; 0 with one process.
    public private(set) var reductionSeconds = 0.0
    /// Updates that ``reductionSeconds`` covers.
    public private(set) var reducedUpdates = 0
    /// The model as a ``StatefulLayer``, when it carries its state between batches.
    let stateful: StatefulLayer?
    var collective = [0.0, 0.0]  // per-update sums of scalars, reused
    // The last training and validation batches, whose storage the next ones reuse.
    private var trainingBatch: Batch<Data.Input, Data.Target>?
    var validationBatch: Batch<Data.Input, Data.Target>?
    // The running sums of the current epoch, and seconds trained before this run (a resumed trainer).
    var lossSum = 0.0, exampleCount = 0, normSum = 0.0, updatesInEpoch = 0, epochSeconds = 0.0, elapsedBefore = 0.0

    /// A trainer.
    /// - Parameters:
    ///   - model: the model; its parameters are updated in place.
    ///   - optimizer: updates the parameters (its learning rate is the schedule's base).
    ///   - data: the training batches.
    ///   - validation: batches to measure the loss on (in evaluation mode), or nil.
    ///   - options: the run's options.
    ///   - reducer: one process (the default); a data-parallel job needs a ``ShardableBatchSource``.
    ///   - measureValidation: measures the validation loss of the model yourself (e.g. a language model reading its
    ///     held-out text as one stream), instead of the mean loss over `validation`; in a data-parallel job every
    ///     process must return the same figure. nil (default): the mean loss over `validation`.
    ///   - loss: the loss of a batch's output and target, and its gradient.
    /// - Throws: on invalid options, a data source without batches, or several processes with data that cannot be
    ///   sharded.
    public convenience init(
        model: Model, optimizer: Optimizer, data: Data, validation: Data? = nil,
        options: TrainerOptions = TrainerOptions(),
        reducer: GradientReducer = SingleProcessReducer(), measureValidation: ((Model) throws -> Double)? = nil,
        loss: @escaping LossFunction
    ) throws {
        guard reducer.processCount == 1 else {
            throw RecurrentKitError(
                "a data-parallel job needs data that give each process its rows (a ShardableBatchSource such as "
                    + "WindowBatches or TokenSequenceBatches)"
            )
        }
        try self.init(
            model: model, optimizer: optimizer, data: data, validation: validation, options: options, reducer: reducer,
            measureValidation: measureValidation, shardedBatch: nil, globalRows: nil, loss: loss)
    }

    init(
        model: Model, optimizer: Optimizer, data: Data, validation: Data?, options: TrainerOptions,
        reducer: GradientReducer,
        measureValidation: ((Model) throws -> Double)?,
        shardedBatch: ((Data, Int, Int, BatchShard, inout Batch<Data.Input, Data.Target>?) throws -> Void)?,
        globalRows: ((Data, Int, Int) -> Int)?,
        loss: @escaping LossFunction
    ) throws {
        try options.validate()
        guard data.batchesPerEpoch >= 1 else { throw RecurrentKitError("the training data have no batch") }
        if let validation, validation.batchesPerEpoch < 1 {
            throw RecurrentKitError("the validation data have no batch")
        }
        (self.model, self.optimizer, self.data, validationData, self.options, self.loss) = (
            model, optimizer, data, validation, options, loss
        )
        (self.reducer, self.shardedBatch, self.globalRows, validationMeasure) = (
            reducer, shardedBatch, globalRows, measureValidation
        )
        baseLearningRate = optimizer.learningRate
        streamGenerator = SeededGenerator(seed: options.seed)
        stateful = model as? StatefulLayer
    }

    /// Whether the run measures a validation loss (validation data or ``validationMeasure``).
    public var validates: Bool { validationData != nil || validationMeasure != nil }

    /// The generator of the dropout masks of batch `index` of epoch `epoch` on this process.
    public func maskGenerator(epoch: Int, index: Int) -> SeededGenerator {
        var mix = SeededGenerator(seed: options.seed)
        let a = mix.next() ^ UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15
        let b = mix.next() ^ UInt64(truncatingIfNeeded: index) &* 0xBF58_476D_1CE4_E5B9
        return SeededGenerator(seed: a ^ (b >> 1) ^ UInt64(truncatingIfNeeded: reducer.rank) &* 0x94D0_49BB_1331_11EB)
    }

    /// This process's rows of batch `index` of `source`'s epoch `epoch`, their share of the global batch's rows, and
    /// the global batch's example count; `reuse` holds the previous batch's storage.
    func localBatch(
        _ source: Data, epoch: Int, index: Int, reuse: inout Batch<Data.Input, Data.Target>?
    ) throws
        -> (batch: Batch<Data.Input, Data.Target>, share: Double, globalCount: Int)
    {
        guard let shardedBatch, let globalRows, reducer.processCount > 1 else {
            try source.batch(epoch: epoch, index: index, into: &reuse)
            let batch = reuse!
            return (batch, 1, batch.count)
        }
        let rows = globalRows(source, epoch, index)
        let shard = try reducer.shard(ofBatch: rows)
        try shardedBatch(source, epoch, index, shard, &reuse)
        let batch = reuse!
        // Every row holds the same number of examples (a ShardableBatchSource's promise), so the global count scales.
        return (batch, Double(shard.count) / Double(rows), batch.count / shard.count * rows)
    }

    /// True when every epoch has run, `maxUpdates` is reached, or early stopping ended the run.
    public var isFinished: Bool {
        position.epoch >= options.epochs || stoppedEarly || options.maxUpdates.map { step >= $0 } ?? false
    }

    /// Updates a learning-rate schedule spreads over: every batch of every epoch, or `maxUpdates` when smaller; under a
    /// time limit with a cosine schedule, the updates that fit in the limit, measured once after a few updates (so
    /// the rate reaches its minimum when time is up).
    public var scheduledUpdates: Int {
        if let calibratedUpdates { return calibratedUpdates }
        let (all, overflow) = options.epochs.multipliedReportingOverflow(by: data.batchesPerEpoch)
        return min(overflow ? Int.max : all, options.maxUpdates ?? Int.max)
    }

    /// The cosine schedule's length fixed from the measured speed under a time limit (nil until then, or without).
    public internal(set) var calibratedUpdates: Int?
    /// Updates run before the calibration starts timing (the first ones touch fresh memory and start threads).
    public static var calibrationWarmUp: Int { 3 }
    /// Updates timed to fix the cosine's length.
    public static var calibrationUpdates: Int { 10 }

    /// Changes the run's length or time limit (e.g. before resuming a finished run with more epochs).
    /// - Throws: when the options are invalid or change anything but the length, the time limit, the validation
    ///   cadence, the patience and the output paths.
    public func setOptions(_ newOptions: TrainerOptions) throws {
        try newOptions.validate()
        guard options.allowsResuming(as: newOptions) else {
            throw RecurrentKitError(
                "only epochs, maxUpdates, timeLimitSeconds, validateEvery, earlyStopPatience and the output paths may "
                    + "change during a run"
            )
        }
        options = newOptions
    }

    /// Trains until every epoch is done, `maxUpdates`, early stopping, the time limit, or `shouldStop`.
    /// - Parameters:
    ///   - progress: receives every update, epoch and validation event.
    ///   - shouldStop: checked after every update; return true to stop (the trainer can be saved and resumed).
    ///   - afterStep: called after every update (after the epoch's summary and validation when it ends the epoch),
    ///     e.g. to save a checkpoint every N updates.
    ///   - afterValidation: called after every validation measurement, while the model is the one measured (e.g. to
    ///     save it when the report `isBest`).
    /// - Returns: true when the run is finished, false when it stopped early and can continue.
    /// - Throws: naming the update, when the loss or the gradient norm is NaN or infinite (unless `skipNonFinite`), or
    ///   when a layer, the loss or a file write throws.
    @discardableResult
    public func train(
        progress: (TrainerEvent) -> Void = { _ in }, shouldStop: () -> Bool = { false },
        afterStep: (Trainer) throws -> Void = { _ in },
        afterValidation: (Trainer, ValidationReport) throws -> Void = { _, _ in }
    ) throws -> Bool {
        let start = monotonicSeconds()
        defer { elapsedBefore += monotonicSeconds() - start }
        var usesCosine = false
        if case .cosine = options.learningRateSchedule { usesCosine = true }
        let calibrates = usesCosine && options.timeLimitSeconds != nil && calibratedUpdates == nil
        let calibrationStart = step
        var timingStart: Double? = nil
        let continuous = options.randomStream == .continuous
        while !isFinished {
            let perEpoch = data.batchCount(epoch: position.epoch)
            let updateStart = monotonicSeconds()
            let (batch, share, globalCount) = try localBatch(
                data, epoch: position.epoch, index: position.batch, reuse: &trainingBatch)
            model.setTraining(true)
            // a new epoch
            if position.batch == 0 { (lossSum, exampleCount, normSum, updatesInEpoch, epochSeconds) = (0, 0, 0, 0, 0) }
            if let stateful, position.batch == 0 || batch.resetsState { stateful.resetCarriedState() }
            model.parameters.zeroGradients()
            var generator = continuous ? streamGenerator : maskGenerator(epoch: position.epoch, index: position.batch)
            var batchLoss = try Kernels.withProductPrecision(options.precision) {
                let (output, record) = try model.forward(batch.input, generator: &generator)
                let computed = try loss(output, batch.target)
                _ = try model.backward(record, outputGradient: computed.gradient)
                return computed.loss
            }
            if continuous { streamGenerator = generator }
            if reducer.processCount > 1 {
                // This process's share of the global mean: its rows' mean loss and gradients times B_r/B, summed.
                let reductionStart = monotonicSeconds()
                model.parameters.scaleGradients(by: Model.Scalar(share))
                try reducer.sumGradients(model.parameters)
                batchLoss = try collectiveSum(batchLoss * share).0
                reductionSeconds += monotonicSeconds() - reductionStart
                reducedUpdates += 1
            }
            var norm = Double.nan
            if batchLoss.isFinite {
                norm =
                    options.clip > 0
                    ? (try? clipGradientNorm(model.parameters, maxNorm: options.clip, style: options.clipStyle)) ?? .nan
                    : model.parameters.gradientSquaredNorm().squareRoot()
            }
            let skipped = !batchLoss.isFinite || !norm.isFinite
            if skipped {
                guard options.skipNonFinite else {
                    throw RecurrentKitError(
                        "training stopped: \(batchLoss.isFinite ? "gradient norm" : "loss") is "
                            + "\(batchLoss.isFinite ? norm : batchLoss) at update \(step + 1) (epoch "
                            + "\(position.epoch + 1)); try a lower learning rate, clipping, or skipNonFinite"
                    )
                }
                skippedSteps += 1
                stateful?.resetCarriedState()  // the state may hold NaN now
            } else {
                if let schedule = options.learningRateSchedule {
                    optimizer.learningRate = schedule.learningRate(
                        base: baseLearningRate, update: step, totalUpdates: scheduledUpdates)
                }
                try optimizer.step(model.parameters)
                step += 1
                try stateful?.carryFinalState()
                lossSum += batchLoss * Double(globalCount)
                exampleCount += globalCount
                normSum += norm
                updatesInEpoch += 1
            }
            position.batch += 1
            epochSeconds += monotonicSeconds() - updateStart
            let updatesLeft =
                Double(perEpoch - position.batch) + Double(options.epochs - position.epoch - 1) * Double(perEpoch)
            progress(
                .update(
                    UpdateReport(
                        epoch: position.epoch + 1, batch: position.batch, batchesPerEpoch: perEpoch, step: step,
                        loss: batchLoss, gradientNorm: norm, learningRate: optimizer.learningRate, skipped: skipped,
                        epochMeanLoss: lossSum / Double(max(exampleCount, 1)),
                        examplesPerSecond: Double(exampleCount) / max(epochSeconds, 1e-9),
                        secondsLeft: updatesLeft * epochSeconds / Double(position.batch))))
            if calibrates, calibratedUpdates == nil, let limit = options.timeLimitSeconds {
                if step - calibrationStart == Self.calibrationWarmUp { timingStart = monotonicSeconds() }
                if let timingStart, step - calibrationStart >= Self.calibrationWarmUp + Self.calibrationUpdates {
                    // The updates that fit in what is left of the limit at the measured speed; rank 0's clock decides.
                    let perUpdate =
                        (monotonicSeconds() - timingStart) / Double(step - calibrationStart - Self.calibrationWarmUp)
                    let fit =
                        perUpdate > 0 ? (limit - (monotonicSeconds() - start)) / perUpdate : Double(scheduledUpdates)
                    let length = min(scheduledUpdates, step + max(1, Int(min(fit, Double(scheduledUpdates)))))
                    calibratedUpdates = Int(try reducer.broadcastFromRankZero(Double(length)))
                }
            }
            let epochEnds = position.batch == perEpoch
            if let every = options.validateEvery, !skipped, step % every == 0, !epochEnds, validates {
                try measure(progress: progress, afterValidation: afterValidation)
            }
            if epochEnds {
                try finishEpoch(
                    elapsed: elapsedBefore + monotonicSeconds() - start, progress: progress,
                    afterValidation: afterValidation)
            }
            try afterStep(self)
            if isFinished { break }
            let timeUp = options.timeLimitSeconds.map { monotonicSeconds() - start >= $0 } ?? false
            if try reducer.any(timeUp || shouldStop()) { return false }  // every process stops after the same update
        }
        return true
    }

    /// Closes the epoch: its summary, the validation at its end, the history and metrics.
    private func finishEpoch(
        elapsed: Double, progress: (TrainerEvent) -> Void,
        afterValidation: (Trainer, ValidationReport) throws -> Void
    ) throws {
        var summary = EpochSummary(
            epoch: position.epoch + 1, step: step, trainingLoss: lossSum / Double(max(exampleCount, 1)),
            validationLoss: nil, gradientNorm: normSum / Double(max(updatesInEpoch, 1)),
            examplesPerSecond: Double(exampleCount) / max(epochSeconds, 1e-9), elapsedSeconds: elapsed,
            learningRate: optimizer.learningRate)
        if validates { summary.validationLoss = try measure(progress: progress, afterValidation: afterValidation) }
        history.append(summary)
        progress(.epoch(summary))
        // The sums stay the finished epoch's until the next epoch's first batch (a checkpoint in between keeps them).
        position = BatchSampler.Position(epoch: position.epoch + 1, batch: 0)
        try writeMetrics()
    }

    /// Measures the validation loss, tracks the best (saving it when asked), reports it, applies the patience.
    @discardableResult
    private func measure(
        progress: (TrainerEvent) -> Void, afterValidation: (Trainer, ValidationReport) throws -> Void
    ) throws -> Double {
        let measured = try validationLoss() ?? .nan
        let isBest = measured.isFinite && (bestValidationLoss.map { measured < $0 } ?? true)
        if isBest {
            (bestValidationLoss, bestValidationStep, measurementsSinceBest) = (measured, step, 0)
        } else {
            measurementsSinceBest += 1
        }
        let report = ValidationReport(
            step: step, epoch: position.epoch + 1, loss: measured, isBest: isBest, sinceBest: measurementsSinceBest)
        validations.append(report)
        progress(.validation(report))
        try afterValidation(self, report)
        if isBest, reducer.rank == 0, let path = options.bestCheckpointPath {
            try model.parameters.save(
                to: path, metadata: ["trainer.bestStep": String(step), "trainer.bestLoss": "\(measured)"])
        }
        if let patience = options.earlyStopPatience, measurementsSinceBest >= patience { stoppedEarly = true }
        return measured
    }

    /// Every validation measurement so far.
    public internal(set) var validations: [ValidationReport] = []
}

extension Trainer where Data: ShardableBatchSource {
    /// A trainer whose data can be sharded: with a reducer of several processes, each process runs its rows of every
    /// batch (see ``Trainer``); with one process, the same as the general initializer.
    public convenience init(
        model: Model, optimizer: Optimizer, data: Data, validation: Data? = nil,
        options: TrainerOptions = TrainerOptions(),
        reducer: GradientReducer = SingleProcessReducer(), measureValidation: ((Model) throws -> Double)? = nil,
        loss: @escaping LossFunction
    ) throws {
        try self.init(
            model: model, optimizer: optimizer, data: data, validation: validation, options: options, reducer: reducer,
            measureValidation: measureValidation,
            shardedBatch: { source, epoch, index, shard, batch in
                try source.batch(epoch: epoch, index: index, shard: shard, into: &batch)
            },
            globalRows: { source, epoch, index in source.rowCount(epoch: epoch, index: index) }, loss: loss)
    }
}
