import RecurrentKit
/// Cuts a token list into the minibatches of one epoch, exactly as d2l 0.17's iterators do.
///
/// Sequential (`seq_data_iter_sequential`): `offset` is uniform in `0...numSteps`;
/// `numTokens = ((n - offset - 1) / B) * B`; `X = tokens[offset ..< offset + numTokens]` and
/// `Y` the same shifted by one are laid out as B rows of `numTokens / B`; minibatch `i` takes
/// columns `i*T ..< (i+1)*T`, so row b of minibatch i+1 continues row b of minibatch i.
///
/// Random (`seq_data_iter_random`): `offset` is uniform in `0..<numSteps`; the
/// `(n - offset - 1) / T` subsequences start at `offset + k*T`; their starts are shuffled
/// (Fisher-Yates as Python's `random.shuffle`) and taken B at a time.
///
/// Both draw the offset first, then (random) shuffle, from the caller's `SeededGenerator`, so an
/// epoch is a pure function of the generator state. With The Time Machine's first 10,000 d2l
/// tokens, B = 32 and T = 35 both give 8 minibatches for every offset.
public struct MinibatchSchedule: Sendable {
    /// The token indices the epochs are cut from (training tokens, in text order).
    public let tokens: TokenList
    /// Sequences per minibatch, B (> 0).
    public let batchSize: Int
    /// Time steps per minibatch, T (> 0).
    public let numSteps: Int
    /// Sequential (state carried) or random (state reset each minibatch).
    public let strategy: SamplingStrategy

    /// Creates a schedule; throws a `RecurrentKitError` if B or T is not positive or the tokens
    /// are too few for one minibatch at the worst offset (see ``minimumTokenCount(batchSize:numSteps:strategy:)``).
    /// - Parameters:
    ///   - tokens: token indices, for example ``PreparedCorpus/trainTokens``.
    ///   - batchSize: B, > 0 (d2l: 32).
    ///   - numSteps: T, > 0 (d2l: 35).
    ///   - strategy: ``SamplingStrategy/sequential`` (d2l's default) or ``SamplingStrategy/random``.
    public init(tokens: [Int], batchSize: Int, numSteps: Int, strategy: SamplingStrategy) throws {
        try self.init(tokens: TokenList(tokens), batchSize: batchSize, numSteps: numSteps, strategy: strategy)
    }

    /// Creates a schedule over a ``TokenList`` (shared, not copied); see ``init(tokens:batchSize:numSteps:strategy:)``.
    public init(tokens: TokenList, batchSize: Int, numSteps: Int, strategy: SamplingStrategy) throws {
        let needed = try MinibatchSchedule.minimumTokenCount(
            batchSize: batchSize, numSteps: numSteps, strategy: strategy)
        guard tokens.count >= needed else {
            throw RecurrentKitError(
                "text too short: \(strategy.rawValue) sampling with batch size \(batchSize) and \(numSteps) steps"
                    + " needs at least \(needed) tokens for one minibatch, but there are only \(tokens.count)"
                    + " (use a longer text or a smaller batch size or number of steps)")
        }
        self.tokens = tokens
        self.batchSize = batchSize
        self.numSteps = numSteps
        self.strategy = strategy
    }

    /// Fewest tokens that give at least one minibatch for every random offset.
    ///
    /// An epoch has `floor((n - 1 - offset) / (B*T))` minibatches (both strategies), and the worst
    /// offset is T (sequential) or T - 1 (random); so `(B+1)*T + 1` tokens (sequential) or `(B+1)*T` (random).
    /// Throws a `RecurrentKitError` if B or T is not positive or the count overflows `Int`.
    /// - Parameters:
    ///   - batchSize: B, > 0.
    ///   - numSteps: T, > 0.
    ///   - strategy: the sampling strategy.
    public static func minimumTokenCount(batchSize: Int, numSteps: Int, strategy: SamplingStrategy) throws -> Int {
        guard batchSize > 0 else { throw RecurrentKitError.invalidArgument("batchSize", batchSize, "must be > 0") }
        guard numSteps > 0 else { throw RecurrentKitError.invalidArgument("numSteps", numSteps, "must be > 0") }
        let (rows, overflow) = (batchSize &+ 1).multipliedReportingOverflow(by: numSteps)
        guard batchSize < Int.max, !overflow, rows < Int.max else {
            throw RecurrentKitError(
                "batch size \(batchSize) times \(numSteps) steps is too large (the token count overflows)")
        }
        return strategy == .sequential ? rows + 1 : rows
    }

    /// Minibatches every epoch is guaranteed to have: the count at the worst offset.
    ///
    /// `(n - T - 1) / (B*T)` (sequential) or `(n - T) / (B*T)` (random), with n = `tokens.count`;
    /// always >= 1. An epoch yields this many or one more, depending on the offset drawn
    /// (8 for every offset with 10,000 tokens, B = 32, T = 35).
    public var minibatchesPerEpoch: Int {
        let perMinibatch = batchSize * numSteps
        switch strategy {
        case .sequential: return (tokens.count - numSteps - 1) / perMinibatch
        case .random: return (tokens.count - numSteps) / perMinibatch
        }
    }

    /// All minibatches of one epoch, in training order (``minibatchesPerEpoch`` or one more).
    ///
    /// Sequential: the first has `resetsState == true`, the rest false (carry the detached state).
    /// Random: every one has `resetsState == true`.
    /// - Parameter generator: source of the offset (and, for random sampling, the shuffle); advanced.
    public func epoch(using generator: inout SeededGenerator) -> [Minibatch] {
        let drawn = draw(using: &generator)
        return (0..<drawn.count).map { i in
            var inputs: [Int] = [], targets: [Int] = []
            gather(drawn, index: i, rows: 0..<batchSize, inputs: &inputs, targets: &targets)
            return Minibatch(
                unchecked: numSteps, batchSize: batchSize, inputs: inputs, targets: targets,
                resetsState: drawn.resetsState(i))
        }
    }

    /// One epoch as drawn, before any token is gathered: its minibatch count and each minibatch's row starts
    /// (sequential: an offset and a row length; random: the shuffled subsequence starts, one `Int` per T tokens).
    struct DrawnEpoch: Sendable {
        let count: Int
        let strategy: SamplingStrategy
        let batchSize: Int, numSteps: Int
        let offset: Int, rowLength: Int
        let starts: [Int]

        /// The first token of row `b` of minibatch `i`.
        func rowStart(_ i: Int, _ b: Int) -> Int {
            strategy == .sequential ? offset + b * rowLength + i * numSteps : starts[i * batchSize + b]
        }

        /// Whether minibatch `i` starts from a zero state.
        func resetsState(_ i: Int) -> Bool { strategy == .random || i == 0 }
    }

    /// Draws one epoch (the offset, and for random sampling the shuffle) from `generator`, as ``epoch(using:)``.
    func draw(using generator: inout SeededGenerator) -> DrawnEpoch {
        switch strategy {
        case .sequential:
            // d2l `seq_data_iter_sequential`: offset = randint(0, num_steps), inclusive; numTokens / B is the length
            // of each of the B rows of the (B, numTokens / B) reshape, and minibatch i reads columns i*T ..< (i+1)*T.
            let offset = generator.nextInt(below: numSteps + 1)
            let rowLength = (tokens.count - offset - 1) / batchSize
            return DrawnEpoch(
                count: rowLength / numSteps, strategy: strategy, batchSize: batchSize, numSteps: numSteps,
                offset: offset, rowLength: rowLength, starts: [])
        case .random:
            // d2l `seq_data_iter_random`: offset = randint(0, num_steps - 1), subsequences from offset every T
            // tokens, shuffled as Python's random.shuffle (for i from the end down to 1, swap with a uniform j in
            // 0...i) and taken B at a time.
            let offset = generator.nextInt(below: numSteps)
            let subsequenceCount = (tokens.count - offset - 1) / numSteps
            var starts = (0..<subsequenceCount).map { offset + $0 * numSteps }
            var i = starts.count - 1
            while i > 0 {
                starts.swapAt(i, generator.nextInt(below: i + 1))
                i -= 1
            }
            return DrawnEpoch(
                count: subsequenceCount / batchSize, strategy: strategy, batchSize: batchSize, numSteps: numSteps,
                offset: offset, rowLength: 0, starts: starts)
        }
    }

    /// Gathers rows `rows` of minibatch `index` of `drawn`, time-major: `inputs[t * rows.count + r]` is token
    /// `start + t` of row `rows.lowerBound + r`, `targets` the token after it. Reuses the arrays' storage when they
    /// have the right size and are not shared.
    func gather(
        _ drawn: DrawnEpoch, index i: Int, rows: Range<Int>, inputs: inout [Int], targets: inout [Int]
    ) {
        let T = numSteps, width = rows.count
        if inputs.count != T * width { inputs = [Int](repeating: 0, count: T * width) }
        if targets.count != T * width { targets = [Int](repeating: 0, count: T * width) }
        inputs.withUnsafeMutableBufferPointer { x in
            targets.withUnsafeMutableBufferPointer { y in
                for (r, b) in rows.enumerated() {
                    let start = drawn.rowStart(i, b)
                    var previous = tokens[start]
                    for t in 0..<T {
                        let next = tokens[start + t + 1]
                        x[t * width + r] = previous
                        y[t * width + r] = next
                        previous = next
                    }
                }
            }
        }
    }
}
