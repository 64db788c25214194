import RecurrentKit
import Foundation

/// One epoch's measurements.
public struct EpochReport: Codable, Equatable, Sendable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Updates applied so far, all epochs.
    public var step: Int
    /// exp(mean training cross-entropy) over this epoch's predictions (d2l's printed figure).
    public var trainPerplexity: Double
    /// exp(mean validation cross-entropy), when a validation split exists: row-parallel
    /// (``LanguageModelTrainer/validationLayout``), not one stream.
    public var validationPerplexity: Double?
    /// Mean gradient norm before clipping.
    public var gradientNorm: Double
    /// Training tokens (predictions) per second in this epoch.
    public var tokensPerSecond: Double
    /// Seconds since training started.
    public var elapsedSeconds: Double
    /// The learning rate of the epoch's last update (nil in reports of files written before it was recorded).
    public var learningRate: Double?

    /// A report from its fields (e.g. read back from metrics.jsonl).
    public init(epoch: Int, step: Int, trainPerplexity: Double, validationPerplexity: Double? = nil, gradientNorm: Double,
                tokensPerSecond: Double, elapsedSeconds: Double, learningRate: Double? = nil) {
        self.learningRate = learningRate
        self.epoch = epoch
        self.step = step
        self.trainPerplexity = trainPerplexity
        self.validationPerplexity = validationPerplexity
        self.gradientNorm = gradientNorm
        self.tokensPerSecond = tokensPerSecond
        self.elapsedSeconds = elapsedSeconds
    }
}

/// One update's measurements.
public struct StepReport: Sendable, Equatable {
    /// 1-based epoch.
    public var epoch: Int
    /// 1-based update within the epoch.
    public var stepInEpoch: Int
    /// Updates in this epoch.
    public var stepsPerEpoch: Int
    /// Updates applied so far, all epochs (this one included).
    public var step: Int
    /// Mean cross-entropy of this minibatch (nats).
    public var loss: Double
    /// Gradient norm before clipping.
    public var gradientNorm: Double
    /// exp(mean cross-entropy) so far in this epoch.
    public var runningPerplexity: Double
    /// Tokens per second so far in this epoch.
    public var tokensPerSecond: Double
    /// Estimated seconds until the last epoch ends.
    public var secondsLeft: Double
    /// True when the update was skipped because a value was not finite (`skipNonFinite`).
    public var skipped: Bool
}

/// What the trainer reports while it runs.
public enum TrainingEvent: Sendable {
    /// After every update.
    case step(StepReport)
    /// After every epoch.
    case epoch(EpochReport)
    /// A periodic greedy sample (d2l `predict_ch8`).
    case sample(epoch: Int, text: String)
    /// A validation measurement (every `evaluateEvery` updates and at the end of every epoch, when the text has a
    /// validation part); save the model when `isBest` to keep the best checkpoint.
    case validation(ValidationReport)
}

/// Trains a ``LanguageModel`` on a text with truncated BPTT, d2l's `train_ch8` loop:
/// per minibatch, reset the state (first minibatch of a sequential epoch, every random minibatch) or carry it
/// with its gradient cut, forward, cross-entropy averaged over T*B, backward, clip, update.
///
/// A trainer can stop after any update and be saved with ``checkpoint()``; ``init(resumingFrom:reducer:)`` continues
/// bit-identically (weights, optimizer moments, both random streams, the position in the epoch, the carried state).
///
/// Data-parallel: give every process of a job a trainer with the same options and a `GradientReducer` (e.g. the
/// `RecurrentKitMPI` library's `MPIReducer`). Each process then runs its ``shard`` of every minibatch's rows (and
/// carries those rows' state), the gradients are summed with one call per update, and every process applies the same
/// update: the global batch, the sampling and the dropout masks are those of one process, so the run matches a
/// single-process run up to the summation order. Stop decisions (time limit, `shouldStop`, divergence) are collective;
/// ``checkpoint()`` is too (it gathers the carried state), so call it on every process and save on one.
public final class LanguageModelTrainer {
    /// The options (validated).
    public private(set) var options: TrainingOptions
    /// Tokens and vocabulary.
    public let corpus: PreparedCorpus
    /// The model being trained.
    public let model: LanguageModel<Float>
    /// The optimizer.
    public let optimizer: Optimizer
    /// Sums gradients, losses and decisions across the processes of a data-parallel job (one process by default).
    public let reducer: GradientReducer
    /// This process's rows of every minibatch (the whole batch with one process).
    public let shard: BatchShard
    /// Seconds this process has spent in the reducer's sums during updates (gradients, loss, stop decisions), waiting
    /// for the slowest process included; 0 with one process.
    public private(set) var reductionSeconds = 0.0
    /// Updates that ``reductionSeconds`` covers.
    public private(set) var reducedUpdates = 0
    /// Per-epoch history.
    public private(set) var history: [EpochReport] = []
    /// Updates applied (skipped ones excluded).
    public private(set) var step = 0
    /// Updates skipped because of NaN or infinite values (`skipNonFinite`).
    public private(set) var skippedSteps = 0
    /// True when every epoch has run, or early stopping ended the run.
    public var isFinished: Bool { epoch > options.epochs || stoppedEarly }
    /// The lowest validation loss measured so far (nats per token), nil before the first measurement.
    public private(set) var bestValidationLoss: Double? = nil
    /// The update at which ``bestValidationLoss`` was measured.
    public private(set) var bestValidationStep = 0
    /// Validation measurements since the best one.
    public private(set) var measurementsSinceBest = 0
    /// Whether `earlyStopPatience` measurements without improvement ended the run.
    public private(set) var stoppedEarly = false
    /// Updates over which a cosine learning-rate schedule runs: epochs x minibatches per epoch, or the count fixed
    /// from the first updates' speed under a time limit.
    public private(set) var scheduledUpdates = 1
    /// Whether `scheduledUpdates` is final (no time limit, fixed already, or restored from a checkpoint).
    private var scheduleFixed = true
    /// Whether a calibration or a checkpoint decided `scheduledUpdates` (a later time limit then changes nothing).
    private var scheduleLengthDecided = false
    /// Updates measured before a time-limited cosine schedule fixes its length, after `calibrationWarmUp` updates that
    /// are not timed (the first updates touch fresh memory and start the thread pool: timing them made the estimate
    /// about 10% short, so the last updates ran at the minimum rate).
    static var calibrationUpdates: Int { 10 }
    /// Whether the schedule needs `scheduledUpdates` (only the cosine does; the checkpoint keeps it only then).
    private var usesCosine: Bool { if case .cosine = options.learningRateSchedule { return true } else { return false } }
    /// Updates run before the calibration starts timing.
    static var calibrationWarmUp: Int { 3 }

    private let schedule: MinibatchSchedule
    // Position: `epoch` (1-based) and how many of its minibatches are done.
    private var epoch = 1
    private var doneInEpoch = 0
    // Two streams, so that the epoch's minibatches can be rebuilt on resume independently of dropout draws.
    private var dataGenerator: SeededGenerator       // offsets and shuffles
    private var epochStartGenerator: SeededGenerator // dataGenerator before this epoch's draw
    private var dropoutGenerator: SeededGenerator
    private var minibatches: [Minibatch] = []
    private var carried: RecurrentState<Float>? = nil // this shard's rows, (L, B_r, H)
    private var shardInputs: [Int] = [], shardTargets: [Int] = [] // this shard's rows of the minibatch
    private var collective = [0.0, 0.0] // the per-update sums of scalars (loss, decisions), reused
    /// Storage of a dropped carried state, reused for the next one so updates allocate nothing.
    private var spareState: RecurrentState<Float>? = nil
    // This epoch's running sums.
    private var lossSum = 0.0, tokenCount = 0, normSum = 0.0, epochSeconds = 0.0
    private var elapsedBefore = 0.0 // seconds trained before this process (resume)

    /// Prepares the text (loading a file when `options.corpus` is not an embedded name) and builds the model.
    /// - Parameters:
    ///   - options: the run's options.
    ///   - reducer: the data-parallel job this process belongs to (default: one process).
    public convenience init(options: TrainingOptions, reducer: GradientReducer = SingleProcessReducer()) throws {
        try options.validate()
        try self.init(options: options, corpus: try LanguageModelTrainer.prepareCorpus(options), reducer: reducer)
    }

    /// Trains on an already prepared corpus.
    /// - Parameters:
    ///   - options: the run's options.
    ///   - corpus: the prepared text (every process of a job must prepare the same).
    ///   - reducer: the data-parallel job this process belongs to (default: one process); throws when it has more
    ///     processes than the batch has rows.
    public init(options: TrainingOptions, corpus: PreparedCorpus, reducer: GradientReducer = SingleProcessReducer()) throws {
        try options.validate()
        self.options = options
        self.corpus = corpus
        self.reducer = reducer
        shard = try reducer.shard(ofBatch: options.batchSize)
        schedule = try MinibatchSchedule(tokens: corpus.trainTokens, batchSize: options.batchSize,
                                         numSteps: LanguageModelTrainer.chunkLength(options, tokenCount: corpus.trainTokens.count),
                                         strategy: options.sampling)
        guard let bytes = options.estimatedMemoryBytes(vocabularySize: corpus.vocabulary.count, chunkLength: schedule.numSteps) else {
            throw RecurrentKitError("model and minibatch sizes too large: the memory they need does not fit in a 64-bit count")
        }
        try checkMemory(bytes, for: "training \(options.cell.rawValue) H \(options.hiddenSize) x \(options.numLayers) layer(s), batch \(options.batchSize) x \(schedule.numSteps) steps")
        if options.sampleEvery > 0, !options.samplePrefix.isEmpty {
            // A prefix the vocabulary cannot encode fails now, not after the first epoch.
            do { _ = try corpus.vocabulary.encode(options.samplePrefix) }
            catch let error as RecurrentKitError { throw RecurrentKitError("sample prefix: \(error.message)") }
        }
        var generator = SeededGenerator(seed: options.seed)
        let configuration = LanguageModelConfiguration(vocabularySize: corpus.vocabulary.count, cell: options.cell,
                                                       hiddenSize: options.hiddenSize, numLayers: options.numLayers,
                                                       dropout: options.dropout, embeddingSize: options.embeddingSize,
                                                       bias: options.recurrentBias ?? true, projectionSize: options.projectionSize ?? 0)
        model = try LanguageModel(configuration, initialization: options.initialization, generator: &generator)
        if let b = options.forgetGateBias { try model.recurrent.setForgetGateBias(b) }
        model.recurrent.recomputeInterval = options.recomputeInterval
        if !shard.isWholeBatch { model.recurrent.dropoutShard = shard }
        optimizer = try options.makeOptimizer()
        let (total, overflow) = options.epochs.multipliedReportingOverflow(by: max(schedule.minibatchesPerEpoch, 1))
        scheduledUpdates = overflow ? Int.max / 2 : max(total, 1)
        dataGenerator = SeededGenerator(seed: generator.next())
        dropoutGenerator = SeededGenerator(seed: generator.next())
        epochStartGenerator = dataGenerator
        if usesCosine, options.timeLimitSeconds != nil { scheduleFixed = false }
    }

    /// Steps per chunk: `numSteps` for truncated BPTT; for full and randomized, the longest chunk that still gives
    /// every row one chunk per epoch for any offset, (N - 1) / (B + 1).
    static func chunkLength(_ options: TrainingOptions, tokenCount: Int) -> Int {
        options.bptt == .truncated ? options.numSteps : max(1, (tokenCount - 1) / (options.batchSize + 1))
    }

    /// Steps per training chunk (T of every minibatch).
    public var chunkLength: Int { schedule.numSteps }

    static func prepareCorpus(_ options: TrainingOptions) throws -> PreparedCorpus {
        return try PreparedCorpus.prepare(text: try loadCorpusText(options.corpus), mode: options.textMode, maxTokens: options.maxTokens,
                                          validationFraction: options.validationFraction, minimumFrequency: options.minimumFrequency ?? 0)
    }

    /// How the periodic validation reads the validation tokens: row-parallel, the run's batch x steps
    /// (`.rows(batch: options.batchSize, steps: options.numSteps)`), each row from a zero state, so that it can be
    /// sharded over the processes of a job. Its figures (``EpochReport/validationPerplexity``, `ValidationReport`)
    /// are therefore higher than a one-stream evaluation of the same text (``Evaluation``'s and `rnn eval`'s default);
    /// print ``EvaluationLayout/description(tokenCount:)`` beside them.
    public var validationLayout: EvaluationLayout { .rows(batch: options.batchSize, steps: options.numSteps) }

    /// Minibatches (updates) per epoch (the count for the worst random offset; an epoch may have one more).
    public var minibatchesPerEpoch: Int { schedule.minibatchesPerEpoch }

    /// Runs until every epoch is done, the time limit passes, or `shouldStop` returns true (checked after each update).
    /// - Parameters:
    ///   - progress: receives every step, epoch and sample event.
    ///   - shouldStop: checked after every update and epoch; return true to stop (the trainer can be resumed).
    ///   - afterStep: called after every update, e.g. to save a checkpoint every N steps.
    ///   - afterValidation: called after every validation measurement, while the model is the one measured (save it
    ///     when the report `isBest` to keep the best checkpoint).
    /// - Returns: true when training finished, false when it stopped early (it can be resumed).
    /// - Throws: naming the update, when the loss or the gradient norm becomes NaN or infinite, or an epoch's training
    ///   perplexity overflows (unless `skipNonFinite`).
    @discardableResult
    public func train(progress: (TrainingEvent) -> Void = { _ in }, shouldStop: () -> Bool = { false },
                      afterStep: (LanguageModelTrainer) throws -> Void = { _ in },
                      afterValidation: (LanguageModelTrainer, ValidationReport) throws -> Void = { _, _ in }) throws -> Bool {
        let start = monotonicSeconds()
        let B = options.batchSize, T = schedule.numSteps, shardRows = shard.count
        let distributed = reducer.processCount > 1
        let calibrationStart = step
        var timingStart: Double? = nil // when the timed calibration updates began
        /// Measures the validation loss (nil without a validation split), tracks the best, reports it, and sets
        /// `stoppedEarly` when the patience is used up.
        func validate() throws -> Double? {
            guard !corpus.validationTokens.isEmpty else { return nil }
            let measured = try Evaluation.meanCrossEntropy(model: model, tokens: corpus.validationTokens, layout: validationLayout,
                                                           reducer: reducer) // the rows shared among the processes
            // Every process decides from rank 0's figure: hosts whose kernels differ (AVX-512 and AVX2) measure
            // different last bits, and the best-model checkpoint and early stopping are collective.
            let loss = try reducer.broadcastFromRankZero(measured)
            let isBest = loss.isFinite && (bestValidationLoss.map { loss < $0 } ?? true)
            if isBest { bestValidationLoss = loss; bestValidationStep = step; measurementsSinceBest = 0 } else { measurementsSinceBest += 1 }
            let report = ValidationReport(step: step, epoch: epoch, loss: loss, isBest: isBest, sinceBest: measurementsSinceBest)
            progress(.validation(report))
            try afterValidation(self, report) // e.g. save the best model: the model now is the one measured
            if let patience = options.earlyStopPatience, measurementsSinceBest >= patience { stoppedEarly = true }
            return loss
        }
        while epoch <= options.epochs && !stoppedEarly {
            if doneInEpoch == 0 {
                epochStartGenerator = dataGenerator
                minibatches = schedule.epoch(using: &dataGenerator)
                lossSum = 0; tokenCount = 0; normSum = 0; epochSeconds = 0; dropCarriedState()
            } else if minibatches.isEmpty {
                // Resumed mid-epoch: rebuild this epoch's minibatches from the generator state at its start.
                dataGenerator = epochStartGenerator
                minibatches = schedule.epoch(using: &dataGenerator)
            }
            while doneInEpoch < minibatches.count {
                let stepStart = monotonicSeconds()
                let batch = minibatches[doneInEpoch]
                if batch.resetsState { dropCarriedState() } // nil = zeros; otherwise the carried value (gradient cut)
                model.parameters.zeroGradients()
                let truncation: BackwardTruncation = options.bptt == .randomized
                    ? .randomized(continueProbability: 1 - 1 / Double(max(options.numSteps, 2)), seed: dropoutGenerator.next())
                    : .none
                var loss: Double
                // Each process's share of the global batch's mean loss: dL/dlogits = (softmax - onehot) * (B_r/B) / (T*B_r),
                // 1/(T*B) up to the last bit (one process: the scale is 1, today's bits).
                let weight = Double(shardRows) / Double(B)
                // Forward and backward in the run's product precision (mixed precision: bf16 operands, Float sums).
                loss = try Kernels.withProductPrecision(options.precision ?? .float32) {
                    if shard.isWholeBatch {
                        return try model.loss(inputs: batch.inputs, targets: batch.targets, steps: T, batch: B, state: carried,
                                              training: true, truncation: truncation, generator: &dropoutGenerator)
                    }
                    shard.gather(batch.inputs, steps: T, into: &shardInputs)
                    shard.gather(batch.targets, steps: T, into: &shardTargets)
                    return try model.loss(inputs: shardInputs, targets: shardTargets, steps: T, batch: shardRows, state: carried,
                                          training: true, truncation: truncation, gradientScale: weight, generator: &dropoutGenerator)
                }
                if distributed {
                    let reductionStart = monotonicSeconds()
                    try reducer.sumGradients(model.parameters) // one allreduce of the flat buffer
                    loss = try collectiveSum(loss * weight).0
                    reductionSeconds += monotonicSeconds() - reductionStart
                    reducedUpdates += 1
                }
                // One pass: clipping returns the norm before clipping and refuses a non-finite one.
                var norm = Double.nan
                if loss.isFinite {
                    if options.clip > 0 {
                        norm = (try? clipGradientNorm(model.parameters, maxNorm: options.clip, style: options.clipStyle)) ?? .nan
                    } else {
                        norm = model.parameters.gradientSquaredNorm().squareRoot()
                    }
                }
                var skipped = false
                if !loss.isFinite || !norm.isFinite {
                    guard options.skipNonFinite else {
                        throw RecurrentKitError("training stopped: \(loss.isFinite ? "gradient norm" : "loss") is \(loss.isFinite ? norm : loss) at update \(step + 1) (epoch \(epoch)); the last saved checkpoint is unchanged; try a lower learning rate, clipping, or --skip-nonfinite")
                    }
                    skipped = true
                    skippedSteps += 1
                    dropCarriedState() // the state may hold NaN now
                } else {
                    if let rates = options.learningRateSchedule {
                        optimizer.learningRate = rates.learningRate(base: options.learningRate, update: step, totalUpdates: scheduledUpdates)
                    }
                    try optimizer.step(model.parameters)
                    step += 1
                    if carried == nil { swap(&carried, &spareState) }
                    try model.copyFinalState(into: &carried)
                    lossSum += loss * Double(T * B)
                    tokenCount += T * B
                    normSum += norm
                }
                doneInEpoch += 1
                epochSeconds += monotonicSeconds() - stepStart
                let updatesLeft = Double(minibatches.count - doneInEpoch + (options.epochs - epoch) * minibatches.count)
                progress(.step(StepReport(epoch: epoch, stepInEpoch: doneInEpoch, stepsPerEpoch: minibatches.count, step: step,
                                          loss: loss, gradientNorm: norm,
                                          runningPerplexity: perplexity(meanCrossEntropy: lossSum / Double(max(tokenCount, 1))),
                                          tokensPerSecond: Double(tokenCount) / max(epochSeconds, 1e-9),
                                          secondsLeft: updatesLeft * epochSeconds / Double(doneInEpoch), skipped: skipped)))
                if !scheduleFixed, step - calibrationStart == Self.calibrationWarmUp { timingStart = monotonicSeconds() }
                if !scheduleFixed, let limit = options.timeLimitSeconds, let timingStart,
                   step - calibrationStart >= Self.calibrationWarmUp + Self.calibrationUpdates {
                    // Fix the cosine's length once from this process's timed updates: the updates that fit in the limit.
                    let elapsed = monotonicSeconds() - start
                    let perUpdate = (monotonicSeconds() - timingStart) / Double(step - calibrationStart - Self.calibrationWarmUp)
                    let fit = perUpdate > 0 ? (limit - elapsed) / perUpdate : Double(scheduledUpdates)
                    // Rank 0's clock decides for every process, so all follow the same schedule.
                    let length = min(scheduledUpdates, step + max(1, Int(min(fit, Double(scheduledUpdates)))))
                    scheduledUpdates = Int(try reducer.broadcastFromRankZero(Double(length)))
                    scheduleFixed = true
                    scheduleLengthDecided = true
                }
                if let every = options.evaluateEvery, !skipped, step % every == 0, doneInEpoch < minibatches.count,
                   try validate() != nil, stoppedEarly {
                    elapsedBefore += monotonicSeconds() - start
                    try afterStep(self)
                    return true
                }
                try afterStep(self)
                // The limit counts this process's training time, so a resumed run gets the full limit again.
                let timeUp = options.timeLimitSeconds.map { monotonicSeconds() - start >= $0 } ?? false
                if doneInEpoch < minibatches.count, try reducer.any(timeUp || shouldStop()) { // every process stops after the same update
                    elapsedBefore += monotonicSeconds() - start
                    return false
                }
            }
            var report = EpochReport(epoch: epoch, step: step, trainPerplexity: perplexity(meanCrossEntropy: lossSum / Double(max(tokenCount, 1))),
                                     validationPerplexity: nil, gradientNorm: normSum / Double(max(tokenCount / (T * B), 1)),
                                     tokensPerSecond: Double(tokenCount) / max(epochSeconds, 1e-9), elapsedSeconds: 0,
                                     learningRate: optimizer.learningRate)
            if let loss = try validate() { report.validationPerplexity = perplexity(meanCrossEntropy: loss) }
            report.elapsedSeconds = elapsedBefore + monotonicSeconds() - start
            history.append(report)
            progress(.epoch(report))
            if !report.trainPerplexity.isFinite && !options.skipNonFinite {
                // Every loss was finite, but so large that exp overflows: the run has diverged.
                throw RecurrentKitError("training stopped: the training perplexity of epoch \(epoch) is \(report.trainPerplexity) at update \(step) (the run diverged); the last saved checkpoint is unchanged; try a lower learning rate, clipping, or --skip-nonfinite")
            }
            let localTimeUp = options.timeLimitSeconds.map { monotonicSeconds() - start >= $0 } ?? false
            let last = epoch == options.epochs
            // Collective: the time limit as any process sees it, and a stop asked on any process.
            let decisions = try collectiveSum(localTimeUp ? 1 : 0, !last && shouldStop() ? 1 : 0)
            let timeUp = decisions.0 > 0, stopAsked = decisions.1 > 0
            if options.sampleEvery > 0, epoch % options.sampleEvery == 0 || last || timeUp, !options.samplePrefix.isEmpty {
                progress(.sample(epoch: epoch, text: try TextGenerator.predict(model: model, vocabulary: corpus.vocabulary,
                                                                               prefix: options.samplePrefix, length: options.sampleLength)))
            }
            epoch += 1
            doneInEpoch = 0
            minibatches = []
            if stoppedEarly {
                elapsedBefore += monotonicSeconds() - start
                return true
            }
            if (timeUp || stopAsked) && !last {
                elapsedBefore += monotonicSeconds() - start
                return false
            }
        }
        return true
    }

    /// Switches memory-efficient BPTT on (a positive multiple of 16) or off (nil), also for a resumed run: it changes
    /// memory and time, never the gradients, so the run continues exactly as it would have.
    public func setRecomputeInterval(_ interval: Int?) throws {
        var changed = options
        changed.recomputeInterval = interval
        try changed.validate()
        options = changed
        model.recurrent.recomputeInterval = interval
    }

    /// `a` and `b` summed over the processes (themselves with one process), without allocating.
    private func collectiveSum(_ a: Double, _ b: Double = 0) throws -> (Double, Double) {
        guard reducer.processCount > 1 else { return (a, b) }
        collective[0] = a
        collective[1] = b
        try collective.withUnsafeMutableBufferPointer { try reducer.sum($0.baseAddress!, count: 2) }
        return (collective[0], collective[1])
    }

    /// Resets the carried state to zeros (nil), keeping its storage for reuse.
    private func dropCarriedState() {
        if carried != nil { spareState = carried }
        carried = nil
    }

    // MARK: - Checkpoints with training state

    /// The model plus everything needed to resume exactly: options, position, random streams, optimizer moments,
    /// the carried state and the history (tensors under `_trainer.`, which PyTorch loaders should drop).
    ///
    /// In a data-parallel job this is a collective call: every process must make it (the carried state of every
    /// process's rows is gathered, and the processes check that their weights are identical); save the result on one.
    public func checkpoint() throws -> Checkpoint {
        var extra: [String: Tensor<Float>] = [:]
        var extra64: [String: Tensor<Double>] = [:]
        for (name, values) in optimizer.stateBuffers { extra64["_trainer.optimizer.\(name)"] = try Tensor(shape: [values.count], scalars: values) }
        if reducer.processCount > 1 { try checkReplicasAgree() }
        if let carried {
            extra["_trainer.state.h"] = try wholeBatch(carried.h)
            if let c = carried.c { extra["_trainer.state.c"] = try wholeBatch(c) }
        }
        let state = LanguageModelTrainingState(options: options, epoch: epoch, doneInEpoch: doneInEpoch, step: step, skippedSteps: skippedSteps,
                                 optimizerSteps: optimizer.stepCount, learningRate: optimizer.learningRate,
                                 dataGenerator: words(dataGenerator), epochStartGenerator: words(epochStartGenerator),
                                 dropoutGenerator: words(dropoutGenerator), lossSum: lossSum, tokenCount: tokenCount, normSum: normSum,
                                 epochSeconds: epochSeconds, elapsedSeconds: elapsedBefore, history: history,
                                 kernelLevel: Kernels.activeLevel.name, scheduledUpdates: scheduleFixed && usesCosine ? scheduledUpdates : nil,
                                 bestValidationLoss: bestValidationLoss, bestValidationStep: bestValidationStep,
                                 measurementsSinceBest: measurementsSinceBest, stoppedEarly: stoppedEarly)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // A diverged run records inf/NaN perplexities; they are saved as strings, not refused.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try Checkpoint(model: model, vocabulary: corpus.vocabulary,
                              training: String(decoding: try encoder.encode(state), as: UTF8.self),
                              extraTensors: extra, extraDoubleTensors: extra64)
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
            whole.replaceSubrange(target..<(target + shard.count * width), with: local.scalars[source..<(source + shard.count * width)])
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
        let mine = Double(hash >> 24) // 40 bits, exact in a Double
        // Rank 0's hash to everyone, then whether any process differs from it: every process reaches the same verdict.
        let root = try reducer.broadcastFromRankZero(mine)
        guard try !reducer.any(mine != root) else {
            throw RecurrentKitError("the processes' weights differ at update \(step): the job's processes do not run the same training (same options, text and program on every process?)")
        }
    }

    /// Restores a trainer saved by ``checkpoint()`` so that training continues exactly where it stopped.
    /// - Parameters:
    ///   - checkpoint: a checkpoint with training state.
    ///   - reducer: the data-parallel job this process belongs to (default: one process); any process count that
    ///     the batch allows resumes the same run (the checkpoint holds the whole batch's carried state).
    public convenience init(resumingFrom checkpoint: Checkpoint, reducer: GradientReducer = SingleProcessReducer()) throws {
        let state: LanguageModelTrainingState
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { state = try decoder.decode(LanguageModelTrainingState.self, from: Data(checkpoint.training.utf8)) }
        catch { throw RecurrentKitError("checkpoint has no resumable training state (\(shortDescription(error)))") }
        try checkpoint.model.configuration.requireCausal(for: "training")
        var options = state.options
        // Before format version 2, `validationFraction` (then always written, 0.1 by default) applied in raw mode only.
        if checkpoint.fileFormatVersion < 2 && options.textMode != .raw { options.validationFraction = nil }
        try self.init(options: options, reducer: reducer)
        try state.validate(minibatchesPerEpoch: schedule.minibatchesPerEpoch, tokensPerUpdate: schedule.numSteps * options.batchSize)
        guard corpus.vocabulary == checkpoint.vocabulary else {
            throw RecurrentKitError("the training text now gives a different vocabulary than the checkpoint's; resume needs the same text")
        }
        guard model.configuration == checkpoint.model.configuration else { throw RecurrentKitError("checkpoint model does not match its training options") }
        try model.parameters.copyValues(from: checkpoint.model.parameters)
        let optimizerPrefix = "_trainer.optimizer."
        if let name = checkpoint.extraTensors.keys.filter({ $0.hasPrefix(optimizerPrefix) }).min() {
            throw RecurrentKitError("checkpoint tensor \(name) is not F64: optimizer state is saved in double precision")
        }
        var buffers: [String: [Double]] = [:]
        for (name, tensor) in checkpoint.extraDoubleTensors where name.hasPrefix(optimizerPrefix) {
            buffers[String(name.dropFirst(optimizerPrefix.count))] = tensor.scalars
        }
        for name in buffers.keys.sorted() where buffers[name]!.count != model.parameters.count {
            throw RecurrentKitError("checkpoint tensor \(optimizerPrefix)\(name) has \(buffers[name]!.count) values for \(model.parameters.count) parameters")
        }
        // Exactly the buffers this optimizer has after `optimizerSteps` updates (none before the first).
        let expected = state.optimizerSteps > 0 ? try LanguageModelTrainer.optimizerBufferNames(options) : []
        if let missing = expected.subtracting(buffers.keys).min() {
            throw RecurrentKitError("checkpoint has no tensor \(optimizerPrefix)\(missing), which \(options.optimizer.rawValue) holds after \(state.optimizerSteps) update(s)")
        }
        if let unexpected = Set(buffers.keys).subtracting(expected).min() {
            throw RecurrentKitError("checkpoint tensor \(optimizerPrefix)\(unexpected) is not state of \(options.optimizer.rawValue)"
                + (options.momentum > 0 ? " with momentum \(options.momentum)" : "") + " after \(state.optimizerSteps) update(s)")
        }
        try optimizer.restore(stateBuffers: buffers, stepCount: state.optimizerSteps)
        optimizer.learningRate = state.learningRate
        if checkpoint.extraTensors["_trainer.state.c"] != nil {
            guard model.configuration.cell.hasCellState else {
                throw RecurrentKitError("checkpoint tensor _trainer.state.c is a carried cell state, but a \(model.configuration.cell.rawValue) model has none")
            }
            guard checkpoint.extraTensors["_trainer.state.h"] != nil else {
                throw RecurrentKitError("checkpoint has a carried cell state _trainer.state.c but no _trainer.state.h")
            }
        }
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
        guard state.epoch >= 1, state.doneInEpoch >= 0, state.step >= 0 else { throw RecurrentKitError("checkpoint training position is invalid") }
        epoch = state.epoch
        doneInEpoch = state.doneInEpoch
        step = state.step
        skippedSteps = state.skippedSteps
        dataGenerator = try generator(state.dataGenerator)
        epochStartGenerator = try generator(state.epochStartGenerator)
        dropoutGenerator = try generator(state.dropoutGenerator)
        lossSum = state.lossSum; tokenCount = state.tokenCount; normSum = state.normSum
        epochSeconds = state.epochSeconds; elapsedBefore = state.elapsedSeconds
        history = state.history
        savedKernelLevel = state.kernelLevel
        if let fixed = state.scheduledUpdates { scheduledUpdates = fixed; scheduleFixed = true; scheduleLengthDecided = true }
        bestValidationLoss = state.bestValidationLoss
        bestValidationStep = state.bestValidationStep ?? 0
        measurementsSinceBest = state.measurementsSinceBest ?? 0
        stoppedEarly = state.stoppedEarly ?? false
        if doneInEpoch > 0 {
            minibatches = []
            var rebuilt = epochStartGenerator
            guard doneInEpoch <= schedule.epoch(using: &rebuilt).count else { throw RecurrentKitError("checkpoint position is past the end of its epoch") }
        }
    }

    /// The kernel level (`Kernels.Level.name`) the resumed run was trained with, when the checkpoint records it.
    /// Resuming is bit-identical on the same level; on another level the products round differently and the run
    /// continues correctly but not bit for bit.
    public private(set) var savedKernelLevel: String? = nil

    /// Changes the time limit of this process's training (nil: none), also for a resumed run: `rnn train --resume
    /// --time-limit` bounds the new run whatever the checkpoint says.
    public func setTimeLimit(_ seconds: Double?) throws {
        var changed = options
        changed.timeLimitSeconds = seconds
        try changed.validate()
        options = changed
        if !scheduleLengthDecided, usesCosine { scheduleFixed = seconds == nil }
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

    private func words(_ g: SeededGenerator) -> [String] { [g.state.0, g.state.1, g.state.2, g.state.3].map { String($0) } }
    private func generator(_ words: [String]) throws -> SeededGenerator {
        let values = words.compactMap(UInt64.init)
        guard words.count == 4, values.count == 4 else { throw RecurrentKitError("checkpoint random state is invalid") }
        // xoshiro256** never leaves the all-zero state (every draw would be 0, and bounded draws would never end).
        guard values.contains(where: { $0 != 0 }) else { throw RecurrentKitError("checkpoint random state is all zeros") }
        return SeededGenerator(state: (values[0], values[1], values[2], values[3]))
    }
}

/// What a checkpoint's `training` metadata holds for ``LanguageModelTrainer/init(resumingFrom:)``.
struct LanguageModelTrainingState: Codable {
    var options: TrainingOptions
    var epoch: Int
    var doneInEpoch: Int
    var step: Int
    var skippedSteps: Int
    var optimizerSteps: Int
    var learningRate: Double
    var dataGenerator: [String]
    var epochStartGenerator: [String]
    var dropoutGenerator: [String]
    var lossSum: Double
    var tokenCount: Int
    var normSum: Double
    var epochSeconds: Double
    var elapsedSeconds: Double
    var history: [EpochReport]
    /// The kernels' instruction-set level the run used ("AVX-512", ...); absent in files of 0.1.
    var kernelLevel: String? = nil
    /// The fixed length of the learning-rate schedule; absent before it is fixed and in files of 0.1.
    var scheduledUpdates: Int? = nil
    /// Best validation loss so far, its update, measurements since, and whether early stopping ended the run
    /// (absent in files of 0.1).
    var bestValidationLoss: Double? = nil
    var bestValidationStep: Int? = nil
    var measurementsSinceBest: Int? = nil
    var stoppedEarly: Bool? = nil

    /// Every field within what a run with these options could have reached; a hostile or corrupted file gets an error
    /// naming the field, never a trap or a hang later.
    func validate(minibatchesPerEpoch: Int, tokensPerUpdate: Int) throws {
        func bad(_ field: String, _ value: Any, _ rule: String) -> RecurrentKitError {
            RecurrentKitError("checkpoint training state: \(field) \(value) \(rule)")
        }
        let perEpoch = minibatchesPerEpoch + 1 // an epoch may have one more for some offsets
        let (maximumUpdates, overflow) = options.epochs.multipliedReportingOverflow(by: perEpoch)
        guard !overflow else { throw bad("epochs", options.epochs, "is too large") }
        guard epoch >= 1, epoch <= options.epochs + 1 else { throw bad("epoch", epoch, "is outside 1...\(options.epochs + 1)") }
        guard doneInEpoch >= 0, doneInEpoch <= perEpoch else { throw bad("doneInEpoch", doneInEpoch, "is outside 0...\(perEpoch)") }
        guard step >= 0, step <= maximumUpdates else { throw bad("step", step, "is outside 0...\(maximumUpdates)") }
        guard skippedSteps >= 0, skippedSteps <= maximumUpdates else { throw bad("skippedSteps", skippedSteps, "is outside 0...\(maximumUpdates)") }
        guard optimizerSteps >= 0, optimizerSteps <= step else { throw bad("optimizerSteps", optimizerSteps, "is outside 0...\(step) (the updates done)") }
        guard learningRate.isFinite, learningRate >= 0 else { throw bad("learningRate", learningRate, "must be finite and >= 0") }
        if let s = scheduledUpdates, s < 1 || s > max(maximumUpdates, 1) { throw bad("scheduledUpdates", s, "is outside 1...\(max(maximumUpdates, 1))") }
        if let loss = bestValidationLoss, !(loss.isFinite && loss >= 0) { throw bad("bestValidationLoss", loss, "must be finite and >= 0") }
        if let s = bestValidationStep, s < 0 || s > step { throw bad("bestValidationStep", s, "is outside 0...\(step)") }
        if let n = measurementsSinceBest, n < 0 || n > maximumUpdates + options.epochs { throw bad("measurementsSinceBest", n, "is outside 0...\(maximumUpdates + options.epochs)") }
        let maximumTokens = perEpoch * tokensPerUpdate // the sums of the current or (between epochs) the last epoch
        guard tokenCount >= 0, tokenCount <= maximumTokens else { throw bad("tokenCount", tokenCount, "is outside 0...\(maximumTokens)") }
        guard lossSum.isFinite, lossSum >= 0 else { throw bad("lossSum", lossSum, "must be finite and >= 0") }
        guard normSum.isFinite, normSum >= 0 else { throw bad("normSum", normSum, "must be finite and >= 0") }
        for (name, value) in [("epochSeconds", epochSeconds), ("elapsedSeconds", elapsedSeconds)] {
            guard value.isFinite, value >= 0, value <= TrainingOptions.maximumSeconds else {
                throw bad(name, value, "must be a finite duration in [0, \(Int(TrainingOptions.maximumSeconds))] seconds")
            }
        }
        if let level = kernelLevel, !Kernels.Level.allCases.contains(where: { $0.name == level }) {
            throw bad("kernelLevel", "'\(level.prefix(40))'", "is not a kernel level (\(Kernels.Level.allCases.map(\.name).joined(separator: ", ")))")
        }
        guard history.count <= epoch else { throw bad("history", "of \(history.count) epochs", "is longer than the epochs done") }
        for (i, report) in history.enumerated() {
            guard report.epoch >= 1, report.epoch <= options.epochs, report.step >= 0, report.step <= maximumUpdates,
                  report.elapsedSeconds.isFinite, report.elapsedSeconds >= 0, report.elapsedSeconds <= TrainingOptions.maximumSeconds,
                  !report.tokensPerSecond.isNaN, report.tokensPerSecond >= 0 else {
                throw bad("history[\(i)]", "(epoch \(report.epoch))", "has a counter or duration out of range")
            }
        }
        try validateCounters(minibatchesPerEpoch: minibatchesPerEpoch, tokensPerUpdate: tokensPerUpdate)
    }

    /// The counters against each other, as ``LanguageModelTrainer/train(progress:shouldStop:afterStep:afterValidation:)``
    /// advances them: every minibatch of an epoch (``LanguageModelTrainer/minibatchesPerEpoch`` m, or m + 1) adds 1 to
    /// `doneInEpoch` and either applies an update (`step` and the optimizer's count + 1, `tokenCount` + T x B, the loss
    /// and norm added to the sums) or is skipped (`skippedSteps` + 1, only with `skipNonFinite`); the epoch's end appends
    /// one ``EpochReport`` (its number, `step`), then `epoch` + 1 and `doneInEpoch` = 0, and the next epoch's first
    /// minibatch zeroes the sums. Checked on resume: a file no run could write is refused, naming the field.
    private func validateCounters(minibatchesPerEpoch m: Int, tokensPerUpdate: Int) throws {
        func bad(_ field: String, _ value: Any, _ rule: String) -> RecurrentKitError {
            RecurrentKitError("checkpoint training state: \(field) \(value) \(rule)")
        }
        guard optimizerSteps == step else {
            throw bad("optimizerSteps", optimizerSteps, "differs from step \(step): the optimizer steps once per update applied")
        }
        guard skippedSteps == 0 || options.skipNonFinite else {
            throw bad("skippedSteps", skippedSteps, "is not 0, but skipNonFinite is off (no update can have been skipped)")
        }
        guard epoch <= options.epochs || doneInEpoch == 0 else {
            throw bad("doneInEpoch", doneInEpoch, "is not 0 after the last epoch (\(options.epochs)) ended")
        }
        guard tokenCount % tokensPerUpdate == 0 else {
            throw bad("tokenCount", tokenCount, "is not a multiple of the \(tokensPerUpdate) tokens of an update (steps x batch)")
        }
        let counted = tokenCount / tokensPerUpdate // the updates the epoch's sums hold
        guard counted > 0 || (lossSum == 0 && normSum == 0) else {
            throw bad(lossSum != 0 ? "lossSum" : "normSum", lossSum != 0 ? lossSum : normSum, "is not 0, but tokenCount 0 counts no update")
        }
        // One report per finished epoch; one more (the current epoch's, at `step`) when an error came after the epoch's
        // report and before its number advanced (a library caller may still save that trainer).
        let finished = epoch - 1
        guard history.count == finished
                || (history.count == epoch && doneInEpoch > 0 && history.last?.epoch == epoch && history.last?.step == step) else {
            throw bad("history", "of \(history.count) epochs", "does not match epoch \(epoch) (\(finished) finished)")
        }
        var previousStep = 0
        for (i, report) in history.enumerated() {
            let updates = report.step - previousStep
            guard report.epoch == i + 1, updates >= 0, updates <= m + 1, updates >= m || skippedSteps > 0 else {
                throw bad("history[\(i)]", "(epoch \(report.epoch), step \(report.step))",
                          "is not epoch \(i + 1) of \(m) or \(m + 1) updates after step \(previousStep)")
            }
            previousStep = report.step
        }
        // Every minibatch processed is an update or a skip.
        let processed = step + skippedSteps
        let lowest = finished * m + doneInEpoch, highest = finished * (m + 1) + doneInEpoch
        guard processed >= lowest, processed <= highest else {
            throw bad("step", step, "plus skippedSteps \(skippedSteps) is outside \(lowest)...\(highest), the minibatches of \(finished) finished epoch(s) of \(m) or \(m + 1) and \(doneInEpoch) of epoch \(epoch) (is this the text the checkpoint was trained on?)")
        }
        let atEpochStart = history.prefix(finished).last?.step ?? 0 // `step` when this epoch began
        if doneInEpoch > 0 {
            guard step - atEpochStart == counted else {
                throw bad("tokenCount", tokenCount, "counts \(counted) update(s), but epoch \(epoch) has applied \(step - atEpochStart) (step \(step), \(atEpochStart) when it began)")
            }
            guard counted <= doneInEpoch, doneInEpoch - counted <= skippedSteps else {
                throw bad("doneInEpoch", doneInEpoch, "is not the epoch's \(counted) update(s) plus at most \(skippedSteps) skipped")
            }
        } else {
            // Between epochs: nothing applied since the last report; the sums are the last epoch's (zero after an error
            // in the next epoch's first update, which zeroes them first).
            guard step == atEpochStart else {
                throw bad("step", step, "differs from \(atEpochStart), the step of the last finished epoch, with no minibatch done in epoch \(epoch)")
            }
            let lastEpochUpdates = finished > 0 ? atEpochStart - (history.prefix(finished - 1).last?.step ?? 0) : 0
            guard counted == 0 || counted == lastEpochUpdates else {
                throw bad("tokenCount", tokenCount, "counts \(counted) update(s), but the last finished epoch had \(lastEpochUpdates)")
            }
        }
        if bestValidationLoss == nil, let s = bestValidationStep, s != 0 {
            throw bad("bestValidationStep", s, "is set, but there is no bestValidationLoss")
        }
        if stoppedEarly == true {
            guard let patience = options.earlyStopPatience, (measurementsSinceBest ?? 0) >= patience else {
                throw bad("stoppedEarly", true, "but earlyStopPatience \(options.earlyStopPatience.map(String.init) ?? "nil") is not used up (measurementsSinceBest \(measurementsSinceBest ?? 0))")
            }
        }
        if let s = scheduledUpdates, options.learningRateSchedule.map({ if case .cosine = $0 { return false } else { return true } }) ?? true {
            throw bad("scheduledUpdates", s, "is set, but only a cosine learning-rate schedule has a length")
        }
    }
}
