import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn train`: d2l 8.5 by default; presets and options override.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a character language model (default: d2l 8.5, tanh RNN H512 on The Time Machine).",
        discussion:
            "Presets: \(TrainingPreset.allCases.map(\.rawValue).joined(separator: ", ")). Options given override the preset. "
            + "The d2l presets train on the first 10,000 tokens, as d2l does; without --preset, a --corpus of your own is read whole (--max-tokens decides in every case)."
    )

    @Option(help: "Preset (default d2l-rnn); options given override it.") var preset: TrainingPreset?
    /// The preset the run starts from.
    var basePreset: TrainingPreset { preset ?? .d2lRNN }
    @Option(help: "Embedded corpus (timemachine, tinyshakespeare) or a UTF-8 text file.") var corpus: String?
    @Option(
        help: "Tokens: d2l (letters, lower-case), raw (every character, 90/10 split) or words (d2l 8.2 word tokens).")
    var textMode: TextMode?
    @Option(help: "Words mode: words seen fewer times become <unk> (d2l min_freq).") var minFrequency: Int?
    @Option(help: "Use only the first N tokens (0 = all; default: all, or the d2l presets' 10,000).") var maxTokens:
        Int?
    @OptionGroup var model: ModelOptions
    @OptionGroup var productPrecision: ProductPrecisionOption
    @Option(
        help:
            "Initialisation: d2l (N(0, 0.01^2)), pytorch (U(+-1/sqrt(H))), identity (IRNN), orthogonal (W_hh gate blocks)."
    ) var initialization: Initialization?
    @Option(help: "LSTM: the forget gate's initial bias (char-rnn and Jozefowicz et al. use 1).") var forgetBias:
        Double?
    @Option(help: "Optimizer.") var optimizer: OptimizerKind?
    @Option(help: "Learning rate (>= 0).") var lr: Double?
    @Option(help: "SGD momentum, [0, 1).") var momentum: Double?
    @Option(help: "Weight decay (>= 0).") var weightDecay: Double?
    @Option(
        help:
            "Learning-rate schedule: constant, step (x --decay-factor every --decay-every updates, PyTorch StepLR), cosine (linear warm-up over --warmup updates, then cosine to --min-lr-factor x lr at the last update; with --time-limit the last update is estimated from the first updates' speed)."
    ) var schedule: ScheduleKind?
    @Option(help: "Step schedule: updates between decays (>= 1).") var decayEvery: Int?
    @Option(help: "Step schedule: factor per decay, (0, 1].") var decayFactor: Double?
    @Option(help: "Cosine schedule: warm-up updates (>= 0).") var warmup: Int?
    @Option(help: "Cosine schedule: final learning rate as a fraction of --lr, [0, 1].") var minLrFactor: Double?
    @Option(
        help: "Hold out this share of the text's end for validation, [0, 0.5] (default 0.1 in raw mode, 0 in d2l mode)."
    ) var validationFraction: Double?
    @Option(help: "Also measure the validation loss every N updates (>= 1); the best model goes to best.safetensors.")
    var evalEvery: Int?
    @Option(help: "Stop after N validation measurements in a row without improvement (>= 1).") var earlyStopPatience:
        Int?
    @Option(help: "Clip the global gradient norm to this (0 disables).") var clip: Double?
    @Option(help: "Minibatch rows B.") var batch: Int?
    @Option(help: "Truncated BPTT length T.") var steps: Int?
    @Option(help: "Minibatch sampling.") var sampling: SamplingStrategy?
    @Option(
        help:
            "Backpropagation through time: truncated (chunks of --steps), full (whole rows), randomized (unbiased, expected length --steps)."
    ) var bptt: BPTTStrategy?
    @Option(
        help:
            "Memory-efficient BPTT: keep states every N steps (a multiple of 16) and recompute the rest in backward; 0 keeps every activation."
    ) var recomputeInterval: Int?
    @Option(help: "Epochs.") var epochs: Int?
    @Option(help: "Stop after this many seconds of training.") var timeLimit: Double?
    @Option(help: "Random seed.") var seed: UInt64?
    @Option(help: "Print a greedy sample every N epochs (0 = never).") var sampleEvery: Int?
    @Option(help: "Prefix of the periodic sample.") var prefix: String?
    @Option(help: "Characters per periodic sample.") var sampleLength: Int?
    @Option(help: "Folder for model.safetensors, metrics.jsonl and perplexity.svg (default runs/<preset>).") var output:
        String?
    @OptionGroup var threadOptions: ThreadOptions

    func resolvedOptions() throws -> TrainingOptions {
        var o = basePreset.options
        if let corpus {
            // Your own text is read whole unless a preset you name (or --max-tokens) asks for a cut: the d2l cut
            // belongs to d2l's recipe, not to `rnn train`'s default.
            if preset == nil, corpus != o.corpus { o.maxTokens = nil }
            o.corpus = corpus
        }
        if let textMode { o.textMode = textMode }
        if let minFrequency { o.minimumFrequency = minFrequency }
        if let maxTokens {
            guard maxTokens >= 0 else {
                throw RecurrentKitError.invalidArgument("max-tokens", maxTokens, "must be >= 0 (0 = all)")
            }
            o.maxTokens = maxTokens == 0 ? nil : maxTokens
        }
        model.apply(to: &o)
        if let precision = productPrecision.resolved { o.precision = precision == .float32 ? nil : precision }
        if let initialization { o.initialization = initialization }
        if let forgetBias { o.forgetGateBias = forgetBias }
        if let optimizer { o.optimizer = optimizer }
        if let lr { o.learningRate = lr }
        if let momentum { o.momentum = momentum }
        if let weightDecay { o.weightDecay = weightDecay }
        if let clip { o.clip = clip }
        if let validationFraction { o.validationFraction = validationFraction }
        if let evalEvery { o.evaluateEvery = evalEvery }
        if let earlyStopPatience { o.earlyStopPatience = earlyStopPatience }
        try applySchedule(to: &o)
        if let batch { o.batchSize = batch }
        if let steps { o.numSteps = steps }
        if let sampling { o.sampling = sampling }
        if let bptt { o.bptt = bptt }
        if let recomputeInterval { o.recomputeInterval = try parseRecomputeInterval(recomputeInterval) }
        if let epochs { o.epochs = epochs }
        if let timeLimit { o.timeLimitSeconds = timeLimit }
        if let seed { o.seed = seed }
        if let sampleEvery { o.sampleEvery = sampleEvery }
        if let prefix { o.samplePrefix = prefix }
        if let sampleLength { o.sampleLength = sampleLength }
        try o.validate()
        return o
    }

    @Option(
        help:
            "Resume exactly from a checkpoint written by rnn train (its options are used; other options are ignored, except --recompute-interval, --time-limit and --threads)."
    ) var resume: String?
    @Option(
        help:
            "Start from the weights of a checkpoint (e.g. one exported from PyTorch), with its model shape (so --cell, --hidden, --layers, --embedding, --no-bias and --projection cannot be given)."
    ) var initFrom: String?
    @Option(help: "Also save a checkpoint every N updates (0 = only at the end and on interrupt).") var checkpointEvery:
        Int = 0
    @Flag(help: "Skip updates whose loss or gradient is NaN or infinite (counted) instead of stopping.")
    var skipNonfinite = false

    func run() throws {
        guard checkpointEvery >= 0 else {
            throw RecurrentKitError.invalidArgument("checkpoint-every", checkpointEvery, "must be >= 0")
        }
        try threadOptions.apply()
        // Under mpirun: one process of a data-parallel job. Every process trains its rows of each minibatch; rank 0
        // alone prints, locks the folder and writes files.
        let reducer = try joinLaunchedJob()
        let isRoot = reducer.rank == 0
        func say(_ line: String, terminator: String = "\n") { if isRoot { print(line, terminator: terminator) } }
        let trainer: LanguageModelTrainer
        let folder: String
        // One writer per output folder: the lock is taken before anything is read or written there, and held until
        // exit.
        var lock: OutputFolderLock? = nil
        func lockFolder(_ folder: String) throws {
            guard isRoot else { return }
            try createFolder(folder)
            lock = try OutputFolderLock(
                folder: folder,
                staleTemporariesOf: ["model.safetensors", "best.safetensors", "metrics.jsonl", "perplexity.svg"])
        }
        // The checkpoint that stays good if this run fails: the one resumed from, then each one saved.
        var lastGood: (path: String, step: Int)? = nil
        if let resume {
            folder = output ?? parentFolder(of: resume)
            try lockFolder(folder)
            trainer = try LanguageModelTrainer(resumingFrom: try Checkpoint.load(from: resume), reducer: reducer)
            lastGood = (resume, trainer.step)
            say("resuming \(resume) at update \(trainer.step)")
            if let saved = trainer.savedKernelLevel, saved != Kernels.activeLevel.name {
                say(
                    "note: this run was trained with \(saved) kernels and continues with \(Kernels.activeLevel.name): "
                        + "correct, but not bit-identical to an uninterrupted run"
                )
            } else if let saved = trainer.savedKernelBlocking, !Kernels.blocking.sumsLike(saved) {
                say(
                    "note: this run was trained with the blocking \(saved) and continues with \(Kernels.blocking) "
                        + "(another CPU's caches): correct, but not bit-identical to an uninterrupted run"
                )
            } else if trainer.options.precision == .bfloat16, let saved = trainer.savedBFloat16Products,
                saved != Kernels.bfloat16Products
            {
                say(
                    "note: this run computed its bf16 products \(saved) and continues \(Kernels.bfloat16Products) "
                        + "(another CPU's instructions): correct, but not bit-identical to an uninterrupted run"
                )
            }
            if let recomputeInterval {  // changes memory, never the gradients, so it may differ from the saved run's
                try trainer.setRecomputeInterval(try parseRecomputeInterval(recomputeInterval))
            }
            // this process's limit, whatever the checkpoint says
            if let timeLimit { try trainer.setTimeLimit(timeLimit) }
        } else {
            var options = try resolvedOptions()
            options.skipNonFinite = skipNonfinite
            let start = try initFrom.map { try Checkpoint.load(from: $0) }
            if let shape = start?.model.configuration {
                try shape.requireCausal(for: "training")
                try model.refuseShape(because: "--init-from takes the checkpoint's model shape")
                options.adoptModelShape(of: shape)
                options.textMode = start!.vocabulary.mode
            }
            folder = output ?? "runs/\(basePreset.rawValue)"
            try lockFolder(folder)
            if isRoot { try checkWritableLocation(folder + "/model.safetensors") }
            trainer = try LanguageModelTrainer(options: options, reducer: reducer)
            if let start {
                guard trainer.corpus.vocabulary == start.vocabulary else {
                    throw RecurrentKitError(
                        "--init-from: the checkpoint's vocabulary (\(start.vocabulary.count) tokens) differs from this "
                            + "text's (\(trainer.corpus.vocabulary.count))"
                    )
                }
                try trainer.model.parameters.copyValues(from: start.model.parameters)
                say("starting from the weights of \(initFrom!)")
            }
        }
        let options = trainer.options
        let checkpointPath = folder + "/model.safetensors"
        // A checkpoint holds the weights (F32) and the optimizer moments (F64); saving needs room for a second copy.
        let parameterCount = trainer.model.parameters.count
        let moments = options.optimizer == .sgd ? (options.momentum > 0 ? 1 : 0) : 2
        if isRoot {
            try checkWritableLocation(checkpointPath, requiredBytes: 2 * (4 + 8 * moments) * parameterCount + 1_000_000)
        }
        let config = trainer.model.configuration
        let weightCount = trainer.model.parameters.entries.reduce(0) { $0 + $1.count }
        say(
            "corpus \(options.corpus) (\(options.textMode.rawValue), vocabulary \(config.vocabularySize)): "
                + tokenCountLine(
                    trainer,
                    cutBy: resume == nil && maxTokens == nil && options.maxTokens != nil
                        ? "preset \(basePreset.rawValue)" : nil))
        if !trainer.corpus.validationTokens.isEmpty {
            say(
                "validation: "
                    + "\(trainer.validationLayout.description(tokenCount: trainer.corpus.validationTokens.count)), at "
                    + "the end of every epoch"
                    + (options.evaluateEvery.map { " and every \($0) updates" } ?? "") + "; rnn eval reads one stream")
        }
        say(
            "model \(config.cell.rawValue) H=\(config.hiddenSize) layers=\(config.numLayers)"
                + (config.embeddingSize.map { " embedding=\($0)" } ?? " one-hot")
                + ", \(weightCount) parameters, init \(options.initialization.rawValue)")
        say(
            "\(options.optimizer.rawValue) lr=\(options.learningRate)\(scheduleSummary(options)) clip=\(options.clip) "
                + "batch=\(options.batchSize) "
                + "steps=\(options.numSteps) "
                + "\(options.sampling.rawValue) sampling, \(options.bptt.rawValue) BPTT (chunks of "
                + "\(trainer.chunkLength)), \(trainer.minibatchesPerEpoch) updates/epoch, \(options.epochs) "
                + "epochs, seed \(options.seed), threads \(threadOptions.summary)"
                + (options.precision == .bfloat16 ? ", bf16 products (mixed precision)" : "")
                + (reducer.processCount > 1 ? " per process" : ""))
        if let bytes = options.estimatedMemoryBytes(
            vocabularySize: config.vocabularySize, chunkLength: trainer.chunkLength,
            trainingTokens: trainer.corpus.trainTokens.count,
            validationTokens: trainer.corpus.validationTokens.count)
        {
            say("memory: estimated \(bytes >> 20) MiB at the peak (checkpoint saves included)")
        }
        if let job = mpiJob {
            say(
                "MPI: \(job.processCount) processes (\(job.libraryVersion.isEmpty ? "MPI" : job.libraryVersion)), "
                    + "\(trainer.shard.count)"
                    + (options.batchSize % job.processCount == 0 ? "" : " or \(trainer.shard.count - 1)")
                    + " of the \(options.batchSize) rows each")
        }

        installStopHandlers()
        // mpirun's output is a pipe or a pty of the launcher
        let live = standardOutputIsTerminal && reducer.processCount == 1
        var lastLine = 0.0
        var savedAtStep = -1
        func save() throws {
            let checkpoint = try trainer.checkpoint()  // collective in an MPI job: every process makes it, rank 0 saves
            if isRoot { try checkpoint.save(to: checkpointPath) }
            savedAtStep = trainer.step
            lastGood = (checkpointPath, trainer.step)
        }
        // best.safetensors: the model at the lowest validation loss so far, written (atomically) when it is measured.
        let bestPath = folder + "/best.safetensors"
        let finished: Bool
        do {
            finished = try trainer.train(
                progress: { event in
                    guard isRoot else { return }
                    switch event {
                    case let .step(s):
                        if s.skipped {
                            print(
                                "\(live ? "\r\u{1B}[K" : "")skipped update in epoch \(s.epoch): loss \(s.loss), "
                                    + "gradient norm \(s.gradientNorm)"
                            )
                        }
                        let now = Date().timeIntervalSince1970
                        guard live else {
                            // Plain lines for logs: one progress line every 30 seconds, flushed so `tail -f` shows it.
                            if now - lastLine >= 30 && s.stepInEpoch != s.stepsPerEpoch {
                                lastLine = now
                                print(
                                    "epoch \(s.epoch)/\(options.epochs) step \(s.stepInEpoch)/\(s.stepsPerEpoch) ppl "
                                        + "\(fixed(s.runningPerplexity, 3)) \(whole(s.tokensPerSecond)) tok/s ETA "
                                        + "\(duration(s.secondsLeft))"
                                )
                                flushStandardOutput()
                            }
                            return
                        }
                        if now - lastLine < 0.1 && s.stepInEpoch != s.stepsPerEpoch { return }
                        lastLine = now
                        let line =
                            "epoch \(s.epoch)/\(options.epochs) step \(s.stepInEpoch)/\(s.stepsPerEpoch) ppl "
                            + "\(fixed(s.runningPerplexity, 3)) \(whole(s.tokensPerSecond)) tok/s ETA "
                            + "\(duration(s.secondsLeft))"
                        print("\r" + line + "\u{1B}[K", terminator: "")
                        flushStandardOutput()
                    case let .epoch(r):
                        if live { print("\r\u{1B}[K", terminator: "") }
                        var line = "epoch \(r.epoch) ppl \(fixed(r.trainPerplexity, 3))"
                        if let v = r.validationPerplexity { line += " val ppl \(fixed(v, 3))" }
                        line +=
                            " grad norm \(fixed(r.gradientNorm, 3)) \(whole(r.tokensPerSecond)) tok/s "
                            + "\(duration(r.elapsedSeconds))"
                        print(line)
                        flushStandardOutput()
                    case let .sample(_, text):
                        if live { print("\r\u{1B}[K", terminator: "") }
                        print("  > \(text)")
                        flushStandardOutput()
                    case let .validation(v):
                        if options.evaluateEvery != nil {
                            if live { print("\r\u{1B}[K", terminator: "") }
                            print(
                                "update \(v.step): validation loss \(fixed(v.loss, 4)) nats/token"
                                    + (v.isBest ? " (best)" : " (\(v.sinceBest) without improvement)"))
                            flushStandardOutput()
                        }
                    }
                }, shouldStop: { stopRequested != 0 },
                afterStep: { trainer in
                    if checkpointEvery > 0, trainer.step % checkpointEvery == 0, trainer.step != savedAtStep {
                        try save()
                    }
                },
                afterValidation: { trainer, report in
                    if report.isBest {
                        let checkpoint = try trainer.checkpoint()
                        if isRoot { try checkpoint.save(to: bestPath) }
                    }
                })
        } catch let error as RecurrentKitError {
            let last =
                lastGood.map { "; last good checkpoint: \($0.path) (update \($0.step))" }
                ?? "; no checkpoint was saved in this run"
            throw RecurrentKitError(error.message + last)
        }
        try save()
        guard isRoot else { return }
        try writeFileAtomically(Array(TrainingReports.jsonLines(trainer.history).utf8), to: folder + "/metrics.jsonl")
        try writeFileAtomically(
            Array(
                TrainingReports.perplexitySVG(
                    trainer.history, title: "\(options.cell.rawValue) H\(options.hiddenSize): perplexity per epoch"
                ).utf8),
            to: folder + "/perplexity.svg")
        if live { print("\r\u{1B}[K", terminator: "") }
        if !finished {
            print(
                "stopped at update \(trainer.step); saved \(checkpointPath); continue with: rnn train --resume "
                    + "\(checkpointPath)"
            )
            return
        }
        if let last = trainer.history.last {
            let bestRate = trainer.history.map(\.tokensPerSecond).max() ?? 0
            print(
                "perplexity \(fixed(last.trainPerplexity, 2))"
                    + (last.validationPerplexity.map { ", validation \(fixed($0, 2)) (row-parallel)" } ?? "")
                    + ", \(whole(last.tokensPerSecond)) tokens/s (best \(whole(bestRate))), "
                    + "\(duration(last.elapsedSeconds))"
                    + (trainer.skippedSteps > 0 ? ", \(trainer.skippedSteps) skipped updates" : "")
                    + ", peak memory \(Int(peakResidentMegabytes())) MB")
        }
        if reducer.processCount > 1, trainer.reducedUpdates > 0, let last = trainer.history.last {
            let perUpdate = trainer.reductionSeconds / Double(trainer.reducedUpdates)
            let updateSeconds = Double(options.batchSize * trainer.chunkLength) / max(last.tokensPerSecond, 1e-9)
            print(
                "MPI: \(fixed(perUpdate * 1000, 2)) ms per update in the sums on rank 0 "
                    + "(\(fixed(100 * perUpdate / updateSeconds, 1))% of the last epoch's update time, waiting for the "
                    + "slowest process included)"
            )
        }
        if trainer.stoppedEarly {
            print(
                "stopped early: \(options.earlyStopPatience ?? 0) validation measurements without improvement; best "
                    + "loss \(fixed(trainer.bestValidationLoss ?? .nan, 4)) at update \(trainer.bestValidationStep)"
            )
        }
        print(
            "saved \(checkpointPath), \(folder)/metrics.jsonl, \(folder)/perplexity.svg"
                + (trainer.bestValidationLoss != nil ? ", \(bestPath)" : ""))
        withExtendedLifetime(lock) {}
    }
}

/// What the run trains and validates on, and the cut when one applies (`cutBy` names who set it, when not --max-tokens
/// itself): "training on 9,000 tokens, validating on 1,000 (last 10%) of the first 10,000 tokens (--max-tokens)",
/// "training on all 170,580 tokens, no validation".
func tokenCountLine(_ trainer: LanguageModelTrainer, cutBy: String?) -> String {
    let options = trainer.options
    let train = trainer.corpus.trainTokens.count, validation = trainer.corpus.validationTokens.count
    // A cut applied when the text had more tokens than the limit (it gave exactly that many).
    let cut = options.maxTokens.flatMap { train + validation == $0 ? $0 : nil }
    guard validation > 0 else {
        guard let cut else { return "training on all \(grouped(train)) tokens, no validation" }
        return "training on the first \(grouped(cut)) tokens (\(cutReason(cut, cutBy))), no validation"
    }
    let fraction = options.validationFraction ?? (options.textMode == .raw ? 0.1 : 0)
    var percent = String(format: "%.1f", fraction * 100)
    if percent.hasSuffix(".0") { percent.removeLast(2) }
    return "training on \(grouped(train)) tokens, validating on \(grouped(validation)) (last \(percent)%) of "
        + (cut.map { "the first \(grouped($0)) tokens (\(cutReason($0, cutBy)))" } ?? "the whole text")
}

/// "--max-tokens" or "--max-tokens 10000 of preset d2l-rnn; --max-tokens 0 reads all".
private func cutReason(_ limit: Int, _ cutBy: String?) -> String {
    cutBy.map { "--max-tokens \(limit) of \($0); --max-tokens 0 reads all" } ?? "--max-tokens"
}

/// 1234567 as "1,234,567".
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = value < 0 ? "-" : ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return out
}

/// Set by SIGINT/SIGTERM: the trainer finishes its update, saves, and exits 0.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

func installStopHandlers() {
    signal(SIGINT) { _ in stopRequested = 1 }
    signal(SIGTERM) { _ in stopRequested = 1 }
}

/// `--recompute-interval`: 0 keeps every activation (nil); other values are checked by the options.
func parseRecomputeInterval(_ value: Int) throws -> Int? {
    guard value >= 0 else {
        throw RecurrentKitError.invalidArgument("recompute-interval", value, "must be >= 0 (0 keeps every activation)")
    }
    return value == 0 ? nil : value
}

func createFolder(_ path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else { throw RecurrentKitError("output \(path) exists and is not a folder") }
        return
    }
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw RecurrentKitError("cannot create output folder \(path)")
    }
}

func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

/// `x` without its fraction, for any value: a rate or duration read back from a checkpoint may be beyond Int's range
/// (converting one with `Int(_:)` trapped after a resumed run had saved), infinite or NaN.
func whole(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    return abs(x) < 1e15 ? String(Int(x)) : String(format: "%.0f", x)
}

func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    guard seconds < 1e15 else { return "\(whole(seconds / 3600))h" }
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
}
