/// How a ``Trainer`` runs: length, clipping, schedule, validation, early stopping, files. Every field has a default
/// that switches nothing off silently: no clipping unless `clip` is set, every batch of every epoch, validation at
/// every epoch's end when validation data are given.
public struct TrainerOptions: Codable, Equatable, Sendable {
    /// Epochs to run (at least 1).
    public var epochs: Int
    /// Stop after this many updates in all (nil: run every epoch).
    public var maxUpdates: Int?
    /// Clip the gradient norm to this value before each update (0: no clipping).
    public var clip: Double
    /// How the clipping norm is computed (PyTorch's `clip_grad_norm_` by default).
    public var clipStyle: ClipStyle
    /// The learning rate over the run, from the optimizer's rate at construction (nil: constant).
    public var learningRateSchedule: LearningRateSchedule?
    /// Also validate every this many updates (nil: at the end of every epoch only).
    public var validateEvery: Int?
    /// Stop when this many validation measurements in a row bring no new best (nil: never).
    public var earlyStopPatience: Int?
    /// Stop (resumably) after the update during which this many seconds of training have passed (nil: no limit).
    public var timeLimitSeconds: Double?
    /// The precision of the matrix products of the forward and backward passes (``ProductPrecision/bfloat16``: bf16
    /// operands, Float sums and weights); validation and everything else stay Float.
    public var precision: ProductPrecision
    /// Seeds the dropout masks.
    public var seed: UInt64
    /// Where the dropout masks (and a model's other draws, such as randomized truncation) come from: one generator per
    /// batch (default) or one stream through the run (d2l's, and `LanguageModelTrainer`'s).
    public var randomStream: RandomStream
    /// Skip an update whose loss or gradient norm is NaN or infinite instead of stopping with an error.
    public var skipNonFinite: Bool
    /// Where to save the parameters each time validation finds a new best (nil: not saved).
    public var bestCheckpointPath: String?
    /// Where to write every epoch summary and validation as JSON lines (nil: not written).
    public var metricsPath: String?

    /// Options; see each property.
    public init(
        epochs: Int = 10, maxUpdates: Int? = nil, clip: Double = 0, clipStyle: ClipStyle = .pytorch,
        learningRateSchedule: LearningRateSchedule? = nil, validateEvery: Int? = nil, earlyStopPatience: Int? = nil,
        timeLimitSeconds: Double? = nil, precision: ProductPrecision = .float32, seed: UInt64 = 0,
        skipNonFinite: Bool = false,
        bestCheckpointPath: String? = nil, metricsPath: String? = nil, randomStream: RandomStream = .perBatch
    ) {
        (self.epochs, self.maxUpdates, self.clip, self.clipStyle) = (epochs, maxUpdates, clip, clipStyle)
        (self.learningRateSchedule, self.validateEvery, self.earlyStopPatience) = (
            learningRateSchedule, validateEvery, earlyStopPatience
        )
        (self.timeLimitSeconds, self.precision, self.seed, self.skipNonFinite) = (
            timeLimitSeconds, precision, seed, skipNonFinite
        )
        (self.bestCheckpointPath, self.metricsPath, self.randomStream) = (bestCheckpointPath, metricsPath, randomStream)
    }

    private enum CodingKeys: String, CodingKey {
        case epochs, maxUpdates, clip, clipStyle, learningRateSchedule, validateEvery, earlyStopPatience,
            timeLimitSeconds, precision, seed
        case skipNonFinite, bestCheckpointPath, metricsPath, randomStream
    }

    /// Decodes options; `randomStream` may be absent (files written before it existed: one generator per batch).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            epochs: try c.decode(Int.self, forKey: .epochs),
            maxUpdates: try c.decodeIfPresent(Int.self, forKey: .maxUpdates),
            clip: try c.decode(Double.self, forKey: .clip), clipStyle: try c.decode(ClipStyle.self, forKey: .clipStyle),
            learningRateSchedule: try c.decodeIfPresent(LearningRateSchedule.self, forKey: .learningRateSchedule),
            validateEvery: try c.decodeIfPresent(Int.self, forKey: .validateEvery),
            earlyStopPatience: try c.decodeIfPresent(Int.self, forKey: .earlyStopPatience),
            timeLimitSeconds: try c.decodeIfPresent(Double.self, forKey: .timeLimitSeconds),
            precision: try c.decode(ProductPrecision.self, forKey: .precision),
            seed: try c.decode(UInt64.self, forKey: .seed),
            skipNonFinite: try c.decode(Bool.self, forKey: .skipNonFinite),
            bestCheckpointPath: try c.decodeIfPresent(String.self, forKey: .bestCheckpointPath),
            metricsPath: try c.decodeIfPresent(String.self, forKey: .metricsPath),
            randomStream: try c.decodeIfPresent(RandomStream.self, forKey: .randomStream) ?? .perBatch)
    }

    /// Throws one line naming the first invalid option.
    public func validate() throws {
        guard epochs >= 1 else { throw RecurrentKitError.invalidArgument("epochs", epochs, "must be at least 1") }
        if let maxUpdates, maxUpdates < 1 {
            throw RecurrentKitError.invalidArgument("maxUpdates", maxUpdates, "must be at least 1")
        }
        guard clip.isFinite, clip >= 0 else {
            throw RecurrentKitError.invalidArgument("clip", clip, "must be finite and >= 0 (0: no clipping)")
        }
        try learningRateSchedule?.validate()
        if let validateEvery, validateEvery < 1 {
            throw RecurrentKitError.invalidArgument("validateEvery", validateEvery, "must be at least 1")
        }
        if let earlyStopPatience, earlyStopPatience < 1 {
            throw RecurrentKitError.invalidArgument("earlyStopPatience", earlyStopPatience, "must be at least 1")
        }
        if let timeLimitSeconds, !(timeLimitSeconds > 0 && timeLimitSeconds.isFinite) {
            throw RecurrentKitError.invalidArgument(
                "timeLimitSeconds", timeLimitSeconds, "must be a positive number of seconds")
        }
    }

    /// Whether a run saved with `self` may continue with `other`: only the length, the time limit, the validation
    /// cadence, the patience and the output paths may change.
    func allowsResuming(as other: TrainerOptions) -> Bool {
        var a = self, b = other
        for o in [\TrainerOptions.maxUpdates, \.validateEvery, \.earlyStopPatience] {
            a[keyPath: o] = nil; b[keyPath: o] = nil
        }
        (a.epochs, a.timeLimitSeconds, a.bestCheckpointPath, a.metricsPath) = (0, nil, nil, nil)
        (b.epochs, b.timeLimitSeconds, b.bestCheckpointPath, b.metricsPath) = (0, nil, nil, nil)
        return a == b
    }
}

/// Where a ``Trainer``'s random draws (dropout masks, randomized truncation) come from.
public enum RandomStream: String, Codable, Sendable {
    /// Batch k of epoch e draws from a generator made of the seed, e, k and the process's rank: the masks do not
    /// depend on how a run was interrupted, and each process of a data-parallel job draws its own.
    case perBatch
    /// One generator, seeded by ``TrainerOptions/seed``, runs through the whole run (d2l's single stream; saved with
    /// the trainer so a resumed run continues it). Every process of a data-parallel job draws the same numbers, which
    /// suits layers that draw the whole batch's masks and keep their rows (``RecurrentNetwork/dropoutShard``).
    case continuous
}
