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
    private let buffers = LayerBuffers<Scalar>()

    /// A selection of the last step.
    public init() {}

    /// Step T - 1 of every row (in the layer's storage: no allocation once warm).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        let x = input.output
        guard x.shape.count >= 2, x.shape[0] >= 1, x.shape[1] >= 1 else {
            throw RecurrentKitError("LastStep takes a (T, B, D) output, got shape \(x.shape)")
        }
        let (T, B) = input.layout == .timeMajor ? (x.shape[0], x.shape[1]) : (x.shape[1], x.shape[0])
        let inner = x.count / (T * B)
        buffers.output.prepare(B, inner)
        copyStep(x, step: T - 1, steps: T, batch: B, inner: inner, layout: input.layout, into: &buffers.output)
        return (buffers.output, (x.shape, input.layout))
    }

    /// dL/doutput: zero except step T - 1.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> RecurrentOutputGradient<Scalar> {
        let (T, B) =
            record.layout == .timeMajor ? (record.shape[0], record.shape[1]) : (record.shape[1], record.shape[0])
        let inner = record.shape.dropFirst(2).reduce(1, *)
        guard outputGradient.shape.count == 2, outputGradient.shape[0] == B, outputGradient.shape[1] == inner else {
            throw RecurrentKitError.shapeMismatch(
                "gradient of LastStep", expected: [B, inner], got: outputGradient.shape)
        }
        buffers.inputGradient.prepare(like: record.shape)
        buffers.inputGradient.zeroAll()
        placeStep(
            outputGradient, step: T - 1, steps: T, batch: B, inner: inner, layout: record.layout,
            into: &buffers.inputGradient)
        return RecurrentOutputGradient(output: buffers.inputGradient)
    }
}

/// out (B, inner) = row b of `x` at `step` (or at steps[b] when `perRow` is given).
func copyStep<Scalar>(
    _ x: Tensor<Scalar>, step: Int, perRow: [Int]? = nil, steps T: Int, batch B: Int, inner: Int,
    layout: SequenceLayout,
    into out: inout Tensor<Scalar>
) {
    x.scalars.withUnsafeBufferPointer { xs in
        out.scalars.withUnsafeMutableBufferPointer { o in
            for b in 0..<B {
                let t = perRow.map { $0[b] - 1 } ?? step
                let from = layout == .timeMajor ? (t * B + b) * inner : (b * T + t) * inner
                (o.baseAddress! + b * inner).update(from: xs.baseAddress! + from, count: inner)
            }
        }
    }
}

/// Writes row b of `g` (B, inner) at `step` (or steps[b] - 1) of `out` (the sequence's shape).
func placeStep<Scalar>(
    _ g: Tensor<Scalar>, step: Int, perRow: [Int]? = nil, steps T: Int, batch B: Int, inner: Int,
    layout: SequenceLayout,
    into out: inout Tensor<Scalar>
) {
    g.scalars.withUnsafeBufferPointer { gs in
        out.scalars.withUnsafeMutableBufferPointer { o in
            for b in 0..<B {
                let t = perRow.map { $0[b] - 1 } ?? step
                let to = layout == .timeMajor ? (t * B + b) * inner : (b * T + t) * inner
                (o.baseAddress! + to).update(from: gs.baseAddress! + b * inner, count: inner)
            }
        }
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
    /// The output's shape, layout and the lengths used (nil: every row's last step).
    public typealias Record = (shape: [Int], layout: SequenceLayout, lengths: [Int]?)
    private let buffers = LayerBuffers<Scalar>()

    /// A selection of each row's last valid step.
    public init() {}

    /// Row b at step lengths[b] - 1 (in the layer's storage: no allocation once warm).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        let x = input.output
        guard x.shape.count == 3 else {
            throw RecurrentKitError("LastValidStep takes a (T, B, D) output, got shape \(x.shape)")
        }
        let (T, B) = input.layout == .timeMajor ? (x.shape[0], x.shape[1]) : (x.shape[1], x.shape[0])
        if let lengths = input.lengths {
            _ = try x.sequenceDimensions(lengths: lengths, layout: input.layout, operation: "LastValidStep")
        }
        buffers.output.prepare(B, x.shape[2])
        copyStep(
            x, step: T - 1, perRow: input.lengths, steps: T, batch: B, inner: x.shape[2], layout: input.layout,
            into: &buffers.output)
        return (buffers.output, (x.shape, input.layout, input.lengths))
    }

    /// dL/doutput: zero except row b's step lengths[b] - 1.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> RecurrentOutputGradient<Scalar> {
        let (T, B) =
            record.layout == .timeMajor ? (record.shape[0], record.shape[1]) : (record.shape[1], record.shape[0])
        guard outputGradient.shape.count == 2, outputGradient.shape[0] == B, outputGradient.shape[1] == record.shape[2]
        else {
            throw RecurrentKitError.shapeMismatch(
                "gradient of LastValidStep", expected: [B, record.shape[2]], got: outputGradient.shape)
        }
        buffers.inputGradient.prepare(like: record.shape)
        buffers.inputGradient.zeroAll()
        placeStep(
            outputGradient, step: T - 1, perRow: record.lengths, steps: T, batch: B, inner: record.shape[2],
            layout: record.layout,
            into: &buffers.inputGradient)
        return RecurrentOutputGradient(output: buffers.inputGradient)
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
    private let buffers = LayerBuffers<Scalar>()

    /// A selection of the last layer's final hidden state.
    public init() {}

    /// h_n's last `directions` rows joined along the feature axis (in the layer's storage: no allocation once warm).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        let h = input.finalState.h, D = input.directions
        guard h.shape.count == 3, D >= 1, h.shape[0] >= D else {
            throw RecurrentKitError("FinalHiddenState: h_n of shape \(h.shape) for \(D) direction(s)")
        }
        let (rows, B, S) = (h.shape[0], h.shape[1], h.shape[2])
        buffers.output.prepare(B, D * S)
        h.scalars.withUnsafeBufferPointer { hs in
            buffers.output.scalars.withUnsafeMutableBufferPointer { o in
                for d in 0..<D {
                    for b in 0..<B {
                        (o.baseAddress! + b * D * S + d * S).update(
                            from: hs.baseAddress! + ((rows - D + d) * B + b) * S, count: S)
                    }
                }
            }
        }
        return (buffers.output, (h.shape, D))
    }

    /// dL/dh_n: zero except the last layer's rows.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> RecurrentOutputGradient<Scalar> {
        let (shape, D) = record
        let (rows, B, S) = (shape[0], shape[1], shape[2])
        guard outputGradient.shape.count == 2, outputGradient.shape[0] == B, outputGradient.shape[1] == D * S else {
            throw RecurrentKitError.shapeMismatch(
                "gradient of FinalHiddenState", expected: [B, D * S], got: outputGradient.shape)
        }
        buffers.inputGradient.prepare(like: shape)
        buffers.inputGradient.zeroAll()
        outputGradient.scalars.withUnsafeBufferPointer { g in
            buffers.inputGradient.scalars.withUnsafeMutableBufferPointer { h in
                for d in 0..<D {
                    for b in 0..<B {
                        (h.baseAddress! + ((rows - D + d) * B + b) * S).update(
                            from: g.baseAddress! + b * D * S + d * S, count: S)
                    }
                }
            }
        }
        return RecurrentOutputGradient(finalState: RecurrentState(h: buffers.inputGradient))
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

    private let buffers = LayerBuffers<Scalar>()

    /// The reshaped input (copied into the layer's storage: no allocation once warm).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        try copy(input, shape: shape, into: &buffers.output)
        return (buffers.output, input.shape)
    }

    /// The gradient reshaped back.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try copy(outputGradient, shape: record, into: &buffers.inputGradient)
        return buffers.inputGradient
    }
}

/// Copies `x`'s elements into `out` with `shape` (one -1 inferred), reusing `out`'s storage when its shape matches.
func copy<Scalar>(_ x: Tensor<Scalar>, shape: [Int], into out: inout Tensor<Scalar>) throws {
    if out.count != x.count || !shapeMatches(out.shape, shape) { out = Tensor(zeros: try x.reshaped(shape).shape) }
    x.scalars.withUnsafeBufferPointer { xs in
        out.scalars.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: xs) }
    }
}

/// Whether `actual` is `pattern` with its -1 (if any) standing for any dimension.
func shapeMatches(_ actual: [Int], _ pattern: [Int]) -> Bool {
    guard actual.count == pattern.count else { return false }
    for i in actual.indices where pattern[i] != -1 && pattern[i] != actual[i] { return false }
    return true
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

    private let buffers = LayerBuffers<Scalar>()

    /// The flattened input (copied into the layer's storage: no allocation once warm).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        guard let rows = input.shape.first else {
            throw RecurrentKitError("Flatten needs at least one axis, got shape \(input.shape)")
        }
        buffers.output.prepare(rows, input.count / max(rows, 1))
        input.scalars.withUnsafeBufferPointer { xs in
            buffers.output.scalars.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: xs) }
        }
        return (buffers.output, input.shape)
    }

    /// The gradient reshaped back.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try copy(outputGradient, shape: record, into: &buffers.inputGradient)
        return buffers.inputGradient
    }
}
