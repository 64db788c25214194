// A Trainer's checkpoint: the model's parameter file (CheckpointFormat, with the optimizer's state) plus the
// trainer's state as JSON in the metadata `training`, so one format holds any model's training run.

import Foundation

/// Everything a ``Trainer`` needs to continue exactly, beside the parameters, the optimizer's state and a
/// ``StatefulLayer``'s carried state: what ``Trainer/save(to:metadata:)`` writes as JSON, and what a trainer of
/// your own format reads with ``Trainer/state`` and puts back with ``Trainer/restore(state:)``.
public struct TrainerState: Codable, Equatable, Sendable {
    /// The options of the run.
    public var options: TrainerOptions
    /// The epoch (from 0) and the batches done in it.
    public var position: BatchSampler.Position
    /// Updates applied, and updates skipped for NaN or infinite values.
    public var step: Int, skippedSteps: Int
    /// The best validation loss, its update, the measurements since, and whether early stopping ended the run.
    public var bestValidationLoss: Double?, bestValidationStep: Int, measurementsSinceBest: Int, stoppedEarly: Bool
    /// One summary per finished epoch, and every validation measurement.
    public var history: [EpochSummary], validations: [ValidationReport]
    /// The current epoch's sums: loss x examples, examples, gradient norms, updates, seconds.
    public var lossSum: Double, exampleCount: Int, normSum: Double, updatesInEpoch: Int, epochSeconds: Double
    /// Seconds of training in all earlier runs.
    public var elapsedSeconds: Double
    /// The optimizer's current and base learning rates.
    public var learningRate: Double, baseLearningRate: Double
    /// The kernels' level the run used (a `Kernels.Level` name).
    public var kernelLevel: String
    /// The matrix products' blocking the run used (``Kernels/Blocking/description``), nil in states written before it
    /// was recorded. A resume is bit-exact where the level agrees and ``Kernels/Blocking/sumsLike(_:)`` holds.
    public var kernelBlocking: String?
    /// How the run's bfloat16 products were computed (``Kernels/bfloat16Products``), nil in states written before it
    /// was recorded. Only a run with ``ProductPrecision/bfloat16`` products depends on it.
    public var kernelBFloat16Products: String?
    /// The cosine schedule's length fixed under a time limit, or nil.
    public var calibratedUpdates: Int?
    /// The ``RandomStream/continuous`` generator's four state words (decimal), nil in files written before it existed.
    public var streamGenerator: [String]?

    /// A state from its fields (see each property).
    public init(
        options: TrainerOptions, position: BatchSampler.Position, step: Int, skippedSteps: Int,
        bestValidationLoss: Double?,
        bestValidationStep: Int, measurementsSinceBest: Int, stoppedEarly: Bool, history: [EpochSummary],
        validations: [ValidationReport],
        lossSum: Double, exampleCount: Int, normSum: Double, updatesInEpoch: Int, epochSeconds: Double,
        elapsedSeconds: Double,
        learningRate: Double, baseLearningRate: Double, kernelLevel: String, calibratedUpdates: Int?,
        streamGenerator: [String]?, kernelBlocking: String? = nil, kernelBFloat16Products: String? = nil
    ) {
        (self.options, self.position, self.step, self.skippedSteps) = (options, position, step, skippedSteps)
        (self.bestValidationLoss, self.bestValidationStep, self.measurementsSinceBest, self.stoppedEarly) =
            (bestValidationLoss, bestValidationStep, measurementsSinceBest, stoppedEarly)
        (self.history, self.validations, self.lossSum, self.exampleCount, self.normSum) = (
            history, validations, lossSum, exampleCount, normSum
        )
        (self.updatesInEpoch, self.epochSeconds, self.elapsedSeconds, self.learningRate) = (
            updatesInEpoch, epochSeconds, elapsedSeconds, learningRate
        )
        (self.baseLearningRate, self.kernelLevel, self.calibratedUpdates, self.streamGenerator) = (
            baseLearningRate, kernelLevel, calibratedUpdates, streamGenerator
        )
        (self.kernelBlocking, self.kernelBFloat16Products) = (kernelBlocking, kernelBFloat16Products)
    }
}

extension Trainer {
    /// The metadata key holding the trainer's state (JSON): `training`, as in every ``CheckpointFormat`` file.
    public static var stateKey: String { "training" }
    /// Where checkpoints of earlier slices of this Trainer (before ``CheckpointFormat`` version 3) held it.
    static var earlierStateKey: String { "trainer.state" }

    /// Saves the parameters, the optimizer's state and the trainer's state to `path` atomically (the previous file
    /// stays intact on any failure), in ``CheckpointFormat``; in a data-parallel job only rank 0 writes (every process
    /// holds the same state). `ParameterStore.load(from:optimizer:)` reads its parameters, and PyTorch's
    /// `safetensors` reads them by name (the `_trainer.` tensors aside).
    /// - Parameters:
    ///   - path: the file.
    ///   - metadata: your own strings (e.g. a `model` description to rebuild it from); `format`, `library_version`,
    ///     `kernel_level`, `kernel_blocking`, `optimizer.*` and `training` are reserved.
    /// A ``StatefulLayer`` model's carried state is saved as `_trainer.state.h` (and `.c`) in the middle of an epoch.
    /// - Throws: also when, in a data-parallel job, a ``StatefulLayer`` model carries its state into the next batch
    ///   (each process carries its own rows: save between epochs, or with `LanguageModelTrainer.checkpoint()`, which
    ///   gathers them).
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        guard metadata[Self.stateKey] == nil else {
            throw RecurrentKitError("metadata key '\(Self.stateKey)' is reserved")
        }
        let carries = stateful.map { $0.isCarryingState && position.batch > 0 } ?? false
        if carries, reducer.processCount > 1 {
            throw RecurrentKitError(
                "the model carries each process's rows of its state into the next batch, which one file does not "
                    + "gather: save between epochs, or with LanguageModelTrainer.checkpoint()"
            )
        }
        guard reducer.rank == 0 else { return }
        var all = metadata
        all[Self.stateKey] = try Self.encode(state)
        var file = try model.parameters.checkpointFile(metadata: all, optimizer: optimizer)
        if carries, let stateful { try stateful.writeCarriedState(into: &file, prefix: Self.carriedStatePrefix) }
        try writeFileAtomically(try file.serialized(), to: path)
    }

    /// Where a checkpoint holds a ``StatefulLayer``'s carried state (``CheckpointFormat``).
    static var carriedStatePrefix: String { CheckpointFormat.trainingTensorPrefix + "state." }

    /// Continues the run saved at `path`: parameters, optimizer moments, dropout stream, position, best validation,
    /// history. Build this trainer exactly as the saved one was (model, optimizer, data, loss); the options may
    /// differ only in the length, the time limit, the validation cadence, the patience and the output paths (this
    /// trainer's options are kept).
    /// - Returns: the file's metadata (your keys and the reserved ones).
    /// - Throws: one line when the file is not a trainer checkpoint of this model and optimizer, or its state is
    ///   inconsistent; nothing changes then.
    @discardableResult
    public func restore(from path: String) throws -> [String: String] {
        // Check the state before anything is loaded, so a bad file changes nothing.
        let bytes = try readFileBytes(path, what: "trainer checkpoint")
        let header = try SafetensorsFile(bytes: bytes)
        do { _ = try CheckpointFormat.version(of: header.metadata) } catch let error as RecurrentKitError {
            throw RecurrentKitError("trainer checkpoint \(path): \(error.message)")
        }
        guard let json = header.metadata[Self.stateKey] ?? header.metadata[Self.earlierStateKey] else {
            throw RecurrentKitError(
                "trainer checkpoint \(path): no \(Self.stateKey) metadata (a parameter file without a training run?)")
        }
        let saved: TrainerState
        do { saved = try JSONDecoder.trainerState.decode(TrainerState.self, from: Foundation.Data(json.utf8)) } catch {
            throw RecurrentKitError(
                "trainer checkpoint \(path): its \(Self.stateKey) metadata is not a Trainer's state (a language "
                    + "model's checkpoint resumes with LanguageModelTrainer)"
            )
        }
        let stream = try check(saved, source: "trainer checkpoint \(path)")
        do { try stateful?.readCarriedState(from: header, prefix: Self.carriedStatePrefix) } catch let error
            as RecurrentKitError
        {
            throw RecurrentKitError("trainer checkpoint \(path): \(error.message)")
        }
        let metadata: [String: String]
        do { metadata = try model.parameters.load(serialized: bytes, optimizer: optimizer) } catch {
            stateful?.resetCarriedState()
            throw error
        }
        apply(saved, stream: stream)
        return metadata
    }

    /// The run's position, counters, sums, best validation, history and random stream, for a checkpoint format of
    /// your own (``save(to:metadata:)`` writes it as JSON); the parameters and the optimizer's state are saved apart.
    public var state: TrainerState {
        TrainerState(
            options: options, position: position, step: step, skippedSteps: skippedSteps,
            bestValidationLoss: bestValidationLoss, bestValidationStep: bestValidationStep,
            measurementsSinceBest: measurementsSinceBest, stoppedEarly: stoppedEarly, history: history,
            validations: validations,
            lossSum: lossSum, exampleCount: exampleCount, normSum: normSum, updatesInEpoch: updatesInEpoch,
            epochSeconds: epochSeconds, elapsedSeconds: elapsedBefore, learningRate: optimizer.learningRate,
            baseLearningRate: baseLearningRate, kernelLevel: Kernels.activeLevel.name,
            calibratedUpdates: calibratedUpdates,
            streamGenerator: streamGenerator.decimalWords, kernelBlocking: Kernels.blocking.description,
            kernelBFloat16Products: Kernels.bfloat16Products)
    }

    /// Puts back a state ``state`` returned (restore the parameters and the optimizer's state yourself).
    /// - Throws: one line when the state does not fit this trainer (other options, counters that disagree, a
    ///   position outside the data); nothing changes then.
    public func restore(state saved: TrainerState) throws {
        apply(saved, stream: try check(saved, source: "trainer state"))
    }

    /// Throws one line unless `saved` is a state this trainer can continue; returns its random stream.
    private func check(_ saved: TrainerState, source: String) throws -> SeededGenerator {
        func bad(_ why: String) -> RecurrentKitError { RecurrentKitError("\(source): \(why)") }
        guard saved.options.allowsResuming(as: options) else {
            throw bad(
                "it was trained with other options (only epochs, maxUpdates, timeLimitSeconds, validateEvery, "
                    + "earlyStopPatience and the output paths may change)"
            )
        }
        guard saved.baseLearningRate == baseLearningRate else {
            throw bad("its base learning rate \(saved.baseLearningRate) is not the optimizer's \(baseLearningRate)")
        }
        guard saved.position.epoch >= 0, saved.position.epoch <= max(options.epochs, saved.options.epochs),
            saved.position.batch >= 0,
            saved.position.batch <= data.batchCount(epoch: saved.position.epoch)
        else {
            throw bad(
                "position epoch \(saved.position.epoch), batch \(saved.position.batch) is outside the data's "
                    + "\(data.batchCount(epoch: max(saved.position.epoch, 0))) batches per epoch"
            )
        }
        // Sources whose epochs differ in length have at most one batch more than batchesPerEpoch in any epoch. The
        // finished epochs' own lengths are not known here (a source positioned at the resumed epoch draws no earlier
        // one, and this epoch's length says nothing of theirs), so each may have had one more.
        let perEpoch = data.batchesPerEpoch + 1
        // Between epochs (batch 0) the sums are still the finished epoch's.
        guard saved.step >= 0, saved.skippedSteps >= 0, saved.updatesInEpoch >= 0,
            saved.updatesInEpoch <= (saved.position.batch == 0 ? data.batchesPerEpoch + 1 : saved.position.batch),
            saved.step <= saved.position.epoch * perEpoch + saved.position.batch,
            saved.exampleCount >= 0, saved.history.count == saved.position.epoch || saved.stoppedEarly
        else {
            throw bad(
                "its counters do not agree (step \(saved.step), position "
                    + "\(saved.position.epoch).\(saved.position.batch), \(saved.history.count) epochs of history)"
            )
        }
        if let path = saved.kernelBFloat16Products, !Kernels.bfloat16ProductPaths.contains(path) {
            throw bad(
                "its bfloat16 product path '\(path.prefix(40))' is not one of \(Kernels.bfloat16ProductPaths.sorted())")
        }
        // A schedule fixed under a time limit may be shorter than the updates run since (faster updates than timed,
        // or a resume with more time): the rate then stays at its minimum. It is at least 1 update.
        if let calibrated = saved.calibratedUpdates, calibrated < 1 {
            throw bad("its cosine schedule length \(calibrated) is not a positive number of updates")
        }
        guard saved.lossSum.isFinite, saved.normSum.isFinite, saved.learningRate.isFinite, saved.learningRate >= 0,
            saved.epochSeconds >= 0, saved.elapsedSeconds >= 0
        else {
            throw bad("its running sums are not finite")
        }
        guard let words = saved.streamGenerator else { return SeededGenerator(seed: options.seed) }
        guard let stream = SeededGenerator(decimalWords: words) else {
            throw bad("its random stream is not four decimal words, not all zero")
        }
        return stream
    }

    private func apply(_ saved: TrainerState, stream: SeededGenerator) {
        streamGenerator = stream
        position = saved.position
        (step, skippedSteps) = (saved.step, saved.skippedSteps)
        (bestValidationLoss, bestValidationStep, measurementsSinceBest) = (
            saved.bestValidationLoss, saved.bestValidationStep, saved.measurementsSinceBest
        )
        (stoppedEarly, history, validations) = (saved.stoppedEarly, saved.history, saved.validations)
        (lossSum, exampleCount, normSum, updatesInEpoch) = (
            saved.lossSum, saved.exampleCount, saved.normSum, saved.updatesInEpoch
        )
        (epochSeconds, elapsedBefore) = (saved.epochSeconds, saved.elapsedSeconds)
        optimizer.learningRate = saved.learningRate
        calibratedUpdates = saved.calibratedUpdates
    }

    /// Rewrites the metrics file (one JSON object per line: every epoch summary, then every validation) atomically.
    func writeMetrics() throws {
        guard reducer.rank == 0, let path = options.metricsPath else { return }
        var lines: [String] = []
        for summary in history {
            lines.append(try Self.encode(MetricsLine(event: "epoch", epoch: summary, validation: nil)))
        }
        for report in validations {
            lines.append(try Self.encode(MetricsLine(event: "validation", epoch: nil, validation: report)))
        }
        try writeFileAtomically(Array((lines.joined(separator: "\n") + "\n").utf8), to: path)
    }

    private static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// One line of a trainer's metrics file.
private struct MetricsLine: Encodable {
    var event: String
    var epoch: EpochSummary?
    var validation: ValidationReport?
}

extension JSONDecoder {
    /// A decoder for trainer states (non-finite numbers as the encoder writes them).
    fileprivate static var trainerState: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}
