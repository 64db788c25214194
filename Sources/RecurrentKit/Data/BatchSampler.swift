/// The order in which a training loop visits a dataset's examples (PyTorch `DataLoader`'s sampler): batches of
/// indices, reshuffled every epoch from a seed, optionally bucketed by length so a padded batch holds sequences of
/// similar length. Deterministic and resumable: the order of epoch e depends only on the seed, e and the lengths, so
/// a checkpoint keeps ``position`` and a sampler built the same way continues exactly there.
///
/// ```swift
/// var sampler = try BatchSampler(count: 1000, batchSize: 64, seed: 7)
/// let rows = sampler.next()            // 64 indices in [0, 1000); the 16th batch holds the last 40
/// ```
public struct BatchSampler: Sendable {
    /// Where a sampler stands: the epoch (from 0) and the batches already drawn in it.
    public struct Position: Codable, Sendable, Equatable {
        /// The current epoch, from 0.
        public var epoch: Int
        /// Batches drawn in this epoch.
        public var batch: Int

        /// A position.
        public init(epoch: Int, batch: Int) { (self.epoch, self.batch) = (epoch, batch) }
    }

    /// Number of examples.
    public let count: Int
    /// Examples per batch.
    public let batchSize: Int
    /// Whether each epoch visits the examples in a new random order (false: 0, 1, 2, ... every epoch).
    public let shuffle: Bool
    /// Seeds every epoch's order.
    public let seed: UInt64
    /// Whether an epoch's last, short batch is skipped (PyTorch `drop_last`); false keeps it.
    public let dropLast: Bool
    /// Lengths for bucketing, or nil.
    public let lengths: [Int]?
    /// Where the next batch comes from.
    public var position = Position(epoch: 0, batch: 0)
    private var order: [Int] = []
    private var orderEpoch = -1

    /// A sampler over `count` examples.
    /// - Parameters:
    ///   - count: examples, at least 1.
    ///   - batchSize: examples per batch, at least 1.
    ///   - shuffle: a new random order every epoch (default true).
    ///   - seed: seeds the orders.
    ///   - dropLast: skip each epoch's last, short batch.
    ///   - bucketByLengths: `count` lengths: each run of 50 batches' examples (in shuffled order) is sorted by
    ///     length and cut into batches, whose order is then shuffled, so padding stays small.
    /// - Throws: on a count or batch size below 1, `dropLast` with fewer examples than one batch, or a lengths
    ///   count that is not `count`.
    public init(
        count: Int, batchSize: Int, shuffle: Bool = true, seed: UInt64, dropLast: Bool = false,
        bucketByLengths: [Int]? = nil
    ) throws {
        guard count >= 1, batchSize >= 1 else {
            throw RecurrentKitError(
                "a sampler needs at least 1 example and a batch size of at least 1, got \(count) and \(batchSize)")
        }
        guard !dropLast || count >= batchSize else {
            throw RecurrentKitError("dropLast with \(count) examples and batches of \(batchSize) leaves no batch")
        }
        if let lengths = bucketByLengths, lengths.count != count {
            throw RecurrentKitError("bucketing got \(lengths.count) lengths for \(count) examples")
        }
        (self.count, self.batchSize, self.shuffle, self.seed, self.dropLast, self.lengths) = (
            count, batchSize, shuffle, seed, dropLast, bucketByLengths
        )
    }

    /// Batches in every epoch.
    public var batchesPerEpoch: Int { dropLast ? count / batchSize : (count + batchSize - 1) / batchSize }

    /// The indices of the next batch; after an epoch's last batch the next epoch starts.
    public mutating func next() -> [Int] {
        if position.batch >= batchesPerEpoch { position = Position(epoch: position.epoch + 1, batch: 0) }
        if orderEpoch != position.epoch {
            order = self.order(ofEpoch: position.epoch)
            orderEpoch = position.epoch
        }
        let start = position.batch * batchSize
        position.batch += 1
        return Array(order[start..<min(start + batchSize, count)])
    }

    /// Every index of epoch `epoch` in the order its batches take them (batch k is elements k*batchSize ..< ...).
    public func order(ofEpoch epoch: Int) -> [Int] {
        var indices = Array(0..<count)
        guard shuffle else { return indices }
        var generator = SeededGenerator(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
        generator.shuffle(&indices)
        guard let lengths else { return indices }
        let chunk = 50 * batchSize
        var batches: [[Int]] = []
        for start in stride(from: 0, to: count, by: chunk) {
            let sorted = indices[start..<min(start + chunk, count)].sorted { (lengths[$0], $0) < (lengths[$1], $1) }
            for b in stride(from: 0, to: sorted.count, by: batchSize) {
                batches.append(Array(sorted[b..<min(b + batchSize, sorted.count)]))
            }
        }
        // Short batches go last, so that only the epoch's final batch can be short (and `dropLast` drops it).
        let full = batches.filter { $0.count == batchSize }, short = batches.filter { $0.count < batchSize }
        var shuffled = full
        generator.shuffle(&shuffled)
        return (shuffled + [short.flatMap { $0 }]).flatMap { $0 }
    }
}

extension SeededGenerator {
    /// Fisher-Yates with this generator (the standard library's `shuffle(using:)` may change its algorithm).
    mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) { array.swapAt(i, nextInt(below: i + 1)) }
    }
}

extension SequenceBatch {
    /// Token sequences of different lengths padded into one batch with their lengths (PyTorch `pad_sequence` of
    /// index tensors, then `pack_padded_sequence`): (T, B) or (B, T) indices, T the longest, `padding` after each.
    /// - Throws: for an empty list or an empty sequence.
    public init(padding sequences: [[Int]], layout: SequenceLayout = .timeMajor, padding: Int = 0) throws {
        guard !sequences.isEmpty else { throw RecurrentKitError("a batch needs at least one sequence") }
        for (b, s) in sequences.enumerated() where s.isEmpty { throw RecurrentKitError("sequence \(b) is empty") }
        let lengths = sequences.map(\.count), T = lengths.max()!, B = sequences.count
        var tokens = [Int](repeating: padding, count: T * B)
        for (b, s) in sequences.enumerated() {
            for (t, token) in s.enumerated() { tokens[layout == .timeMajor ? t * B + b : b * T + t] = token }
        }
        self.init(tokens: tokens, steps: T, batch: B, lengths: lengths, layout: layout)
    }

    /// Dense sequences (L_i, F) padded into one batch with their lengths: (T, B, F) or (B, T, F) (PyTorch
    /// `pad_sequence`).
    /// - Throws: for an empty list, an empty sequence, or different feature shapes.
    public init(padding sequences: [Tensor<Scalar>], layout: SequenceLayout = .timeMajor) throws {
        let (batch, lengths) = try Tensor.padded(sequences, layout: layout)
        self.init(batch, lengths: lengths, layout: layout)
    }
}
