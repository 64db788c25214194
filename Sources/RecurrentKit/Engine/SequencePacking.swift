// Variable-length batches (PyTorch `pack_padded_sequence` semantics, `enforce_sorted=False`): the stack sorts the rows
// by length, longest first (stable), and keeps step t's B_t active rows as one contiguous block, so step t computes
// only B_t rows and the products over time see only valid steps: the work follows the number of valid steps, as in
// cuDNN's and PyTorch's packed layout. Padded positions are zero in the output, receive no gradient, and never touch
// a state. Nothing here writes an equation: the cells' loops only read row counts and offsets from `StepRows`.

/// How a variable-length batch is packed: sorted order, active rows per step and where each step's rows start.
final class SequencePacking {
    /// Length of each row in the caller's order.
    private(set) var lengths: [Int] = []
    /// order[r] = the caller's row at sorted position r (lengths non-increasing, ties in the caller's order).
    private(set) var order: [Int] = []
    /// batchSizes[t] = B_t, rows whose length exceeds t (a prefix of the sorted rows); batchSizes[T] = 0.
    private(set) var batchSizes: [Int] = []
    /// rowStart[t] = sum of B_s for s < t: where step t's rows start in the packed (N, width) layout; rowStart[T] = N.
    private(set) var rowStart: [Int] = []
    private var counts: [Int] = []
    /// Steps and batch of the current packing.
    private(set) var steps = 0, batch = 0

    /// Valid rows N = sum of the lengths.
    var validRows: Int { rowStart[steps] }

    /// Checks `lengths` (B values in [1, T]) and prepares the sorted order (a counting sort: no allocation once the
    /// arrays have grown to this size). Returns false when every row runs all T steps: the batch needs no packing.
    func configure(_ given: [Int], steps T: Int, batch B: Int) throws -> Bool {
        try Self.check(given, steps: T, batch: B)
        if !Self.needsPacking(given, steps: T) { return false }
        steps = T; batch = B
        lengths.removeAll(keepingCapacity: true); lengths.append(contentsOf: given)
        resize(&counts, T + 2); resize(&order, B); resize(&batchSizes, T + 1); resize(&rowStart, T + 1)
        for i in 0..<(T + 2) { counts[i] = 0 }
        for length in given { counts[T - length + 1] += 1 }  // bucket by T - length: longest first
        for i in 1..<(T + 2) { counts[i] += counts[i - 1] }
        for (row, length) in given.enumerated() {
            order[counts[T - length]] = row
            counts[T - length] += 1
        }
        var active = B, start = 0
        for t in 0...T {
            while active > 0 && lengths[order[active - 1]] <= t { active -= 1 }
            batchSizes[t] = active
            rowStart[t] = start
            if t < T { start += active }
        }
        return true
    }

    /// Whether `lengths` make a variable-length batch: false when every row runs all T steps.
    static func needsPacking(_ lengths: [Int], steps T: Int) -> Bool { !lengths.allSatisfy { $0 == T } }

    /// Throws unless `lengths` has B values in [1, T]; changes nothing, so a forward can check before it mutates.
    static func check(_ lengths: [Int], steps T: Int, batch B: Int) throws {
        guard lengths.count == B else {
            throw RecurrentKitError("got \(lengths.count) sequence lengths for a batch of \(B)")
        }
        for (row, length) in lengths.enumerated() where length < 1 || length > T {
            throw RecurrentKitError("sequence length \(length) of row \(row) is outside [1, \(T)] (T = \(T) steps)")
        }
    }

    private func resize(_ array: inout [Int], _ count: Int) {
        if array.count != count { array = Array(repeating: 0, count: count) }
    }

    /// packed (N, width) <- padded (T, B, width) in the caller's row order; padded positions are skipped.
    func pack<Scalar>(_ padded: UnsafePointer<Scalar>, into packed: UnsafeMutablePointer<Scalar>, width: Int) {
        for t in 0..<steps {
            for r in 0..<batchSizes[t] {
                (packed + (rowStart[t] + r) * width).update(from: padded + (t * batch + order[r]) * width, count: width)
            }
        }
    }

    /// padded (T, B, width) <- packed (N, width), zeros at padded positions.
    func unpack<Scalar: RecurrentScalar>(
        _ packed: UnsafePointer<Scalar>, into padded: UnsafeMutablePointer<Scalar>, width: Int
    ) {
        padded.update(repeating: 0, count: steps * batch * width)
        for t in 0..<steps {
            for r in 0..<batchSizes[t] {
                (padded + (t * batch + order[r]) * width).update(from: packed + (rowStart[t] + r) * width, count: width)
            }
        }
    }

    /// The one-hot indices of the valid positions, packed: `packed[rowStart[t] + r] = tokens[t * B + order[r]]`.
    func pack(tokens: [Int], into packed: inout [Int]) {
        if packed.count != validRows { packed = Array(repeating: 0, count: validRows) }
        for t in 0..<steps {
            for r in 0..<batchSizes[t] { packed[rowStart[t] + r] = tokens[t * batch + order[r]] }
        }
    }

    /// `layers` blocks of (B, width): sorted rows <- the caller's rows (`toSorted`), or the reverse.
    func permuteRows<Scalar>(
        _ source: UnsafePointer<Scalar>, into destination: UnsafeMutablePointer<Scalar>, layers: Int, width: Int,
        toSorted: Bool
    ) {
        for k in 0..<layers {
            let base = k * batch * width
            for r in 0..<batch {
                let (from, to) = toSorted ? (order[r], r) : (r, order[r])
                (destination + base + to * width).update(from: source + base + from * width, count: width)
            }
        }
    }
}

/// Where the steps [first, first + count) of one forward or backward pass keep their rows: B_t active rows per step,
/// step t's rows from `offset(t)` in the (rows, width) caches, h_{t-1} at `previous(t)` and h_t at `output(t)` in the
/// (B + rows, H) state caches (slot 0 holds the B rows of the state at `first`). Equal lengths: B_t = B, offset t * B.
struct StepRows {
    let batch: Int
    let first: Int
    let count: Int
    let packing: SequencePacking?
    private let base: Int

    init(first: Int, count: Int, batch: Int, packing: SequencePacking?) {
        self.first = first; self.count = count; self.batch = batch; self.packing = packing
        base = packing?.rowStart[first] ?? 0
    }

    /// Active rows B_t of local step t.
    @inline(__always) func rows(_ t: Int) -> Int { packing?.batchSizes[first + t] ?? batch }
    /// First row of local step t in the (rows, width) caches.
    @inline(__always) func offset(_ t: Int) -> Int { packing.map { $0.rowStart[first + t] - base } ?? t * batch }
    /// Row of h_{t-1} (and c_{t-1}) in the state caches.
    @inline(__always) func previous(_ t: Int) -> Int { t == 0 ? 0 : batch + offset(t - 1) }
    /// Row of h_t (and c_t) in the state caches.
    @inline(__always) func output(_ t: Int) -> Int { batch + offset(t) }
    /// Rows of all `count` steps.
    var total: Int { offset(count) }
}
