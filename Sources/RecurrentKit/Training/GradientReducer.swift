/// The rows of a global minibatch that one process of a data-parallel job trains on.
///
/// A minibatch of `globalBatch` rows, time-major (T, B, ...), is cut into contiguous blocks of rows, one per process:
/// process r of N gets `rows` = [r·⌊B/N⌋ + min(r, B mod N), ...) with ⌊B/N⌋ or ⌈B/N⌉ rows, the first B mod N
/// processes one more.
public struct BatchShard: Equatable, Sendable {
    /// This process's rows of the global batch, a non-empty subrange of `0..<globalBatch`.
    public let rows: Range<Int>
    /// Rows of the whole minibatch, B.
    public let globalBatch: Int

    /// The shard of process `rank` of `processCount` for a batch of `globalBatch` rows; throws when there are more
    /// processes than rows (a process would have none) or an argument is out of range.
    public init(rank: Int, processCount: Int, globalBatch: Int) throws {
        guard processCount >= 1 else {
            throw RecurrentKitError.invalidArgument("process count", processCount, "must be at least 1")
        }
        guard rank >= 0, rank < processCount else {
            throw RecurrentKitError.invalidArgument("rank", rank, "must be in 0..<\(processCount)")
        }
        guard globalBatch >= processCount else {
            throw RecurrentKitError(
                "\(processCount) processes need a batch of at least \(processCount) rows (one per process); the batch "
                    + "has \(globalBatch)"
            )
        }
        let base = globalBatch / processCount, extra = globalBatch % processCount
        let start = rank * base + min(rank, extra)
        rows = start..<(start + base + (rank < extra ? 1 : 0))
        self.globalBatch = globalBatch
    }

    /// The whole batch (one process).
    public init(wholeBatch globalBatch: Int) {
        rows = 0..<globalBatch
        self.globalBatch = globalBatch
    }

    /// Rows of this shard, B_r.
    public var count: Int { rows.count }
    /// Whether the shard is the whole batch.
    public var isWholeBatch: Bool { rows.count == globalBatch }

    /// Copies this shard's rows of a time-major (T, B, width) array `global` into `local` (T, B_r, width), reusing
    /// `local`'s storage when its size already matches (no allocation per update).
    public func gather<Element>(_ global: [Element], steps: Int, width: Int = 1, into local: inout [Element]) {
        let B = globalBatch, b = count
        precondition(global.count == steps * B * width, "gather: expected \(steps) x \(B) x \(width) elements")
        if local.count != steps * b * width { local = Array(global.prefix(steps * b * width)) }
        local.withUnsafeMutableBufferPointer { out in
            global.withUnsafeBufferPointer { source in
                for t in 0..<steps {
                    for i in 0..<(b * width) { out[t * b * width + i] = source[(t * B + rows.lowerBound) * width + i] }
                }
            }
        }
    }
}

/// Sums values across the processes of a data-parallel job: the one collective operation data-parallel training
/// needs. Every process calls the same methods in the same order with the same counts; each call returns when every
/// process's values have been added, and every process then holds the identical sum.
///
/// With it, a training loop on the public API runs data-parallel: each process computes the gradients of its rows of
/// the minibatch (``BatchShard``), scales them by B_r/B, sums the flat gradient buffer with
/// ``sumGradients(_:)`` (one call per update), and applies the same optimizer step. ``SingleProcessReducer`` is
/// the one-process case; the `RecurrentKitMPI` library's `MPIReducer` uses `MPI_Allreduce`.
public protocol GradientReducer: AnyObject {
    /// This process's index, 0..<``processCount``.
    var rank: Int { get }
    /// Processes in the job (>= 1).
    var processCount: Int { get }
    /// Replaces `values[0..<count]` with their element-wise sum over all processes.
    func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws
    /// Replaces `values[0..<count]` with their element-wise sum over all processes.
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int) throws
}

extension GradientReducer {
    /// This process's rows of a minibatch of `globalBatch` rows; throws when there are more processes than rows.
    public func shard(ofBatch globalBatch: Int) throws -> BatchShard {
        try BatchShard(rank: rank, processCount: processCount, globalBatch: globalBatch)
    }

    /// Sums the whole flat gradient buffer of `store` over all processes (one call; the padding between tensors is
    /// zero everywhere and stays zero).
    public func sumGradients<Scalar: RecurrentScalar>(_ store: ParameterStore<Scalar>) throws {
        guard processCount > 1 else { return }
        let raw = UnsafeMutableRawPointer(store.gradients)
        if Scalar.self == Float.self {
            try sum(raw.assumingMemoryBound(to: Float.self), count: store.count)
        } else if Scalar.self == Double.self {
            try sum(raw.assumingMemoryBound(to: Double.self), count: store.count)
        } else {
            throw RecurrentKitError("gradient sums support Float and Double parameters")
        }
    }

    /// Sums a few Double values over all processes and returns them (e.g. losses and counters).
    public func sum(_ values: [Double]) throws -> [Double] {
        guard processCount > 1 else { return values }
        var copy = values
        try copy.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { try sum(base, count: $0.count) } }
        return copy
    }

    /// Whether `flag` is true on any process (a collective decision, e.g. to stop). Allocates nothing.
    public func any(_ flag: Bool) throws -> Bool {
        guard processCount > 1 else { return flag }
        var count: Double = flag ? 1 : 0
        try sum(&count, count: 1)
        return count > 0
    }

    /// Rank 0's `value` on every process (a sum in which the other processes add 0). Allocates nothing.
    public func broadcastFromRankZero(_ value: Double) throws -> Double {
        guard processCount > 1 else { return value }
        var shared = rank == 0 ? value : 0
        try sum(&shared, count: 1)
        return shared
    }
}

/// One process: every sum is the value itself.
public final class SingleProcessReducer: GradientReducer {
    /// Creates the one-process reducer.
    public init() {}
    /// Always 0.
    public var rank: Int { 0 }
    /// Always 1.
    public var processCount: Int { 1 }
    /// Leaves the values unchanged.
    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {}
    /// Leaves the values unchanged.
    public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {}
}
