import RecurrentKit

/// How a held-out evaluation reads its tokens; the figure depends on it, so report it beside the figure
/// (``description(tokenCount:)``).
///
/// - ``stream``: one row, the state carried through the whole text (the default of ``Evaluation`` and `rnn eval`):
///   every prediction after the first sees all the text before it, as generation does.
/// - ``rows(batch:steps:)``: the text cut into `batch` contiguous rows read in parallel, each from a zero state, in
///   chunks of `steps` with the state carried between a row's chunks. Faster, and it can be sharded over processes
///   (``LanguageModelTrainer``'s periodic validation uses it, with the run's batch and steps), but the first tokens of
///   every row are predicted without context, so its figure is higher than the stream's. With one row it is the
///   stream (read in chunks of `steps`).
public enum EvaluationLayout: Hashable, Sendable, CustomStringConvertible {
    /// One row: the state carried through the whole text, read in chunks of ``streamChunkSteps`` tokens.
    case stream
    /// `batch` rows read in parallel, each from a zero state, in chunks of `steps` (both >= 1); fewer rows when the
    /// text is short (each row has at least `steps` predictions), and the few tokens left after the last full row
    /// continue that row's state.
    case rows(batch: Int, steps: Int)

    /// The chunk length of ``stream``: the state is carried between chunks, so it changes only the rounding (the
    /// README's validation figures use `rnn eval --batch 1 --steps 1000`, the same computation).
    public static let streamChunkSteps = 1_000

    /// Rows actually read for a text of `tokenCount` tokens (1 for the stream).
    public func rowCount(tokenCount: Int) -> Int {
        switch self {
        case .stream: return 1
        case let .rows(batch, steps): return max(1, min(batch, (tokenCount - 1) / max(steps, 1)))
        }
    }

    /// "one stream, state carried" or "row-parallel (32 rows x 35 steps, each from a zero state)".
    public var description: String {
        switch self {
        case .stream: return "one stream, state carried"
        case let .rows(batch, steps):
            return batch == 1
                ? "one stream, state carried (chunks of \(steps) steps)"
                : "row-parallel (\(batch) rows x \(steps) steps, each from a zero state)"
        }
    }

    /// The setting as read on a text of `tokenCount` tokens, to print beside the figure: "one stream, state carried
    /// over 1,114,394 tokens", or "row-parallel (32 rows x 35 steps, each from a zero state)" with the rows actually
    /// read (one row is the stream).
    public func description(tokenCount: Int) -> String {
        let rows = rowCount(tokenCount: tokenCount)
        guard case let .rows(_, steps) = self, rows > 1 else {
            return "one stream, state carried over \(groupedDigits(tokenCount)) tokens"
        }
        return "row-parallel (\(rows) rows x \(steps) steps, each from a zero state)"
    }
}

/// `1234567` as "1,234,567" (the same on every locale).
func groupedDigits(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return value < 0 ? "-" + out : out
}

/// Perplexity of a model on a token sequence (held-out evaluation).
///
/// ``meanCrossEntropy(model:tokens:layout:reducer:)`` reads the tokens as one stream by default
/// (``EvaluationLayout/stream``); pass ``EvaluationLayout/rows(batch:steps:)`` for the row-parallel figure that
/// ``LanguageModelTrainer``'s periodic validation reports. Say which one a figure is:
/// ``EvaluationLayout/description(tokenCount:)``.
public enum Evaluation {
    /// Mean cross-entropy (nats per token) of predicting tokens[i+1] from tokens[...i] as one stream (batch 1), one
    /// token at a time through a ``CompactGenerationSession`` in `format`: what generation with those weights sees.
    /// Compare with ``meanCrossEntropy(model:tokens:layout:reducer:)`` (the same stream in Float).
    public static func meanCrossEntropy(
        model: LanguageModel<Float>, tokens: TokenList, format: WeightPrecision
    ) throws -> Double {
        try model.configuration.requireCausal(for: "evaluation")
        guard tokens.count >= 2 else {
            throw RecurrentKitError("text to evaluate has \(tokens.count) token(s); at least 2 are needed")
        }
        let V = model.configuration.vocabularySize
        let session = try CompactGenerationSession(model: model, format: format)
        // The session checks each input token, the cross-entropy each target.
        var total = 0.0, input = [0], target = [0]
        for i in 0..<(tokens.count - 1) {
            input[0] = tokens[i]
            target[0] = tokens[i + 1]
            let logits = try session.logits(after: input, reset: i == 0)
            total += try softmaxCrossEntropy(logits: logits, rows: 1, classes: V, targets: target, gradient: nil)
        }
        return total / Double(tokens.count - 1)
    }

    /// Mean cross-entropy (nats per token) of predicting tokens[i+1] from tokens[...i] for every i, read as `layout`
    /// says: by default one stream, the state carried through the whole text from a zero state at its start (what
    /// `rnn eval` reports); ``EvaluationLayout/rows(batch:steps:)`` for the row-parallel figure. Needs >= 2 tokens.
    /// - Parameters:
    ///   - model: the model to evaluate (evaluated without dropout).
    ///   - tokens: the text, at least 2 tokens.
    ///   - layout: one stream (default) or rows read in parallel.
    ///   - reducer: the processes of a data-parallel job share the rows of a row-parallel evaluation (see
    ///     ``meanCrossEntropy(model:tokens:batchSize:numSteps:reducer:)``); one stream is read whole by every process.
    public static func meanCrossEntropy(
        model: LanguageModel<Float>, tokens: TokenList, layout: EvaluationLayout = .stream,
        reducer: GradientReducer = SingleProcessReducer()
    ) throws -> Double {
        switch layout {
        case .stream:
            return try meanCrossEntropy(
                model: model, tokens: tokens, batchSize: 1, numSteps: EvaluationLayout.streamChunkSteps)
        case let .rows(batch, steps):
            return try meanCrossEntropy(
                model: model, tokens: tokens, batchSize: batch, numSteps: steps, reducer: reducer)
        }
    }

    /// Row-parallel evaluation (``EvaluationLayout/rows(batch:steps:)``): mean cross-entropy (nats per token) of
    /// predicting tokens[i+1] from tokens[...i] for every i, the state carried across chunks of `numSteps`: the
    /// sequence is cut into `batchSize` contiguous rows read in parallel, each from a zero state (fewer rows when the
    /// text is short), and the few tokens left after the last full row continue that row's state. `batchSize` 1 is
    /// the stream. Needs >= 2 tokens.
    ///
    /// In a data-parallel job (`reducer` with several processes and at least one row each) every process reads its
    /// contiguous share of the rows (`BatchShard`), the one holding the last row also the tokens after it, and the
    /// losses are summed: every process gets the same figure, one process's up to rounding (Float products over fewer
    /// rows and another summation order: about 2e-9 relative in the tests).
    public static func meanCrossEntropy(
        model: LanguageModel<Float>, tokens: TokenList, batchSize: Int, numSteps: Int = 35,
        reducer: GradientReducer = SingleProcessReducer()
    ) throws -> Double {
        try model.configuration.requireCausal(for: "evaluation")
        guard tokens.count >= 2 else {
            throw RecurrentKitError("text to evaluate has \(tokens.count) token(s); at least 2 are needed")
        }
        guard batchSize >= 1 else { throw RecurrentKitError.invalidArgument("batch", batchSize, "must be at least 1") }
        guard numSteps >= 1 else { throw RecurrentKitError.invalidArgument("steps", numSteps, "must be at least 1") }
        let predictions = tokens.count - 1
        let rows = max(1, min(batchSize, predictions / numSteps))
        let rowLength = predictions / rows
        var generator = SeededGenerator(seed: 0)
        var total = 0.0
        /// Runs `rows` streams starting at `starts` for `length` predictions each; returns the final state.
        func run(starts: [Int], length: Int, state initial: RecurrentState<Float>?) throws -> RecurrentState<Float>? {
            var state = initial
            var offset = 0
            let B = starts.count
            while offset < length {
                let T = min(numSteps, length - offset)
                var inputs = [Int](repeating: 0, count: T * B), targets = inputs
                for t in 0..<T {
                    for b in 0..<B {
                        inputs[t * B + b] = tokens[starts[b] + offset + t]
                        targets[t * B + b] = tokens[starts[b] + offset + t + 1]
                    }
                }
                let loss = try model.loss(
                    inputs: inputs, targets: targets, steps: T, batch: B, state: state,
                    training: false, computeGradients: false, generator: &generator)
                state = try model.finalState()
                total += loss * Double(T * B)
                offset += T
            }
            return state
        }
        let sharded = reducer.processCount > 1 && rows >= reducer.processCount
        let shard = sharded ? try reducer.shard(ofBatch: rows) : BatchShard(wholeBatch: rows)
        let final = try run(starts: shard.rows.map { $0 * rowLength }, length: rowLength, state: nil)
        let remainder = predictions - rows * rowLength
        let localRows = shard.count
        if remainder > 0, shard.rows.upperBound == rows, let final {
            // Continue the last row, whose text the remainder directly follows, with batch 1.
            let L = model.configuration.numLayers
            func lastRow(_ t: Tensor<Float>) throws -> Tensor<Float> {
                let H = t.shape[2]  // h and c widths differ with a projection
                var values: [Float] = []
                for k in 0..<L {
                    let start = (k * localRows + localRows - 1) * H
                    values.append(contentsOf: t.scalars[start..<(start + H)])
                }
                return try Tensor(shape: [L, 1, H], scalars: values)
            }
            let state = RecurrentState(h: try lastRow(final.h), c: try final.c.map(lastRow))
            _ = try run(starts: [rows * rowLength], length: remainder, state: state)
        }
        if sharded { total = try reducer.sum([total])[0] }
        return total / Double(predictions)
    }
}
