// What a LanguageModelTrainer reports: per update, per epoch, samples and validations.

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
    public init(
        epoch: Int, step: Int, trainPerplexity: Double, validationPerplexity: Double? = nil, gradientNorm: Double,
        tokensPerSecond: Double, elapsedSeconds: Double, learningRate: Double? = nil
    ) {
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
