// Parameter-free layers that pick from a recurrent layer's output what a head reads: the last step, each row's last
// valid step, the final hidden state of the last layer (both directions joined), or every step. Each backward puts
// the gradient back where the forward took it (the adjoints in Tensor+Indexing.swift and Tensor+Joining.swift).

/// The last step of every row, (T, B, D) -> (B, D) (PyTorch `out[-1]`, or `out[:, -1]` batch-first). For a
/// variable-length batch the last step of a short row is padding: use ``LastValidStep``.
public final class LastStep<Scalar: RecurrentScalar>: Layer {
    /// A recurrent layer's output.
    public typealias Input = RecurrentOutput<Scalar>
    /// (B, directions x H).
    public typealias Output = Tensor<Scalar>
    /// The output's shape and layout.
    public typealias Record = (shape: [Int], layout: SequenceLayout)

    /// A selection of the last step.
    public init() {}

    /// Step T - 1 of every row.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        let x = input.output
        let last = input.layout == .timeMajor ? try x[-1] : try x.transposed(0, 1)[-1]
        return (last, (x.shape, input.layout))
    }

    /// dL/doutput: zero except step T - 1.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> RecurrentOutputGradient<Scalar> {
        let timeMajorShape = record.layout == .timeMajor ? record.shape : [record.shape[1], record.shape[0]] + record.shape.dropFirst(2)
        let gradient = try Tensor.indexAdjoint(outputGradient, at: -1, shape: timeMajorShape)
        return RecurrentOutputGradient(output: try gradient.converted(from: .timeMajor, to: record.layout))
    }
}

/// Each row's output at its own last step, (T, B, D) -> (B, D): step lengths[b] - 1 of row b (every row's step
/// T - 1 when the batch has no lengths). PyTorch: `out[lengths - 1, arange(B)]` after `pad_packed_sequence`. For a
/// one-layer, one-direction network this is h_n; for a bidirectional one, the reverse half is the reverse direction's
/// output at that step (its first step), not its final state: see ``FinalHiddenState``.
public final class LastValidStep<Scalar: RecurrentScalar>: Layer {
    /// A recurrent layer's output.
    public typealias Input = RecurrentOutput<Scalar>
    /// (B, directions x H).
    public typealias Output = Tensor<Scalar>
    /// The output's shape, layout and the lengths used.
    public typealias Record = (shape: [Int], layout: SequenceLayout, lengths: [Int])

    /// A selection of each row's last valid step.
    public init() {}

    /// Row b at step lengths[b] - 1.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        let x = input.output
        guard x.shape.count == 3 else { throw RecurrentKitError("LastValidStep takes a (T, B, D) output, got shape \(x.shape)") }
        let steps = input.layout == .timeMajor ? x.shape[0] : x.shape[1], batch = input.layout == .timeMajor ? x.shape[1] : x.shape[0]
        let lengths = input.lengths ?? Array(repeating: steps, count: batch)
        return (try x.lastValidSteps(lengths: lengths, layout: input.layout), (x.shape, input.layout, lengths))
    }

    /// dL/doutput: zero except row b's step lengths[b] - 1.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> RecurrentOutputGradient<Scalar> {
        RecurrentOutputGradient(output: try Tensor.lastValidStepsAdjoint(outputGradient, lengths: record.lengths, shape: record.shape, layout: record.layout))
    }
}

/// The final hidden state of the last layer, (B, H), or both directions' joined, (B, 2H) (PyTorch `h_n[-1]`, or
/// `torch.cat([h_n[-2], h_n[-1]], 1)` for a bidirectional network): the forward direction at each row's last valid
/// step and the reverse direction after reading the row back to its first step.
public final class FinalHiddenState<Scalar: RecurrentScalar>: Layer {
    /// A recurrent layer's output.
    public typealias Input = RecurrentOutput<Scalar>
    /// (B, directions x H) (H is the projection size P with `projectionSize`).
    public typealias Output = Tensor<Scalar>
    /// The shape of h_n and the number of directions.
    public typealias Record = (stateShape: [Int], directions: Int)

    /// A selection of the last layer's final hidden state.
    public init() {}

    /// h_n's last `directions` rows joined along the feature axis.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        let h = input.finalState.h, D = input.directions
        guard h.shape.count == 3, D >= 1, h.shape[0] >= D else { throw RecurrentKitError("FinalHiddenState: h_n of shape \(h.shape) for \(D) direction(s)") }
        let rows = try (0..<D).map { try h[h.shape[0] - D + $0] }
        return (D == 1 ? rows[0] : try Tensor.concatenated(rows, along: 1), (h.shape, D))
    }

    /// dL/dh_n: zero except the last layer's rows.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> RecurrentOutputGradient<Scalar> {
        let (shape, D) = record
        let parts = try outputGradient.split(parts: D, along: 1)
        var h = Tensor<Scalar>(zeros: shape)
        let inner = shape[1] * shape[2]
        for (d, part) in parts.enumerated() {
            try part.requireShape([shape[1], shape[2]], name: "gradient of FinalHiddenState")
            h.scalars.replaceSubrange(((shape[0] - D + d) * inner)..<((shape[0] - D + d + 1) * inner), with: part.scalars)
        }
        return RecurrentOutputGradient(finalState: RecurrentState(h: h))
    }
}

/// Every step of a recurrent layer's output, (T, B, D) (or (B, T, D) batch-first), for a head applied at each step
/// (a ``Linear`` reads any shape ending in its input size), as a language model does.
public final class StepOutputs<Scalar: RecurrentScalar>: Layer {
    /// A recurrent layer's output.
    public typealias Input = RecurrentOutput<Scalar>
    /// The outputs, (T, B, D) or (B, T, D).
    public typealias Output = Tensor<Scalar>
    /// Nothing is needed.
    public typealias Record = Void

    /// A selection of every step.
    public init() {}

    /// The outputs.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        (input.output, ())
    }

    /// dL/doutput as it is.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> RecurrentOutputGradient<Scalar> {
        RecurrentOutputGradient(output: outputGradient)
    }
}

/// The input with another shape (PyTorch `view`/`reshape`; one dimension may be -1). `Reshape([-1, n])` flattens
/// all but the last axis.
public final class Reshape<Scalar: RecurrentScalar>: Layer {
    /// Any tensor.
    public typealias Input = Tensor<Scalar>
    /// The same elements in ``shape``.
    public typealias Output = Tensor<Scalar>
    /// The input's shape.
    public typealias Record = [Int]
    /// The target shape (one -1 allowed).
    public let shape: [Int]

    /// A reshape to `shape`.
    public init(_ shape: [Int]) { self.shape = shape }

    /// The reshaped input.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        (try input.reshaped(shape), input.shape)
    }

    /// The gradient reshaped back.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.reshaped(record)
    }
}

/// (B, d1, d2, ...) -> (B, d1 x d2 x ...) (PyTorch `nn.Flatten()`).
public final class Flatten<Scalar: RecurrentScalar>: Layer {
    /// (B, ...).
    public typealias Input = Tensor<Scalar>
    /// (B, product of the rest).
    public typealias Output = Tensor<Scalar>
    /// The input's shape.
    public typealias Record = [Int]

    /// A flatten from axis 1.
    public init() {}

    /// The flattened input.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        guard let rows = input.shape.first else { throw RecurrentKitError("Flatten needs at least one axis, got shape \(input.shape)") }
        return (try input.reshaped([rows, input.count / max(rows, 1)]), input.shape)
    }

    /// The gradient reshaped back.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.reshaped(record)
    }
}
