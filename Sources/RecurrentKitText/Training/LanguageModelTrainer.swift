import RecurrentKit
import Foundation

// The character/word-model trainer: a configuration of the generic Trainer (a LanguageModel carrying its state
// through d2l's minibatches, the next-token loss, one random stream), with the checkpoint format of language models.

/// Trains a ``LanguageModel`` on a text with truncated BPTT, d2l's `train_ch8` loop:
/// per minibatch, reset the state (first minibatch of a sequential epoch, every random minibatch) or carry it
/// with its gradient cut, forward, cross-entropy averaged over T*B, backward, clip, update.
///
/// It is a configuration of the generic `Trainer` (``trainer``): the model is a `StatefulLayer`, the data are
/// ``TokenStreamBatches``, the loss is ``NextTokenLoss``, dropout and randomized truncation draw from one
/// `RandomStream/continuous` stream, and validation reads the held-out tokens with ``Evaluation``. What it adds:
/// the model and text built from ``TrainingOptions``, perplexity reports and samples, and checkpoints with the
/// vocabulary (``Checkpoint``).
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
    /// The training minibatches.
    public let data: TokenStreamBatches<Float>
    /// The generic trainer this one configures (its loop, schedule, clipping, validation cadence and state).
    public let trainer: Trainer<LanguageModel<Float>, TokenStreamBatches<Float>>
    /// Per-epoch history.
    public internal(set) var history: [EpochReport] = []
    /// The kernel level (`Kernels.Level.name`) the resumed run was trained with, when the checkpoint records it.
    /// Resuming is bit-identical on the same level; on another level the products round differently and the run
    /// continues correctly but not bit for bit.
    public internal(set) var savedKernelLevel: String? = nil
    /// The matrix products' blocking (`Kernels.Blocking.description`) the resumed run was trained with, when the
    /// checkpoint records it (nil for files written before it was). On the same level, resuming is bit-identical
    /// where `Kernels.blocking.sumsLike(_:)` holds; otherwise the sums round differently (another CPU's caches gave
    /// another `kc`) and the run continues correctly but not bit for bit.
    public internal(set) var savedKernelBlocking: String? = nil
    /// How the resumed run computed its bfloat16 products (`Kernels.bfloat16Products`), when the checkpoint records
    /// it (nil for files written before it was). A run with bfloat16 products resumes bit for bit only where it equals
    /// today's (the dot instructions and the widened path round the sums differently); a Float run does not use it.
    public internal(set) var savedBFloat16Products: String? = nil

    /// Seconds this process has spent in the reducer's sums during updates (gradients, loss, stop decisions), waiting
    /// for the slowest process included; 0 with one process.
    public var reductionSeconds: Double { trainer.reductionSeconds }
    /// Updates that ``reductionSeconds`` covers.
    public var reducedUpdates: Int { trainer.reducedUpdates }
    /// Updates applied (skipped ones excluded).
    public var step: Int { trainer.step }
    /// Updates skipped because of NaN or infinite values (`skipNonFinite`).
    public var skippedSteps: Int { trainer.skippedSteps }
    /// True when every epoch has run, or early stopping ended the run.
    public var isFinished: Bool { trainer.isFinished }
    /// The lowest validation loss measured so far (nats per token), nil before the first measurement.
    public var bestValidationLoss: Double? { trainer.bestValidationLoss }
    /// The update at which ``bestValidationLoss`` was measured.
    public var bestValidationStep: Int { trainer.bestValidationStep }
    /// Validation measurements since the best one.
    public var measurementsSinceBest: Int { trainer.measurementsSinceBest }
    /// Whether `earlyStopPatience` measurements without improvement ended the run.
    public var stoppedEarly: Bool { trainer.stoppedEarly }
    /// Updates over which a cosine learning-rate schedule runs: epochs x minibatches per epoch, or the count fixed
    /// from the first updates' speed under a time limit.
    public var scheduledUpdates: Int { trainer.scheduledUpdates }
    /// Updates measured before a time-limited cosine schedule fixes its length (`Trainer`'s).
    static var calibrationUpdates: Int { Trainer<LanguageModel<Float>, TokenStreamBatches<Float>>.calibrationUpdates }
    /// Updates run before the calibration starts timing.
    static var calibrationWarmUp: Int { Trainer<LanguageModel<Float>, TokenStreamBatches<Float>>.calibrationWarmUp }
    /// The minibatch layout.
    var schedule: MinibatchSchedule { data.schedule }

    /// Prepares the text (loading a file when `options.corpus` is not an embedded name) and builds the model.
    /// - Parameters:
    ///   - options: the run's options.
    ///   - reducer: the data-parallel job this process belongs to (default: one process). With several processes
    ///     the corpus must be a regular file (every process reads it; none may wait on a FIFO).
    public convenience init(options: TrainingOptions, reducer: GradientReducer = SingleProcessReducer()) throws {
        try options.validate()
        let corpus = try LanguageModelTrainer.prepareCorpus(
            options, allowStreams: reducer.processCount == 1,
            why: "every process of the job reads it")
        try self.init(options: options, corpus: corpus, reducer: reducer)
    }

    /// Trains on an already prepared corpus.
    /// - Parameters:
    ///   - options: the run's options.
    ///   - corpus: the prepared text (every process of a job must prepare the same).
    ///   - reducer: the data-parallel job this process belongs to (default: one process); throws when it has more
    ///     processes than the batch has rows.
    public init(
        options: TrainingOptions, corpus: PreparedCorpus, reducer: GradientReducer = SingleProcessReducer()
    ) throws {
        try options.validate()
        self.options = options
        self.corpus = corpus
        self.reducer = reducer
        shard = try reducer.shard(ofBatch: options.batchSize)
        let schedule = try MinibatchSchedule(
            tokens: corpus.trainTokens, batchSize: options.batchSize,
            numSteps: LanguageModelTrainer.chunkLength(options, tokenCount: corpus.trainTokens.count),
            strategy: options.sampling)
        guard
            let bytes = options.estimatedMemoryBytes(
                vocabularySize: corpus.vocabulary.count, chunkLength: schedule.numSteps,
                trainingTokens: corpus.trainTokens.count, validationTokens: corpus.validationTokens.count)
        else {
            throw RecurrentKitError(
                "model and minibatch sizes too large: the memory they need does not fit in a 64-bit count")
        }
        try checkMemory(
            bytes,
            for:
                "training \(options.cell.rawValue) H \(options.hiddenSize) x \(options.numLayers) layer(s), batch "
                + "\(options.batchSize) x \(schedule.numSteps) steps"
        )
        if options.sampleEvery > 0, !options.samplePrefix.isEmpty {
            // A prefix the vocabulary cannot encode fails now, not after the first epoch.
            do { _ = try corpus.vocabulary.encode(options.samplePrefix) } catch let error as RecurrentKitError {
                throw RecurrentKitError("sample prefix: \(error.message)")
            }
        }
        var generator = SeededGenerator(seed: options.seed)
        let configuration = options.modelConfiguration(vocabularySize: corpus.vocabulary.count)
        model = try LanguageModel(configuration, initialization: options.initialization, generator: &generator)
        if let b = options.forgetGateBias { try model.recurrent.setForgetGateBias(b) }
        model.recurrent.recomputeInterval = options.recomputeInterval
        // Every process draws the whole batch's dropout masks from the one stream and keeps its rows.
        if !shard.isWholeBatch { model.recurrent.dropoutShard = shard }
        if options.bptt == .randomized { model.randomizedTruncation = 1 - 1 / Double(max(options.numSteps, 2)) }
        optimizer = try options.makeOptimizer()
        // The two streams of d2l's loop: offsets and shuffles, then dropout masks and truncation seeds.
        data = try TokenStreamBatches(schedule: schedule, generator: SeededGenerator(seed: generator.next()))
        let streamSeed = generator.next()
        let validationTokens = corpus.validationTokens,
            layout = EvaluationLayout.rows(batch: options.batchSize, steps: options.numSteps)
        let loss = NextTokenLoss<Float>()
        trainer = try Trainer(
            model: model, optimizer: optimizer, data: data,
            options: LanguageModelTrainer.trainerOptions(options, seed: streamSeed),
            reducer: reducer,
            measureValidation: validationTokens.isEmpty
                ? nil
                : { model in
                    // The rows shared among the processes; every process decides from rank 0's figure: hosts whose
                    // kernels differ (AVX-512 and AVX2) measure different last bits, and the best model and early
                    // stopping are collective.
                    let measured = try Evaluation.meanCrossEntropy(
                        model: model, tokens: validationTokens, layout: layout, reducer: reducer)
                    return try reducer.broadcastFromRankZero(measured)
                }
        ) { try loss($0, $1) }
    }

    /// The generic trainer's options for `options`, its continuous stream seeded by `seed`.
    static func trainerOptions(_ options: TrainingOptions, seed: UInt64) -> TrainerOptions {
        TrainerOptions(
            epochs: options.epochs, clip: options.clip, clipStyle: options.clipStyle,
            learningRateSchedule: options.learningRateSchedule,
            validateEvery: options.evaluateEvery, earlyStopPatience: options.earlyStopPatience,
            timeLimitSeconds: options.timeLimitSeconds,
            precision: options.precision ?? .float32, seed: seed, skipNonFinite: options.skipNonFinite,
            randomStream: .continuous)
    }

    /// Steps per chunk: `numSteps` for truncated BPTT; for full and randomized, the longest chunk that still gives
    /// every row one chunk per epoch for any offset, (N - 1) / (B + 1).
    static func chunkLength(_ options: TrainingOptions, tokenCount: Int) -> Int {
        options.bptt == .truncated ? options.numSteps : max(1, (tokenCount - 1) / (options.batchSize + 1))
    }

    /// Steps per training chunk (T of every minibatch).
    public var chunkLength: Int { schedule.numSteps }

    /// The text of `options.corpus`, prepared; without `allowStreams` the corpus must be a regular file (`why` says
    /// what requires it).
    static func prepareCorpus(
        _ options: TrainingOptions, allowStreams: Bool = true, why: String = ""
    ) throws -> PreparedCorpus {
        let text: String
        do { text = try loadCorpusText(options.corpus, allowStreams: allowStreams) } catch let error
            as RecurrentKitError where !allowStreams
        {
            throw error.message.contains("is not a regular file")
                ? RecurrentKitError("\(error.message) (\(why))") : error
        }
        return try PreparedCorpus.prepare(
            text: text, mode: options.textMode, maxTokens: options.maxTokens,
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
    public func train(
        progress: (TrainingEvent) -> Void = { _ in }, shouldStop: () -> Bool = { false },
        afterStep: (LanguageModelTrainer) throws -> Void = { _ in },
        afterValidation: (LanguageModelTrainer, ValidationReport) throws -> Void = { _, _ in }
    ) throws -> Bool {
        let start = monotonicSeconds()
        let firstStep = trainer.step
        var epochEnded = false
        do {
            return try trainer.train(
                progress: { event in
                    switch event {
                    case .update(let r):
                        progress(
                            .step(
                                StepReport(
                                    epoch: r.epoch, stepInEpoch: r.batch, stepsPerEpoch: r.batchesPerEpoch,
                                    step: r.step, loss: r.loss,
                                    gradientNorm: r.gradientNorm,
                                    runningPerplexity: perplexity(meanCrossEntropy: r.epochMeanLoss),
                                    tokensPerSecond: r.examplesPerSecond, secondsLeft: r.secondsLeft, skipped: r.skipped
                                )))
                    case .validation(let r):
                        progress(.validation(r))
                    case .epoch(let s):
                        let report = EpochReport(
                            epoch: s.epoch, step: s.step, trainPerplexity: perplexity(meanCrossEntropy: s.trainingLoss),
                            validationPerplexity: s.validationLoss.map { perplexity(meanCrossEntropy: $0) },
                            gradientNorm: s.gradientNorm, tokensPerSecond: s.examplesPerSecond,
                            elapsedSeconds: s.elapsedSeconds,
                            learningRate: s.learningRate)
                        history.append(report)
                        progress(.epoch(report))
                        epochEnded = true
                    }
                }, shouldStop: shouldStop,
                afterStep: { _ in
                    if epochEnded, let report = history.last {
                        epochEnded = false
                        if !report.trainPerplexity.isFinite && !options.skipNonFinite {
                            // Every loss was finite, but so large that exp overflows: the run has diverged.
                            throw RecurrentKitError(
                                "training stopped: the training perplexity of epoch \(report.epoch) is "
                                    + "\(report.trainPerplexity) at update \(step) (the run "
                                    + "diverged)\(resumedCause(since: firstStep)); the last saved checkpoint is "
                                    + "unchanged; try a lower learning rate, clipping, or --skip-nonfinite"
                            )
                        }
                        let last = report.epoch == options.epochs
                        let timeUp = options.timeLimitSeconds.map { monotonicSeconds() - start >= $0 } ?? false
                        if options.sampleEvery > 0, report.epoch % options.sampleEvery == 0 || last || timeUp,
                            !options.samplePrefix.isEmpty
                        {
                            progress(
                                .sample(
                                    epoch: report.epoch,
                                    text: try TextGenerator.predict(
                                        model: model, vocabulary: corpus.vocabulary,
                                        prefix: options.samplePrefix, length: options.sampleLength)))
                        }
                    }
                    try afterStep(self)
                }, afterValidation: { _, report in try afterValidation(self, report) })
        } catch let error as RecurrentKitError
            where error.message.hasPrefix("training stopped:")
            && error.message.hasSuffix("; try a lower learning rate, clipping, or skipNonFinite")
        {
            // The promise this trainer's checkpoints keep, and the command line's words for the option.
            let cause = error.message.dropLast("; try a lower learning rate, clipping, or skipNonFinite".count)
            let resumed = resumedCause(since: firstStep)
            throw RecurrentKitError(
                cause + resumed
                    + "; the last saved checkpoint is unchanged; try a lower learning rate, clipping, or "
                    + "--skip-nonfinite"
            )
        }
    }

    /// A run that diverges within an epoch's updates of resuming may have been driven there by the resumed weights or
    /// optimizer state (huge but finite moments in an edited or damaged file resume, then overflow) as much as by
    /// the learning rate: the words that say so, or "" for a run that started at update 0 or ran longer.
    private func resumedCause(since firstStep: Int) -> String {
        guard firstStep > 0, trainer.step - firstStep <= max(minibatchesPerEpoch, 1) else { return "" }
        return ", \(trainer.step - firstStep + 1) update(s) after resuming at update \(firstStep): the checkpoint's"
            + " weights or optimizer state may be damaged (resume from an earlier checkpoint), or the learning rate is"
            + " too high"
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

    /// Changes the time limit of this process's training (nil: none), also for a resumed run: `rnn train --resume
    /// --time-limit` bounds the new run whatever the checkpoint says.
    public func setTimeLimit(_ seconds: Double?) throws {
        var changed = options
        changed.timeLimitSeconds = seconds
        try changed.validate()
        var trainerOptions = trainer.options
        trainerOptions.timeLimitSeconds = seconds
        try trainer.setOptions(trainerOptions)
        options = changed
    }
}
