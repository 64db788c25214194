// The values a recurrent stack reads and returns: states, input, truncation.

/// The states `h` and, for the LSTM, `c` that a recurrent layer or cell reads and returns: the one state type.
///
/// For a stack (``RecurrentNetwork``), the initial or final states of every layer: `h` (L, B, H) and `c` (L, B, H);
/// (2L, B, H) for a bidirectional stack (layer 0 forward, layer 0 reverse, layer 1 forward, ...). With an LSTM
/// projection, h is (L, B, P) (``RecurrentConfiguration/stateSize``). For a single-step cell (``RNNCell``,
/// ``GRUCell``, ``LSTMCell``): `h` (B, H) and `c` (B, H).
public struct RecurrentState<Scalar: RecurrentScalar>: Equatable, Sendable {
    /// Hidden states, (L, B, H) for a stack, (B, H) for a cell.
    public var h: Tensor<Scalar>
    /// LSTM memory cells, shaped as `h` (without projection); nil for RNN and GRU.
    public var c: Tensor<Scalar>?

    /// Creates a state from tensors (shapes are checked where the state is used).
    public init(h: Tensor<Scalar>, c: Tensor<Scalar>? = nil) {
        self.h = h
        self.c = c
    }

    /// Zeros for `configuration` and batch size `batch`.
    public init(zerosFor configuration: RecurrentConfiguration, batch: Int) {
        h = Tensor(zeros: [configuration.stateLayers, batch, configuration.stateSize])
        c =
            configuration.cell.hasCellState
            ? Tensor(zeros: [configuration.stateLayers, batch, configuration.hiddenSize]) : nil
    }
}

/// How far gradients travel backwards in time inside one backward pass (d2l 8.7.1).
public enum BackwardTruncation: Sendable, Equatable {
    /// Full backpropagation through every step of the chunk.
    case none
    /// Regular truncation: the recurrent gradient is cut between steps t-1 and t whenever t is a multiple of `length`
    /// (the same gradient as running the sequence in chunks of `length` with the state carried).
    case fixed(length: Int)
    /// Randomized truncation (Tallec and Ollivier 2017): at each step the recurrent gradient continues with weight
    /// 1/p with probability p (`continueProbability`, in (0, 1]) and stops otherwise, so its expectation is the full
    /// gradient. Draws come from a generator seeded with `seed`.
    case randomized(continueProbability: Double, seed: UInt64)
}

/// Where the first layer's input comes from.
public enum RecurrentInput<Scalar: RecurrentScalar> {
    /// Dense features, (T, B, I), time-major.
    case dense(Tensor<Scalar>)
    /// Class indices in [0, I), (T, B) time-major, read as one-hot vectors of width I.
    /// Computed as a row gather from `weight_ih_l0`, never as a dense I-wide product; the results are identical.
    case oneHot(tokens: [Int], steps: Int, batch: Int)
}
