import RecurrentKit

// d2l's minibatches of one token stream (sequential or random sampling, d2l 8.3) as a Trainer's BatchSource: every
// epoch draws its offset (and shuffle) from one generator that runs through the epochs, so epoch e is a pure function
// of the generator's state at epoch 0 (or at any epoch it was positioned at).

/// Next-token batches of a text for a `Trainer`: inputs (T, B) tokens as a `SequenceBatch`, targets the T*B
/// tokens that follow them (time-major), `count` T*B (the loss is a mean per token).
///
/// Epochs have ``MinibatchSchedule/minibatchesPerEpoch`` minibatches or one more, depending on the offset drawn;
/// with sequential sampling only each epoch's first batch sets `Batch/resetsState`, so a `StatefulLayer` model
/// (``LanguageModel``) carries its state through the epoch; with random sampling every batch does.
///
/// ```swift
/// var generator = SeededGenerator(seed: 42)
/// let model = try LanguageModel<Float>(configuration, generator: &generator)
/// let text = try TokenStreamBatches<Float>(tokens: corpus.trainTokens, batchSize: 32, steps: 35,
///                                          sampling: .sequential, generator: SeededGenerator(seed: generator.next()))
/// let loss = NextTokenLoss<Float>()
/// let trainer = try Trainer(model: model, optimizer: SGD(learningRate: 1), data: text,
///                           options: TrainerOptions(epochs: 50, clip: 1)) { try loss($0, $1) }
/// ```
public final class TokenStreamBatches<Scalar: RecurrentScalar>: ShardableBatchSource {
    /// The minibatch layout: tokens, B, T and the sampling.
    public let schedule: MinibatchSchedule
    // Where the stream is known: epoch `anchorEpoch` starts from `anchor`.
    private var anchorEpoch = 0
    private var anchor: SeededGenerator
    // The latest epoch drawn: its number, its start, its row starts and the generator after it. A batch's tokens are
    // gathered when it is asked for, into the arrays below: the text is never copied into an epoch's minibatches.
    // Two pairs take turns, since a model may keep the previous batch's tokens (the record of its forward) until
    // its next forward: each batch is written into the pair of the batch before the previous one.
    private var cachedEpoch = -1
    private var cachedStart: SeededGenerator
    private var cachedAfter: SeededGenerator
    private var cached: MinibatchSchedule.DrawnEpoch? = nil
    private var inputs: [Int] = [], targets: [Int] = []
    private var spareInputs: [Int] = [], spareTargets: [Int] = []

    /// Batches of `batchSize` rows of `steps` tokens.
    /// - Parameters:
    ///   - tokens: the text's token indices.
    ///   - batchSize: rows B per batch.
    ///   - steps: steps T per batch.
    ///   - sampling: d2l's sequential (state carried through an epoch) or random sampling.
    ///   - generator: draws every epoch's offset and shuffle, epoch after epoch.
    /// - Throws: when the text is too short for one batch.
    public convenience init(
        tokens: [Int], batchSize: Int, steps: Int, sampling: SamplingStrategy, generator: SeededGenerator
    ) throws {
        try self.init(
            tokens: TokenList(tokens), batchSize: batchSize, steps: steps, sampling: sampling, generator: generator)
    }

    /// Batches of `batchSize` rows of `steps` tokens of a ``TokenList`` (shared, not copied), for example
    /// ``PreparedCorpus/trainTokens``; see ``init(tokens:batchSize:steps:sampling:generator:)``.
    public convenience init(
        tokens: TokenList, batchSize: Int, steps: Int, sampling: SamplingStrategy, generator: SeededGenerator
    ) throws {
        try self.init(
            schedule: try MinibatchSchedule(tokens: tokens, batchSize: batchSize, numSteps: steps, strategy: sampling),
            generator: generator)
    }

    /// Batches of `schedule`, drawing every epoch from `generator`.
    public init(schedule: MinibatchSchedule, generator: SeededGenerator) throws {
        guard schedule.minibatchesPerEpoch >= 1 else {
            throw RecurrentKitError(
                "the text of \(schedule.tokens.count) tokens is too short for one batch of \(schedule.batchSize) x "
                    + "\(schedule.numSteps)"
            )
        }
        self.schedule = schedule
        (anchor, cachedStart, cachedAfter) = (generator, generator, generator)
    }

    /// ``MinibatchSchedule/minibatchesPerEpoch``: the count at the worst offset (an epoch may have one more).
    public var batchesPerEpoch: Int { schedule.minibatchesPerEpoch }

    /// Minibatches in epoch `epoch` (``batchesPerEpoch`` for an epoch before the stream's position).
    public func batchCount(epoch: Int) -> Int { (try? drawn(epoch: epoch).count) ?? batchesPerEpoch }

    /// The generator state epoch `epoch` starts from (to save a run's position).
    /// - Throws: for an epoch before the one the stream was positioned at.
    public func generator(atStartOf epoch: Int) throws -> SeededGenerator {
        _ = try drawn(epoch: epoch)
        return cachedStart
    }

    /// Positions the stream: epoch `epoch` starts from `generator` (a resumed run's saved state); earlier epochs are
    /// then unknown.
    public func position(epoch: Int, generator: SeededGenerator) {
        (anchorEpoch, anchor, cachedEpoch, cached) = (max(epoch, 0), generator, -1, nil)
    }

    /// Batch `index` of epoch `epoch`.
    public func batch(epoch: Int, index: Int) throws -> Batch<SequenceBatch<Scalar>, [Int]> {
        var batch: Batch<SequenceBatch<Scalar>, [Int]>? = nil
        try self.batch(epoch: epoch, index: index, into: &batch)
        return batch!
    }

    /// Batch `index` of epoch `epoch`, its tokens gathered into storage reused from the batch before the previous one
    /// (no allocation within an epoch when the caller keeps no older batch).
    public func batch(epoch: Int, index: Int, into batch: inout Batch<SequenceBatch<Scalar>, [Int]>?) throws {
        try self.batch(
            epoch: epoch, index: index, shard: BatchShard(wholeBatch: schedule.batchSize), into: &batch)
    }

    /// Every batch has B rows.
    public func rowCount(epoch: Int, index: Int) -> Int { schedule.batchSize }

    /// The rows `shard.rows` of batch `index` of epoch `epoch`.
    public func batch(epoch: Int, index: Int, shard: BatchShard) throws -> Batch<SequenceBatch<Scalar>, [Int]> {
        var batch: Batch<SequenceBatch<Scalar>, [Int]>? = nil
        try self.batch(epoch: epoch, index: index, shard: shard, into: &batch)
        return batch!
    }

    /// The rows `shard.rows` of batch `index` of epoch `epoch`, in storage reused from the previous batch.
    public func batch(
        epoch: Int, index: Int, shard: BatchShard, into batch: inout Batch<SequenceBatch<Scalar>, [Int]>?
    ) throws {
        let drawn = try drawn(epoch: epoch)
        guard index >= 0, index < drawn.count else {
            throw RecurrentKitError("batch \(index) is outside epoch \(epoch + 1)'s \(drawn.count) minibatches")
        }
        let T = schedule.numSteps
        guard shard.globalBatch == schedule.batchSize else {
            throw RecurrentKitError(
                "a shard of a \(shard.globalBatch)-row batch asked of batches of \(schedule.batchSize) rows")
        }
        batch = nil  // the previous batch's arrays are then this source's alone, or the model's (its forward's record)
        swap(&inputs, &spareInputs)
        swap(&targets, &spareTargets)
        schedule.gather(drawn, index: index, rows: shard.rows, inputs: &inputs, targets: &targets)
        batch = Batch(
            input: SequenceBatch(tokens: inputs, steps: T, batch: shard.count), target: targets,
            count: T * shard.count, resetsState: drawn.resetsState(index))
    }

    /// Epoch `epoch` as drawn, on from the cached epoch or the anchor.
    private func drawn(epoch: Int) throws -> MinibatchSchedule.DrawnEpoch {
        if epoch == cachedEpoch, let cached { return cached }
        guard epoch >= anchorEpoch else {
            throw RecurrentKitError(
                "epoch \(epoch + 1) comes before epoch \(anchorEpoch + 1), where this text's batches were positioned")
        }
        var e = anchorEpoch, generator = anchor
        if cachedEpoch >= anchorEpoch, cachedEpoch < epoch { (e, generator) = (cachedEpoch + 1, cachedAfter) }
        while true {
            let start = generator
            let drawn = schedule.draw(using: &generator)
            if e == epoch {
                (cachedEpoch, cachedStart, cachedAfter, cached) = (e, start, generator, drawn)
                return drawn
            }
            e += 1
        }
    }
}
