// The values a recurrent layer reads and returns inside a model, so that lengths, layout and states travel with the
// sequence from an embedding through the recurrent stack to a selection (PyTorch's PackedSequence and (out, h_n)).

/// A batch of sequences for a recurrent layer or an ``Embedding``: dense features or token indices, with optional
/// per-row lengths and initial state.
public struct SequenceBatch<Scalar: RecurrentScalar>: LayerValue {
    /// (T, B, I) dense features or (T, B) indices; (B, T, I) and (B, T) with ``layout`` batch-first.
    public var input: RecurrentInput<Scalar>
    /// B lengths in [1, T] for a variable-length batch (rows padded after their length), or nil when every row has T
    /// steps.
    public var lengths: [Int]?
    /// Time-major (default) or batch-first.
    public var layout: SequenceLayout
    /// h0 (and c0) for the recurrent layer, (directions x L, B, H); zeros when nil.
    public var initialState: RecurrentState<Scalar>?

    /// dL/dinput (nil for token input) and dL/dh0 (and dL/dc0).
    public typealias Gradient = SequenceBatchGradient<Scalar>

    /// Both parts added, a missing one counting as zeros.
    public static func accumulate(_ a: Gradient, _ b: Gradient) throws -> Gradient {
        Gradient(
            input: try Tensor.accumulate(a.input, b.input),
            initialState: try RecurrentState.accumulate(a.initialState, b.initialState))
    }

    /// A batch of dense sequences, x (T, B, I), or (B, T, I) batch-first.
    public init(
        _ x: Tensor<Scalar>, lengths: [Int]? = nil, layout: SequenceLayout = .timeMajor,
        initialState: RecurrentState<Scalar>? = nil
    ) {
        (input, self.lengths, self.layout, self.initialState) = (.dense(x), lengths, layout, initialState)
    }

    /// A batch of token sequences: `steps * batch` indices, time-major (t * batch + b) or batch-first (b * steps + t).
    public init(
        tokens: [Int], steps: Int, batch: Int, lengths: [Int]? = nil, layout: SequenceLayout = .timeMajor,
        initialState: RecurrentState<Scalar>? = nil
    ) {
        (input, self.lengths, self.layout, self.initialState) = (
            .oneHot(tokens: tokens, steps: steps, batch: batch), lengths, layout, initialState
        )
    }
}

/// The gradient of a ``SequenceBatch``.
public struct SequenceBatchGradient<Scalar: RecurrentScalar> {
    /// dL/dx in the batch's layout, or nil for token input.
    public var input: Tensor<Scalar>?
    /// dL/dh0 (and dL/dc0), or nil when the layer that read the batch has no state.
    public var initialState: RecurrentState<Scalar>?

    /// A gradient from its parts.
    public init(input: Tensor<Scalar>?, initialState: RecurrentState<Scalar>? = nil) {
        (self.input, self.initialState) = (input, initialState)
    }
}

/// What a recurrent layer returns (PyTorch's `output, h_n`): every step of the last layer and the final state of
/// every layer, with the batch's lengths and layout.
public struct RecurrentOutput<Scalar: RecurrentScalar>: LayerValue {
    /// Every h_t of the last layer, (T, B, directions x H), or (B, T, directions x H) batch-first; zero at the padded
    /// steps of a variable-length batch.
    public var output: Tensor<Scalar>
    /// h_T (and c_T) of every layer, (directions x L, B, H), each row at its own last step.
    public var finalState: RecurrentState<Scalar>
    /// The batch's lengths, or nil when every row ran all T steps.
    public var lengths: [Int]?
    /// The layout of ``output``.
    public var layout: SequenceLayout
    /// Number of directions (2 for a bidirectional stack).
    public var directions: Int

    /// dL/doutput and dL/dh_T (either may be nil: zeros).
    public typealias Gradient = RecurrentOutputGradient<Scalar>

    /// Both parts added, a missing one counting as zeros.
    public static func accumulate(_ a: Gradient, _ b: Gradient) throws -> Gradient {
        Gradient(
            output: try Tensor.accumulate(a.output, b.output),
            finalState: try RecurrentState.accumulate(a.finalState, b.finalState))
    }

    /// An output from its parts.
    public init(
        output: Tensor<Scalar>, finalState: RecurrentState<Scalar>, lengths: [Int]?, layout: SequenceLayout,
        directions: Int
    ) {
        (self.output, self.finalState, self.lengths, self.layout, self.directions) = (
            output, finalState, lengths, layout, directions
        )
    }
}

/// The gradient of a ``RecurrentOutput``; a nil part is zero (a loss that reads only the final state, or only the
/// outputs).
public struct RecurrentOutputGradient<Scalar: RecurrentScalar> {
    /// dL/doutput, the output's shape and layout, or nil.
    public var output: Tensor<Scalar>?
    /// dL/dh_T (and dL/dc_T), (directions x L, B, H), or nil.
    public var finalState: RecurrentState<Scalar>?

    /// A gradient from its parts.
    public init(output: Tensor<Scalar>? = nil, finalState: RecurrentState<Scalar>? = nil) {
        (self.output, self.finalState) = (output, finalState)
    }
}
