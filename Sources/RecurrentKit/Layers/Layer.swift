/// A value that flows between layers, and the type of its gradient.
///
/// ``Tensor`` is its own gradient; ``SequenceBatch`` (a recurrent layer's input) has a
/// ``SequenceBatchGradient``; ``RecurrentOutput`` (a recurrent layer's output) a ``RecurrentOutputGradient``.
public protocol LayerValue {
    /// dL/d(value).
    associatedtype Gradient

    /// The gradient of a value used twice: the sum of the gradients each use received (a ``Tape`` adds them).
    /// - Throws: when their shapes differ.
    static func accumulate(_ a: Gradient, _ b: Gradient) throws -> Gradient
}

extension Tensor: LayerValue {
    /// dL/dx has x's shape.
    public typealias Gradient = Tensor

    /// a + b element-wise.
    public static func accumulate(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try b.requireShape(a.shape, name: "accumulated gradient")
        var sum = a
        for i in sum.scalars.indices { sum.scalars[i] += b.scalars[i] }
        return sum
    }

    /// a + b, a missing one counting as zeros.
    static func accumulate(_ a: Tensor?, _ b: Tensor?) throws -> Tensor? {
        guard let a else { return b }
        guard let b else { return a }
        return try accumulate(a, b)
    }
}

extension RecurrentState {
    /// h and c added element-wise, a missing one counting as zeros.
    static func accumulate(_ a: RecurrentState?, _ b: RecurrentState?) throws -> RecurrentState? {
        guard let a else { return b }
        guard let b else { return a }
        return RecurrentState(h: try Tensor.accumulate(a.h, b.h), c: try Tensor.accumulate(a.c, b.c))
    }
}

/// A model part with a hand-written backward: ``forward(_:generator:)`` returns the output and a record, and
/// ``backward(_:outputGradient:)`` consumes that record. No autodiff: every backward is written out and proven
/// against PyTorch; containers such as ``Sequential`` only chain them, last layer first (as llm.c's
/// `gpt2_backward` does).
///
/// Mode follows PyTorch: a layer is in training mode until ``setTraining(_:)`` turns it off (``Sequential/eval()``
/// does it for a whole model); only ``Dropout`` and the dropout between recurrent layers depend on it.
///
/// A layer with parameters also conforms to ``ParameterizedLayer``; its backward adds into the gradients of its
/// store (zero them first with ``ParameterStore/zeroGradients()``).
public protocol Layer<Scalar>: AnyObject {
    /// The scalar type of values and parameters.
    associatedtype Scalar: RecurrentScalar
    /// What the forward reads.
    associatedtype Input: LayerValue
    /// What the forward returns.
    associatedtype Output: LayerValue
    /// What the forward keeps for the backward.
    associatedtype Record

    /// Runs the layer.
    /// - Parameters:
    ///   - input: the layer's input (shapes in each layer's documentation).
    ///   - generator: draws dropout masks in training mode; layers without randomness do not touch it.
    /// - Returns: the output and the record ``backward(_:outputGradient:)`` needs.
    func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record)

    /// Backpropagates through the forward that made `record`: adds the parameter gradients (if any) into the store
    /// and returns dL/dinput.
    /// - Parameters:
    ///   - record: what ``forward(_:generator:)`` returned.
    ///   - outputGradient: dL/doutput, the output's shape.
    func backward(_ record: Record, outputGradient: Output.Gradient) throws -> Input.Gradient

    /// Turns training mode on (dropout acts) or off (evaluation).
    func setTraining(_ training: Bool)

    /// Appends every parameterized layer of this one to `list` with its full name (an implementation hook for
    /// containers: a plain layer appends itself when it has parameters, under `name` or else its position `index`,
    /// and advances `index`).
    func _appendParameterized(
        to list: inout [(name: String, layer: any ParameterizedLayer<Scalar>)], index: inout Int, name: String?)
}

extension Layer {
    /// Layers without a mode ignore it.
    public func setTraining(_ training: Bool) {}

    /// Appends `self` under `name`, or its position in the container, when it has parameters.
    public func _appendParameterized(
        to list: inout [(name: String, layer: any ParameterizedLayer<Scalar>)], index: inout Int, name: String?
    ) {
        if let layer = self as? any ParameterizedLayer<Scalar> { list.append((name ?? String(index), layer)) }
        index += 1
    }
}
