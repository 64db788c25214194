// The checked public pair: a forward returns a record, the backward consumes it; and batch-first layouts.

extension RecurrentNetwork {
    /// Runs every layer over the sequence like ``forward(_:initialState:training:generator:)`` and returns a record
    /// that ``backward(_:outputGradient:finalStateGradient:truncation:)`` consumes. The record stays valid until the
    /// next forward of this network: a stale record, or one made by another network, is refused instead of silently
    /// pairing the backward with another forward.
    /// - Parameters:
    ///   - input: (T, B, I) dense features, or (T, B) one-hot indices; (B, T, I) and (B, T) with `layout: .batchFirst`.
    ///   - layout: ``SequenceLayout/timeMajor`` (default) or ``SequenceLayout/batchFirst`` (PyTorch `batch_first=True`);
    ///     the record's output and the gradients passed to and returned by the backward use the same layout.
    ///   - initialState: h0 (L, B, H) and, for the LSTM, c0 (L, B, H); zeros when nil (never batch-first, as PyTorch).
    ///   - training: applies dropout between layers when true and `dropout > 0`.
    ///   - generator: draws the dropout masks.
    public func callAsFunction(_ input: RecurrentInput<Scalar>, layout: SequenceLayout = .timeMajor, initialState: RecurrentState<Scalar>? = nil,
                               training: Bool = false, generator: inout SeededGenerator) throws -> RecurrentRecord<Scalar> {
        var timeMajor = input
        if layout == .batchFirst {
            switch input {
            case .dense(let x):
                guard x.shape.count == 3 else { throw RecurrentKitError.shapeMismatch("input", expected: [-1, -1, configuration.inputSize], got: x.shape) }
                timeMajor = .dense(try x.swappingFirstTwoAxes())
            case .oneHot(let tokens, let steps, let batch):
                guard tokens.count == steps * batch, steps >= 1, batch >= 1 else {
                    throw RecurrentKitError("one-hot input has \(tokens.count) indices, expected steps*batch = \(steps) x \(batch)")
                }
                timeMajor = .oneHot(tokens: (0..<(steps * batch)).map { tokens[($0 % batch) * steps + $0 / batch] }, steps: steps, batch: batch)
            }
        }
        let (output, final) = try forward(timeMajor, initialState: initialState, training: training, generator: &generator)
        return RecurrentRecord(output: layout == .batchFirst ? try output.swappingFirstTwoAxes() : output, finalState: final, layout: layout,
                               owner: ObjectIdentifier(self), generation: forwardGeneration)
    }

    /// Backpropagates through the forward that made `record` (see ``backward(outputGradient:finalStateGradient:truncation:)``).
    /// - Throws: when `record` comes from another network or a later forward has run since.
    public func backward(_ record: RecurrentRecord<Scalar>, outputGradient: Tensor<Scalar>, finalStateGradient: RecurrentState<Scalar>? = nil,
                         truncation: BackwardTruncation = .none) throws
        -> (inputGradient: Tensor<Scalar>?, initialStateGradient: RecurrentState<Scalar>) {
        guard record.owner == ObjectIdentifier(self) else { throw RecurrentKitError("backward got a record made by another network") }
        guard record.generation == forwardGeneration else {
            throw RecurrentKitError("backward got a stale record: this network has run \(forwardGeneration &- record.generation) forward(s) since; backpropagate before the next forward")
        }
        guard record.layout == .batchFirst else {
            return try backward(outputGradient: outputGradient, finalStateGradient: finalStateGradient, truncation: truncation)
        }
        guard outputGradient.shape.count == 3 else { throw RecurrentKitError.shapeMismatch("outputGradient", expected: record.output.shape, got: outputGradient.shape) }
        let result = try backward(outputGradient: try outputGradient.swappingFirstTwoAxes(), finalStateGradient: finalStateGradient, truncation: truncation)
        return (try result.inputGradient?.swappingFirstTwoAxes(), result.initialStateGradient)
    }
}

/// What a ``RecurrentNetwork`` forward returns for its backward: the outputs, the final state, and which forward of which
/// network made it. The activations themselves stay in the network's workspace (reused, not copied).
public struct RecurrentRecord<Scalar: RecurrentScalar> {
    /// Every h_t of the last layer, (T, B, H), or (B, T, H) with ``SequenceLayout/batchFirst``.
    public let output: Tensor<Scalar>
    /// h_T (and c_T) of every layer, (L, B, H).
    public let finalState: RecurrentState<Scalar>
    /// The layout of `output` and of the backward's gradients.
    public let layout: SequenceLayout
    let owner: ObjectIdentifier
    let generation: Int
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
