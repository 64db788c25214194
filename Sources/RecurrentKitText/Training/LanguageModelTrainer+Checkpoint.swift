// LanguageModelTrainer's checkpoints: the model, its vocabulary and everything needed to resume exactly, in the one
// file format (CheckpointFormat), with the language-model training state of format versions 1 to 3.

import Foundation
import RecurrentKit

extension LanguageModelTrainer {
    /// The model plus everything needed to resume exactly: options, position, random streams, optimizer moments,
    /// the carried state and the history (tensors under `_trainer.`, which PyTorch loaders should drop).
    ///
    /// In a data-parallel job this is a collective call: every process must make it (the carried state of every
    /// process's rows is gathered, and the processes check that their weights are identical); save the result on one.
    public func checkpoint() throws -> Checkpoint {
        var extra: [String: Tensor<Float>] = [:]
        var extra64: [String: Tensor<Double>] = [:]
        for (name, values) in optimizer.stateBuffers {
            extra64["_trainer.optimizer.\(name)"] = try Tensor(shape: [values.count], scalars: values)
        }
        if reducer.processCount > 1 { try checkReplicasAgree() }
        if let carried = model.carriedState {
            extra["_trainer.state.h"] = try wholeBatch(carried.h)
            if let c = carried.c { extra["_trainer.state.c"] = try wholeBatch(c) }
        }
        let run = trainer.state
        let epoch = run.position.epoch, done = run.position.batch
        // d2l's data stream: the generator the current epoch started from, and where the next epoch's draw starts.
        // Between epochs the last epoch's start is unused on resume (a resumed stream may not know it: then `next`).
        let next = try data.generator(atStartOf: done > 0 ? epoch + 1 : epoch)
        let epochStart =
            done > 0
            ? try data.generator(atStartOf: epoch) : (try? data.generator(atStartOf: max(epoch - 1, 0))) ?? next
        var usesCosine = false
        if case .cosine = options.learningRateSchedule { usesCosine = true }
        let state = LanguageModelTrainingState(
            options: options, epoch: epoch + 1, doneInEpoch: done, step: run.step, skippedSteps: run.skippedSteps,
            optimizerSteps: optimizer.stepCount, learningRate: optimizer.learningRate,
            dataGenerator: next.decimalWords, epochStartGenerator: epochStart.decimalWords,
            dropoutGenerator: trainer.streamGenerator.decimalWords, lossSum: run.lossSum, tokenCount: run.exampleCount,
            normSum: run.normSum, epochSeconds: run.epochSeconds, elapsedSeconds: run.elapsedSeconds, history: history,
            kernelLevel: Kernels.activeLevel.name, kernelBlocking: Kernels.blocking.description,
            kernelBFloat16Products: Kernels.bfloat16Products,
            scheduledUpdates: usesCosine && (run.calibratedUpdates != nil || options.timeLimitSeconds == nil)
                ? trainer.scheduledUpdates : nil,
            bestValidationLoss: run.bestValidationLoss, bestValidationStep: run.bestValidationStep,
            measurementsSinceBest: run.measurementsSinceBest, stoppedEarly: run.stoppedEarly)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // A diverged run records inf/NaN perplexities; they are saved as strings, not refused.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        // What loading checks, checked before anything is written: a state that overflowed (a squared gradient beyond
        // Float's range makes a second moment infinite while the loss stays finite) is never saved over a good one.
        do { try Checkpoint.checkTrainingTensors(extra, extra64) } catch let error as RecurrentKitError {
            throw RecurrentKitError(
                "the training state at update \(run.step) is not saved: no run could resume it (the run diverged): "
                    + "\(error.message)"
            )
        }
        return try Checkpoint(
            model: model, vocabulary: corpus.vocabulary,
            training: String(decoding: try encoder.encode(state), as: UTF8.self),
            extraTensors: extra, extraDoubleTensors: extra64, optimizerStepCount: optimizer.stepCount)
    }

    /// A state (layers, B_r, width) of this shard's rows as the whole batch's (layers, B, width): every process fills
    /// its rows and the sum (exact: the other rows are -0.0) gathers them.
    private func wholeBatch(_ local: Tensor<Float>) throws -> Tensor<Float> {
        guard !shard.isWholeBatch else { return local }
        let layers = local.shape[0], width = local.shape[2], B = shard.globalBatch
        // -0.0 elsewhere: x + (-0.0) == x for every x, -0.0 included, so each row arrives bit for bit.
        var whole = [Float](repeating: -0.0, count: layers * B * width)
        for k in 0..<layers {
            let source = k * shard.count * width, target = (k * B + shard.rows.lowerBound) * width
            whole.replaceSubrange(
                target..<(target + shard.count * width), with: local.scalars[source..<(source + shard.count * width)])
        }
        try whole.withUnsafeMutableBufferPointer { try reducer.sum($0.baseAddress!, count: $0.count) }
        return try Tensor(shape: [layers, B, width], scalars: whole)
    }

    /// This shard's rows (layers, B_r, width) of a whole-batch state (layers, B, width): the layers play the steps.
    private func shardRows(_ whole: Tensor<Float>) throws -> Tensor<Float> {
        guard !shard.isWholeBatch else { return whole }
        var rows: [Float] = []
        shard.gather(whole.scalars, steps: whole.shape[0], width: whole.shape[2], into: &rows)
        return try Tensor(shape: [whole.shape[0], shard.count, whole.shape[2]], scalars: rows)
    }

    /// Every process applies the same update to the same weights, so they must stay bit-identical; a 40-bit hash of
    /// the weights and optimizer step, summed over the processes, must be N times this process's.
    private func checkReplicasAgree() throws {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let values = model.parameters.values
        for i in 0..<model.parameters.count { hash = (hash ^ UInt64(values[i].bitPattern)) &* 0x100_0000_01b3 }
        hash = (hash ^ UInt64(optimizer.stepCount)) &* 0x100_0000_01b3
        let mine = Double(hash >> 24)  // 40 bits, exact in a Double
        // Rank 0's hash to everyone, then whether any process differs from it: every process reaches the same verdict.
        let root = try reducer.broadcastFromRankZero(mine)
        guard try !reducer.any(mine != root) else {
            throw RecurrentKitError(
                "the processes' weights differ at update \(step): the job's processes do not run the same training "
                    + "(same options, text and program on every process?)"
            )
        }
    }

    /// Restores a trainer saved by ``checkpoint()`` so that training continues exactly where it stopped.
    /// - Parameters:
    ///   - checkpoint: a checkpoint with training state.
    ///   - reducer: the data-parallel job this process belongs to (default: one process); any process count that
    ///     the batch allows resumes the same run (the checkpoint holds the whole batch's carried state).
    public convenience init(
        resumingFrom checkpoint: Checkpoint, reducer: GradientReducer = SingleProcessReducer()
    ) throws {
        let state: LanguageModelTrainingState
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { state = try decoder.decode(LanguageModelTrainingState.self, from: Data(checkpoint.training.utf8)) } catch {
            throw RecurrentKitError("checkpoint has no resumable training state (\(shortDescription(error)))")
        }
        try checkpoint.model.configuration.requireCausal(for: "training")
        var options = state.options
        // Before format version 2, `validationFraction` (then always written, 0.1 by default) applied in raw mode only.
        if checkpoint.fileFormatVersion < 2 && options.textMode != .raw { options.validationFraction = nil }
        try options.validate()
        let corpus = try LanguageModelTrainer.prepareCorpus(
            options, allowStreams: false, why: "a corpus named by a checkpoint must be a file")
        try self.init(options: options, corpus: corpus, reducer: reducer)
        try state.validate(
            minibatchesPerEpoch: schedule.minibatchesPerEpoch, tokensPerUpdate: schedule.numSteps * options.batchSize)
        guard corpus.vocabulary == checkpoint.vocabulary else {
            throw RecurrentKitError(
                "the training text now gives a different vocabulary than the checkpoint's; resume needs the same text")
        }
        guard model.configuration == checkpoint.model.configuration else {
            throw RecurrentKitError("checkpoint model does not match its training options")
        }
        try model.parameters.copyValues(from: checkpoint.model.parameters)
        let optimizerPrefix = "_trainer.optimizer."
        if let name = checkpoint.extraTensors.keys.filter({ $0.hasPrefix(optimizerPrefix) }).min() {
            throw RecurrentKitError(
                "checkpoint tensor \(name) is not F64: optimizer state is saved in double precision")
        }
        var buffers: [String: [Double]] = [:]
        for (name, tensor) in checkpoint.extraDoubleTensors where name.hasPrefix(optimizerPrefix) {
            buffers[String(name.dropFirst(optimizerPrefix.count))] = tensor.scalars
        }
        for name in buffers.keys.sorted() where buffers[name]!.count != model.parameters.count {
            throw RecurrentKitError(
                "checkpoint tensor \(optimizerPrefix)\(name) has \(buffers[name]!.count) values for "
                    + "\(model.parameters.count) parameters"
            )
        }
        // Exactly the buffers this optimizer has after `optimizerSteps` updates (none before the first).
        let expected = state.optimizerSteps > 0 ? try LanguageModelTrainer.optimizerBufferNames(options) : []
        if let missing = expected.subtracting(buffers.keys).min() {
            throw RecurrentKitError(
                "checkpoint has no tensor \(optimizerPrefix)\(missing), which \(options.optimizer.rawValue) holds "
                    + "after \(state.optimizerSteps) update(s)"
            )
        }
        if let unexpected = Set(buffers.keys).subtracting(expected).min() {
            throw RecurrentKitError(
                "checkpoint tensor \(optimizerPrefix)\(unexpected) is not state of \(options.optimizer.rawValue)"
                    + (options.momentum > 0 ? " with momentum \(options.momentum)" : "")
                    + " after \(state.optimizerSteps) update(s)")
        }
        if let steps = checkpoint.optimizerStepCount, steps != state.optimizerSteps {
            throw RecurrentKitError(
                "checkpoint optimizer.stepCount \(steps) differs from its training state's optimizerSteps "
                    + "\(state.optimizerSteps)"
            )
        }
        try optimizer.restore(stateBuffers: buffers, stepCount: state.optimizerSteps)
        optimizer.learningRate = state.learningRate
        if checkpoint.extraTensors["_trainer.state.c"] != nil {
            guard model.configuration.cell.hasCellState else {
                throw RecurrentKitError(
                    "checkpoint tensor _trainer.state.c is a carried cell state, but a "
                        + "\(model.configuration.cell.rawValue) model has none"
                )
            }
            guard checkpoint.extraTensors["_trainer.state.h"] != nil else {
                throw RecurrentKitError("checkpoint has a carried cell state _trainer.state.c but no _trainer.state.h")
            }
        }
        var carried: RecurrentState<Float>? = nil
        if let h = checkpoint.extraTensors["_trainer.state.h"] {
            let shape = [model.configuration.numLayers, options.batchSize, model.configuration.hiddenSize]
            try h.requireShape([shape[0], shape[1], model.configuration.recurrent.stateSize], name: "_trainer.state.h")
            let c = checkpoint.extraTensors["_trainer.state.c"]
            if model.configuration.cell.hasCellState {
                guard let c else { throw RecurrentKitError("checkpoint has no carried cell state _trainer.state.c") }
                try c.requireShape(shape, name: "_trainer.state.c")
            }
            carried = RecurrentState(h: try shardRows(h), c: try c.map(shardRows))
        }
        guard state.epoch >= 1, state.doneInEpoch >= 0, state.step >= 0 else {
            throw RecurrentKitError("checkpoint training position is invalid")
        }
        let dataGenerator = try generator(state.dataGenerator),
            epochStartGenerator = try generator(state.epochStartGenerator)
        let stream = try generator(state.dropoutGenerator)
        let epoch = state.epoch - 1, done = state.doneInEpoch
        if done > 0 {
            var rebuilt = epochStartGenerator
            guard done <= schedule.draw(using: &rebuilt).count else {
                throw RecurrentKitError("checkpoint position is past the end of its epoch")
            }
        }
        // The generic trainer's state (between epochs the sums are the last epoch's, which the next epoch zeroes).
        let finished = state.history.prefix(epoch)
        let run = TrainerState(
            options: trainer.options, position: BatchSampler.Position(epoch: epoch, batch: done), step: state.step,
            skippedSteps: state.skippedSteps, bestValidationLoss: state.bestValidationLoss,
            bestValidationStep: state.bestValidationStep ?? 0, measurementsSinceBest: state.measurementsSinceBest ?? 0,
            stoppedEarly: state.stoppedEarly ?? false,
            history: finished.map { r in
                EpochSummary(
                    epoch: r.epoch, step: r.step, trainingLoss: Foundation.log(r.trainPerplexity),
                    validationLoss: r.validationPerplexity.map { Foundation.log($0) }, gradientNorm: r.gradientNorm,
                    examplesPerSecond: r.tokensPerSecond, elapsedSeconds: r.elapsedSeconds,
                    learningRate: r.learningRate ?? state.learningRate)
            }, validations: [],
            lossSum: state.lossSum, exampleCount: state.tokenCount, normSum: state.normSum,
            updatesInEpoch: state.tokenCount / (schedule.numSteps * options.batchSize),
            epochSeconds: state.epochSeconds, elapsedSeconds: state.elapsedSeconds,
            learningRate: state.learningRate, baseLearningRate: trainer.baseLearningRate,
            kernelLevel: state.kernelLevel ?? Kernels.activeLevel.name, calibratedUpdates: state.scheduledUpdates,
            streamGenerator: stream.decimalWords, kernelBlocking: state.kernelBlocking,
            kernelBFloat16Products: state.kernelBFloat16Products)
        data.position(epoch: epoch, generator: done > 0 ? epochStartGenerator : dataGenerator)
        try trainer.restore(state: run)
        model.carriedState = carried
        history = state.history
        savedKernelLevel = state.kernelLevel
        savedKernelBlocking = state.kernelBlocking
        savedBFloat16Products = state.kernelBFloat16Products
    }

    /// The state buffers an optimizer made from `options` holds once it has stepped (e.g. Adam's `exp_avg` and
    /// `exp_avg_sq`, SGD's `momentum_buffer` only with momentum): a fresh one steps once on a single parameter.
    static func optimizerBufferNames(_ options: TrainingOptions) throws -> Set<String> {
        var layout = ParameterLayout()
        layout.append("probe", shape: [1])
        let probe = try options.makeOptimizer()
        try probe.step(ParameterStore<Float>(layout: layout))
        return Set(probe.stateBuffers.keys)
    }

    private func generator(_ words: [String]) throws -> SeededGenerator {
        if let generator = SeededGenerator(decimalWords: words) { return generator }
        // xoshiro256** never leaves the all-zero state (every draw would be 0, and bounded draws would never end).
        let allZero = words.count == 4 && words.allSatisfy { UInt64($0) == 0 }
        throw RecurrentKitError(allZero ? "checkpoint random state is all zeros" : "checkpoint random state is invalid")
    }
}
