// The data a Trainer reads: batch k of epoch e is a pure function of (e, k), so a checkpoint resumes from two
// numbers and a run is the same whenever it is interrupted.

/// One batch: the model's input, the loss's target, and how many examples it holds (the weight of its loss in an
/// epoch's or a validation's mean).
public struct Batch<Input, Target> {
    /// What the model reads.
    public var input: Input
    /// What the loss compares the model's output with.
    public var target: Target
    /// Examples in the batch (at least 1).
    public var count: Int
    /// Whether a model that carries its state between batches (a ``StatefulLayer``) starts this batch from zeros: e.g.
    /// the first minibatch of d2l's sequential sampling and every random one. The first batch of an epoch always does.
    public var resetsState: Bool

    /// A batch from its parts.
    public init(input: Input, target: Target, count: Int, resetsState: Bool = false) {
        (self.input, self.target, self.count, self.resetsState) = (input, target, count, resetsState)
    }
}

/// Batches for a ``Trainer``: a fixed number per epoch, batch `index` of epoch `epoch` always the same (shuffles come
/// from a seed and the epoch), so training resumes exactly from the position alone.
public protocol BatchSource {
    /// What the model reads.
    associatedtype Input
    /// What the loss compares the output with.
    associatedtype Target
    /// Batches in every epoch (at least 1); with an epoch-dependent count (``batchCount(epoch:)``), the count a
    /// learning-rate schedule plans with.
    var batchesPerEpoch: Int { get }
    /// Batches in epoch `epoch` (at least 1): ``batchesPerEpoch`` unless the source's epochs differ in length (d2l's
    /// random offsets give some epochs one more minibatch).
    func batchCount(epoch: Int) -> Int
    /// Batch `index` (0 ..< ``batchesPerEpoch``) of epoch `epoch` (from 0).
    func batch(epoch: Int, index: Int) throws -> Batch<Input, Target>

    /// The same batch written into `batch`, reusing its storage where the source can, so that a warm training loop
    /// allocates nothing (the default makes a new batch).
    func batch(epoch: Int, index: Int, into batch: inout Batch<Input, Target>?) throws
}

extension BatchSource {
    /// ``batchesPerEpoch``: every epoch has the same length.
    public func batchCount(epoch: Int) -> Int { batchesPerEpoch }

    /// Makes a new batch.
    public func batch(epoch: Int, index: Int, into batch: inout Batch<Input, Target>?) throws {
        batch = try self.batch(epoch: epoch, index: index)
    }
}

/// A ``BatchSource`` that gives each process of a data-parallel job its rows of a batch (contiguous, in rank order:
/// ``BatchShard``), so a ``Trainer`` with a several-process ``GradientReducer`` trains on the same global batches.
/// Every row of a batch holds the same number of examples (a batch's ``Batch/count`` is a multiple of its rows), so
/// each process's share of the mean loss is its share of the rows.
public protocol ShardableBatchSource: BatchSource {
    /// Rows (examples) in batch `index` of epoch `epoch`: the global batch the shards split.
    func rowCount(epoch: Int, index: Int) -> Int
    /// The rows `shard.rows` of batch `index` of epoch `epoch`.
    func batch(epoch: Int, index: Int, shard: BatchShard) throws -> Batch<Input, Target>
    /// The same rows written into `batch`, reusing its storage where the source can (the default makes a new batch).
    func batch(epoch: Int, index: Int, shard: BatchShard, into batch: inout Batch<Input, Target>?) throws
}

extension ShardableBatchSource {
    /// Makes a new batch.
    public func batch(epoch: Int, index: Int, shard: BatchShard, into batch: inout Batch<Input, Target>?) throws {
        batch = try self.batch(epoch: epoch, index: index, shard: shard)
    }
}

/// Forecasting batches over a range of window starts of one series, every window once per epoch in a seeded order:
/// inputs (T, B, F) as a ``SequenceBatch`` (or batch-first), targets (B, horizon x F).
public struct WindowBatches<Scalar: RecurrentScalar>: BatchSource {
    /// The windows.
    public let windows: SlidingWindows<Scalar>
    /// The window starts this source visits (e.g. the training part of the series).
    public let starts: Range<Int>
    /// The order of the starts in every epoch.
    public let sampler: BatchSampler
    /// The inputs' layout.
    public let layout: SequenceLayout
    private let cache = OrderCache()

    /// Batches of `batchSize` windows starting in `starts` (every valid start when nil).
    /// - Parameters:
    ///   - windows: the series cut into windows.
    ///   - starts: the window starts to visit, a part of 0 ..< `windows.count`; nil for all.
    ///   - batchSize: windows per batch.
    ///   - shuffle: a new order every epoch (false: in order, e.g. for validation).
    ///   - seed: seeds the orders.
    ///   - layout: of the inputs.
    /// - Throws: when `starts` is empty or outside the valid starts, or the batch size is below 1.
    public init(
        _ windows: SlidingWindows<Scalar>, starts: Range<Int>? = nil, batchSize: Int, shuffle: Bool = true,
        seed: UInt64 = 0,
        layout: SequenceLayout = .timeMajor
    ) throws {
        let range = starts ?? 0..<windows.count
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound <= windows.count else {
            throw RecurrentKitError("window starts \(range) are not a non-empty part of 0..<\(windows.count)")
        }
        (self.windows, self.starts, self.layout) = (windows, range, layout)
        sampler = try BatchSampler(count: range.count, batchSize: batchSize, shuffle: shuffle, seed: seed)
    }

    /// Batches in every epoch.
    public var batchesPerEpoch: Int { sampler.batchesPerEpoch }

    /// The windows of batch `index` in epoch `epoch`.
    public func batch(epoch: Int, index: Int) throws -> Batch<SequenceBatch<Scalar>, Tensor<Scalar>> {
        try windows(cache.rows(of: sampler, epoch: epoch, index: index))
    }

    /// The windows of batch `index` in epoch `epoch`, in `batch`'s storage (no allocation once warm, when nothing
    /// else holds the previous batch).
    public func batch(epoch: Int, index: Int, into batch: inout Batch<SequenceBatch<Scalar>, Tensor<Scalar>>?) throws {
        batch = try windows(cache.rows(of: sampler, epoch: epoch, index: index), reusing: &batch)
    }

    private func windows(_ rows: ArraySlice<Int>) throws -> Batch<SequenceBatch<Scalar>, Tensor<Scalar>> {
        var none: Batch<SequenceBatch<Scalar>, Tensor<Scalar>>? = nil
        return try windows(rows, reusing: &none)
    }

    private func windows(
        _ rows: ArraySlice<Int>, reusing old: inout Batch<SequenceBatch<Scalar>, Tensor<Scalar>>?
    ) throws
        -> Batch<SequenceBatch<Scalar>, Tensor<Scalar>>
    {
        var x = Tensor<Scalar>(unchecked: [], []), y = Tensor<Scalar>(unchecked: [], [])
        if let previous = old {
            if case .dense(let input) = previous.input.input { x = input }
            y = previous.target
        }
        old = nil  // x and y are now the only references to the old storage, which is written in place
        try windows.fill(starts: rows, offset: starts.lowerBound, layout: layout, inputs: &x, targets: &y)
        return Batch(input: SequenceBatch(x, layout: layout), target: y, count: rows.count)
    }
}

extension WindowBatches: ShardableBatchSource {
    /// Windows in batch `index` of epoch `epoch`.
    public func rowCount(epoch: Int, index: Int) -> Int { cache.rows(of: sampler, epoch: epoch, index: index).count }

    /// This process's windows of batch `index` in epoch `epoch`.
    public func batch(epoch: Int, index: Int, shard: BatchShard) throws -> Batch<SequenceBatch<Scalar>, Tensor<Scalar>>
    {
        let rows = cache.rows(of: sampler, epoch: epoch, index: index)
        return try windows(rows[(rows.startIndex + shard.rows.lowerBound)..<(rows.startIndex + shard.rows.upperBound)])
    }
}

/// Labelled token sequences of different lengths in padded batches with their lengths, every sequence once per epoch
/// in a seeded order (optionally bucketed by length): inputs ``SequenceBatch`` of tokens, targets the class labels.
public struct TokenSequenceBatches<Scalar: RecurrentScalar>: BatchSource {
    /// The sequences (each at least one token).
    public let sequences: [[Int]]
    /// One class label per sequence.
    public let labels: [Int]
    /// The order of the sequences in every epoch.
    public let sampler: BatchSampler
    /// The inputs' layout.
    public let layout: SequenceLayout
    private let cache = OrderCache()

    /// Batches of `batchSize` sequences with their labels.
    /// - Parameters:
    ///   - sequences: token indices, each sequence at least one token.
    ///   - labels: one class index per sequence.
    ///   - batchSize: sequences per batch.
    ///   - shuffle: a new order every epoch (false: in order).
    ///   - seed: seeds the orders.
    ///   - bucketByLength: batches of similar lengths (see ``BatchSampler``).
    ///   - layout: of the inputs.
    /// - Throws: when the counts differ, a sequence is empty, or the batch size is below 1.
    public init(
        sequences: [[Int]], labels: [Int], batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0,
        bucketByLength: Bool = false,
        layout: SequenceLayout = .timeMajor
    ) throws {
        guard sequences.count == labels.count else {
            throw RecurrentKitError("\(sequences.count) sequences but \(labels.count) labels")
        }
        if let empty = sequences.firstIndex(where: \.isEmpty) { throw RecurrentKitError("sequence \(empty) is empty") }
        (self.sequences, self.labels, self.layout) = (sequences, labels, layout)
        sampler = try BatchSampler(
            count: sequences.count, batchSize: batchSize, shuffle: shuffle, seed: seed,
            bucketByLengths: bucketByLength ? sequences.map(\.count) : nil)
    }

    /// Batches in every epoch.
    public var batchesPerEpoch: Int { sampler.batchesPerEpoch }

    /// The padded tokens (T, B) with lengths, and the labels, of batch `index` in epoch `epoch`.
    public func batch(epoch: Int, index: Int) throws -> Batch<SequenceBatch<Scalar>, [Int]> {
        try padded(cache.rows(of: sampler, epoch: epoch, index: index))
    }

    /// The padded tokens with lengths, and the labels, of batch `index` in epoch `epoch`, in `batch`'s storage (no
    /// allocation once the arrays have grown to the longest batch, when nothing else holds the previous batch).
    public func batch(epoch: Int, index: Int, into batch: inout Batch<SequenceBatch<Scalar>, [Int]>?) throws {
        batch = try padded(cache.rows(of: sampler, epoch: epoch, index: index), reusing: &batch)
    }

    private func padded(_ rows: ArraySlice<Int>) throws -> Batch<SequenceBatch<Scalar>, [Int]> {
        var none: Batch<SequenceBatch<Scalar>, [Int]>? = nil
        return try padded(rows, reusing: &none)
    }

    private func padded(
        _ rows: ArraySlice<Int>, reusing old: inout Batch<SequenceBatch<Scalar>, [Int]>?
    ) throws -> Batch<SequenceBatch<Scalar>, [Int]> {
        var tokens: [Int] = [], lengths: [Int] = [], targets: [Int] = []
        if let previous = old {
            if case .oneHot(let t, _, _) = previous.input.input { tokens = t }
            lengths = previous.input.lengths ?? []
            targets = previous.target
        }
        old = nil  // the arrays are now the only references to the old storage, which is refilled in place
        let B = rows.count
        var T = 0
        for row in rows { T = max(T, sequences[row].count) }
        tokens.removeAll(keepingCapacity: true)
        tokens.append(contentsOf: repeatElement(0, count: T * B))
        lengths.removeAll(keepingCapacity: true)
        targets.removeAll(keepingCapacity: true)
        for (b, row) in rows.enumerated() {
            let sequence = sequences[row]
            for (t, token) in sequence.enumerated() { tokens[layout == .timeMajor ? t * B + b : b * T + t] = token }
            lengths.append(sequence.count)
            targets.append(labels[row])
        }
        let input = SequenceBatch<Scalar>(tokens: tokens, steps: T, batch: B, lengths: lengths, layout: layout)
        return Batch(input: input, target: targets, count: B)
    }
}

extension TokenSequenceBatches: ShardableBatchSource {
    /// Sequences in batch `index` of epoch `epoch`.
    public func rowCount(epoch: Int, index: Int) -> Int { cache.rows(of: sampler, epoch: epoch, index: index).count }

    /// This process's sequences of batch `index` in epoch `epoch`, padded to their own longest.
    public func batch(epoch: Int, index: Int, shard: BatchShard) throws -> Batch<SequenceBatch<Scalar>, [Int]> {
        let rows = cache.rows(of: sampler, epoch: epoch, index: index)
        return try padded(rows[(rows.startIndex + shard.rows.lowerBound)..<(rows.startIndex + shard.rows.upperBound)])
    }
}

/// The last epoch's order, kept so each batch does not redraw the permutation (one user at a time, as a trainer).
final class OrderCache {
    private var epoch = -1
    private var order: [Int] = []

    /// The indices of batch `index` of `epoch`.
    func rows(of sampler: BatchSampler, epoch: Int, index: Int) -> ArraySlice<Int> {
        if epoch != self.epoch { (order, self.epoch) = (sampler.order(ofEpoch: epoch), epoch) }
        let start = index * sampler.batchSize
        return order[min(start, order.count)..<min(start + sampler.batchSize, order.count)]
    }
}
