#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One epoch's measurements.
public struct EpochReport: Codable, Equatable, Sendable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Updates applied so far, all epochs.
    public var step: Int
    /// exp(mean training cross-entropy) over this epoch's predictions (d2l's printed figure).
    public var trainPerplexity: Double
    /// exp(mean validation cross-entropy), when a validation split exists.
    public var validationPerplexity: Double?
    /// Mean gradient norm before clipping.
    public var gradientNorm: Double
    /// Training tokens (predictions) per second in this epoch.
    public var tokensPerSecond: Double
    /// Seconds since training started.
    public var elapsedSeconds: Double
}

/// What the trainer reports while it runs.
public enum TrainingEvent: Sendable {
    /// After every update: epoch (1-based), update within the epoch (1-based), updates per epoch, running perplexity,
    /// tokens per second so far in this epoch, estimated seconds left.
    case step(epoch: Int, step: Int, stepsPerEpoch: Int, perplexity: Double, tokensPerSecond: Double, secondsLeft: Double)
    /// After every epoch.
    case epoch(EpochReport)
    /// A periodic greedy sample (d2l `predict_ch8`).
    case sample(epoch: Int, text: String)
}

/// Trains a ``LanguageModel`` on a text with truncated BPTT, d2l's `train_ch8` loop:
/// per minibatch, reset the state (first minibatch of a sequential epoch, every random minibatch) or carry it
/// with its gradient cut, forward, cross-entropy averaged over T*B, backward, clip, update.
public final class Trainer {
    /// The options (validated).
    public let options: TrainingOptions
    /// Tokens and vocabulary.
    public let corpus: PreparedCorpus
    /// The model being trained.
    public let model: LanguageModel<Float>
    /// The optimizer.
    public let optimizer: Optimizer
    /// Per-epoch history.
    public private(set) var history: [EpochReport] = []
    /// Updates applied.
    public private(set) var step = 0
    private var generator: SeededGenerator
    private let schedule: MinibatchSchedule

    /// Prepares the text (loading a file when `options.corpus` is not an embedded name) and builds the model.
    public convenience init(options: TrainingOptions) throws {
        try options.validate()
        let text: String
        if let embedded = EmbeddedCorpus(rawValue: options.corpus) { text = embedded.text } else { text = try loadTextFile(at: options.corpus) }
        let corpus = try PreparedCorpus.prepare(text: text, mode: options.textMode, maxTokens: options.maxTokens,
                                                validationFraction: options.textMode == .raw ? options.validationFraction : 0)
        try self.init(options: options, corpus: corpus)
    }

    /// Trains on an already prepared corpus.
    public init(options: TrainingOptions, corpus: PreparedCorpus) throws {
        try options.validate()
        self.options = options
        self.corpus = corpus
        schedule = try MinibatchSchedule(tokens: corpus.trainTokens, batchSize: options.batchSize, numSteps: options.numSteps,
                                         strategy: options.sampling)
        generator = SeededGenerator(seed: options.seed)
        let configuration = LanguageModelConfiguration(vocabularySize: corpus.vocabulary.count, cell: options.cell,
                                                       hiddenSize: options.hiddenSize, numLayers: options.numLayers,
                                                       dropout: options.dropout, embeddingSize: options.embeddingSize)
        model = try LanguageModel(configuration, initialization: options.initialization, generator: &generator)
        optimizer = try options.makeOptimizer()
    }

    /// Minibatches (updates) per epoch (the count for the worst random offset; an epoch may have one more).
    public var minibatchesPerEpoch: Int { schedule.minibatchesPerEpoch }

    /// Runs all epochs (or until the time limit), reporting through `progress`.
    /// Throws, naming the update, when the loss or the gradient norm becomes NaN or infinite.
    @discardableResult
    public func train(progress: (TrainingEvent) -> Void = { _ in }) throws -> [EpochReport] {
        let start = monotonicSeconds()
        let B = options.batchSize, T = options.numSteps
        for epoch in (history.count + 1)...options.epochs {
            let epochStart = monotonicSeconds()
            let minibatches = schedule.epoch(using: &generator)
            var lossSum = 0.0, tokenCount = 0, normSum = 0.0
            var state: RecurrentState<Float>? = nil
            for (index, batch) in minibatches.enumerated() {
                if batch.resetsState { state = nil } // nil = zeros; otherwise the carried value (gradient cut)
                model.parameters.zeroGradients()
                let loss = try model.loss(inputs: batch.inputs, targets: batch.targets, steps: T, batch: B, state: state,
                                          training: true, generator: &generator)
                guard loss.isFinite else {
                    throw RecurrentKitError("training diverged: loss is \(loss) at update \(step + 1) (epoch \(epoch)); try a lower learning rate or clipping")
                }
                let norm: Double
                if options.clip > 0 {
                    do { norm = try clipGradientNorm(model.parameters, maxNorm: options.clip, style: options.clipStyle) }
                    catch { throw RecurrentKitError("training diverged at update \(step + 1) (epoch \(epoch)): \(error)") }
                } else {
                    norm = model.parameters.gradientSquaredNorm().squareRoot()
                    guard norm.isFinite else { throw RecurrentKitError("training diverged: gradient norm is \(norm) at update \(step + 1) (epoch \(epoch))") }
                }
                try optimizer.step(model.parameters)
                step += 1
                state = try model.finalState()
                lossSum += loss * Double(T * B)
                tokenCount += T * B
                normSum += norm
                let elapsed = monotonicSeconds() - epochStart
                let rate = Double(tokenCount) / max(elapsed, 1e-9)
                let updatesLeft = Double(minibatches.count - index - 1 + (options.epochs - epoch) * minibatches.count)
                progress(.step(epoch: epoch, step: index + 1, stepsPerEpoch: minibatches.count,
                               perplexity: perplexity(meanCrossEntropy: lossSum / Double(tokenCount)), tokensPerSecond: rate,
                               secondsLeft: updatesLeft * elapsed / Double(index + 1)))
                if let limit = options.timeLimitSeconds, monotonicSeconds() - start >= limit { break }
            }
            let seconds = monotonicSeconds() - epochStart
            var report = EpochReport(epoch: epoch, step: step, trainPerplexity: perplexity(meanCrossEntropy: lossSum / Double(max(tokenCount, 1))),
                                     validationPerplexity: nil, gradientNorm: normSum / Double(max(minibatches.count, 1)),
                                     tokensPerSecond: Double(tokenCount) / max(seconds, 1e-9), elapsedSeconds: 0)
            if !corpus.validationTokens.isEmpty {
                report.validationPerplexity = perplexity(meanCrossEntropy: try Evaluation.meanCrossEntropy(
                    model: model, tokens: corpus.validationTokens, batchSize: B, numSteps: T))
            }
            report.elapsedSeconds = monotonicSeconds() - start
            history.append(report)
            progress(.epoch(report))
            let timeUp = options.timeLimitSeconds.map { monotonicSeconds() - start >= $0 } ?? false
            if options.sampleEvery > 0, epoch % options.sampleEvery == 0 || epoch == options.epochs || timeUp, !options.samplePrefix.isEmpty {
                progress(.sample(epoch: epoch, text: try TextGenerator.predict(model: model, vocabulary: corpus.vocabulary,
                                                                               prefix: options.samplePrefix, length: options.sampleLength)))
            }
            if timeUp { break }
        }
        return history
    }

    /// A checkpoint of the current model with these options and the history as training metadata.
    public func checkpoint() throws -> Checkpoint {
        try Checkpoint(model: model, vocabulary: corpus.vocabulary, training: trainingMetadataJSON())
    }

    private func trainingMetadataJSON() -> String {
        let last = history.last
        var fields = ["\"epoch\": \(history.count)", "\"step\": \(step)", "\"seed\": \(options.seed)"]
        if let last { fields.append("\"train_perplexity\": \(last.trainPerplexity)") }
        if let v = last?.validationPerplexity { fields.append("\"validation_perplexity\": \(v)") }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

/// Perplexity of a model on a token sequence.
public enum Evaluation {
    /// Mean cross-entropy (nats per token) of predicting tokens[i+1] from tokens[...i], the state carried across
    /// chunks of `numSteps`: the sequence is cut into `batchSize` contiguous rows read in parallel (fewer rows when
    /// the text is short). Needs at least 2 tokens.
    public static func meanCrossEntropy(model: LanguageModel<Float>, tokens: [Int], batchSize: Int = 32, numSteps: Int = 35) throws -> Double {
        guard tokens.count >= 2 else { throw RecurrentKitError("text to evaluate has \(tokens.count) token(s); at least 2 are needed") }
        guard batchSize >= 1, numSteps >= 1 else { throw RecurrentKitError("batch and steps must be at least 1") }
        let rows = max(1, min(batchSize, (tokens.count - 1) / numSteps))
        let rowLength = (tokens.count - 1) / rows
        var state: RecurrentState<Float>? = nil
        var total = 0.0, count = 0
        var generator = SeededGenerator(seed: 0)
        var start = 0
        while start < rowLength {
            let T = min(numSteps, rowLength - start)
            var inputs = [Int](repeating: 0, count: T * rows), targets = inputs
            for t in 0..<T {
                for b in 0..<rows {
                    inputs[t * rows + b] = tokens[b * rowLength + start + t]
                    targets[t * rows + b] = tokens[b * rowLength + start + t + 1]
                }
            }
            let loss = try model.loss(inputs: inputs, targets: targets, steps: T, batch: rows, state: state,
                                      training: false, computeGradients: false, generator: &generator)
            state = try model.finalState()
            total += loss * Double(T * rows)
            count += T * rows
            start += T
        }
        return total / Double(count)
    }
}

/// Seconds from a monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
