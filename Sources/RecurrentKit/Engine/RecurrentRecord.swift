// What a forward hands its backward, the batch layouts, and the axis swap between them.

/// What a ``RecurrentNetwork`` forward returns for its backward: which forward of which network made it, and access to
/// that forward's outputs. The activations stay in the network's workspace (reused, never copied by the forward), so a
/// record is only usable until the network's next forward; every accessor throws after that.
public struct RecurrentRecord<Scalar: RecurrentScalar> {
    let network: RecurrentNetwork<Scalar>
    let generation: Int
    /// Steps T of the forward.
    public let steps: Int
    /// Batch rows B of the forward.
    public let batch: Int
    /// The layout of ``output`` and of the backward's gradients.
    public let layout: SequenceLayout
    /// The row lengths of a variable-length batch (nil when every row ran all ``steps``): ``output`` is zero at steps
    /// t >= lengths[b], and ``sequenceMask(lengths:steps:layout:)`` gives the matching loss weights.
    public let lengths: [Int]?

    /// Every h_t of the last layer, (T, B, directions x H), or (B, T, directions x H) with
    /// ``SequenceLayout/batchFirst`` (a copy).
    public var output: Tensor<Scalar> {
        get throws {
            try network.check(self)
            let out = try network.outputTensor()
            return layout == .batchFirst ? try out.swappingFirstTwoAxes() : out
        }
    }

    /// h_T (and c_T) of every layer, (directions x L, B, H) (a copy; carrying it into the next chunk cuts the gradient
    /// path).
    public var finalState: RecurrentState<Scalar> {
        get throws {
            try network.check(self)
            return try network.finalState()
        }
    }

    /// Calls `body` with the output in the network's workspace, (T, B, directions x H) time-major whatever the record's
    /// layout; the buffer must not escape `body`. Allocates nothing.
    public func withUnsafeOutput<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) throws -> R {
        try network.check(self)
        return try body(
            UnsafeBufferPointer(start: network.output, count: steps * batch * network.configuration.outputSize))
    }

    /// Writes the final state into `state`, reusing its storage when the shapes already match (no allocation).
    public func copyFinalState(into state: inout RecurrentState<Scalar>?) throws {
        try network.check(self)
        try network.copyFinalState(into: &state)
    }

    /// Copies h_T of every layer into `hidden` (directions x L, B, H) and, for the LSTM when non-nil, c_T into `cell`
    /// (directions x L, B, H). The buffers may be the ones this forward read its initial state from.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func copyFinalState(hidden: UnsafeMutablePointer<Scalar>, cell: UnsafeMutablePointer<Scalar>?) throws {
        try network.check(self)
        network.copyFinalState(hidden: hidden, cell: cell)
    }
}

/// How a sequence batch is laid out in memory.
public enum SequenceLayout: Sendable, Equatable {
    /// (T, B, ...): step-major, the layout the kernels compute in (PyTorch's default).
    case timeMajor
    /// (B, T, ...): row-major by sequence (PyTorch `batch_first=True`); converted at the boundary.
    case batchFirst
}

extension Tensor {
    /// The tensor with its first two axes exchanged, (A, B, rest...) -> (B, A, rest...).
    func swappingFirstTwoAxes() throws -> Tensor {
        guard shape.count >= 2 else { throw RecurrentKitError("cannot swap the first two axes of shape \(shape)") }
        let (a, b) = (shape[0], shape[1]), inner = shape.dropFirst(2).reduce(1, *)
        var out = Tensor(zeros: [b, a] + shape.dropFirst(2))
        for i in 0..<a {
            for j in 0..<b {
                let from = (i * b + j) * inner, to = (j * a + i) * inner
                for k in 0..<inner { out.scalars[to + k] = scalars[from + k] }
            }
        }
        return out
    }
}
