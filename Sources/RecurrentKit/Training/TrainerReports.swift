// What a Trainer reports: its events, and the measurements of an update, an epoch and a validation.

/// What a ``Trainer`` reports while it runs.
public enum TrainerEvent: Sendable {
    /// After every update.
    case update(UpdateReport)
    /// After every epoch.
    case epoch(EpochSummary)
    /// After every validation measurement.
    case validation(ValidationReport)
}

/// One update's measurements.
public struct UpdateReport: Sendable, Equatable {
    /// The epoch (from 1).
    public var epoch: Int
    /// The batch in the epoch (from 1).
    public var batch: Int
    /// Batches in every epoch.
    public var batchesPerEpoch: Int
    /// Updates applied so far (this one included; skipped ones excluded).
    public var step: Int
    /// The batch's loss.
    public var loss: Double
    /// The gradient norm before clipping.
    public var gradientNorm: Double
    /// The learning rate of this update.
    public var learningRate: Double
    /// Whether the update was skipped for a NaN or infinite value (``TrainerOptions/skipNonFinite``).
    public var skipped: Bool
    /// Mean loss of the epoch's applied updates so far (each batch weighted by its count).
    public var epochMeanLoss: Double
    /// Training examples per second so far in this epoch: the epoch's examples over the seconds its updates took
    /// (validation excluded), including the part of the epoch before a resume, so right after a resume it is still
    /// mostly the earlier run's rate.
    public var examplesPerSecond: Double
    /// Estimated seconds until the last epoch ends, at this epoch's speed.
    public var secondsLeft: Double
}

/// One epoch's measurements.
public struct EpochSummary: Codable, Sendable, Equatable {
    /// The epoch (from 1).
    public var epoch: Int
    /// Updates applied so far.
    public var step: Int
    /// Mean training loss over the epoch's examples (each batch weighted by its count).
    public var trainingLoss: Double
    /// The validation loss at the end of the epoch, when validation data are given.
    public var validationLoss: Double?
    /// Mean gradient norm before clipping.
    public var gradientNorm: Double
    /// Training examples per second in this epoch: its examples over the seconds its updates took (validation
    /// excluded), the part before a resume included.
    public var examplesPerSecond: Double
    /// Seconds of training so far (earlier runs of a resumed trainer included).
    public var elapsedSeconds: Double
    /// The learning rate of the epoch's last update.
    public var learningRate: Double

    /// A summary from its fields.
    public init(
        epoch: Int, step: Int, trainingLoss: Double, validationLoss: Double?, gradientNorm: Double,
        examplesPerSecond: Double,
        elapsedSeconds: Double, learningRate: Double
    ) {
        (self.epoch, self.step, self.trainingLoss, self.validationLoss) = (epoch, step, trainingLoss, validationLoss)
        (self.gradientNorm, self.examplesPerSecond, self.elapsedSeconds, self.learningRate) = (
            gradientNorm, examplesPerSecond, elapsedSeconds, learningRate
        )
    }
}

/// One validation measurement.
public struct ValidationReport: Codable, Equatable, Sendable {
    /// Updates applied when it was measured.
    public var step: Int
    /// The epoch it belongs to (1-based).
    public var epoch: Int
    /// The validation loss (for a language model, mean cross-entropy in nats per token).
    public var loss: Double
    /// Whether it is the lowest so far (the model now is the best one).
    public var isBest: Bool
    /// Measurements in a row without a new best, this one included (0 when `isBest`).
    public var sinceBest: Int

    /// A report from its fields.
    public init(step: Int, epoch: Int, loss: Double, isBest: Bool, sinceBest: Int) {
        (self.step, self.epoch, self.loss, self.isBest, self.sinceBest) = (step, epoch, loss, isBest, sinceBest)
    }
}
