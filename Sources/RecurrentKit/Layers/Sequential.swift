// A model as a chain of layers whose backwards the library calls in reverse (PyTorch `nn.Sequential`, llm.c's
// `gpt2_backward`). The chain is typed: each layer's output type must be the next layer's input type, so a wrong
// order is a compile error, and the records travel in a tuple (no casts, nothing boxed).

/// A model made of layers run one after another, with one parameter store, a mode and a dropout generator.
///
/// ```swift
/// var g = SeededGenerator(seed: 42)
/// let model = try Sequential(seed: 1) {
///     ("lstm", try LSTM<Float>(inputSize: 1, hiddenSize: 32, generator: &g))    // (T, B, 1) -> outputs and h_n
///     LastStep<Float>()                                                         // -> (B, 32)
///     ("head", try Linear<Float>(inputSize: 32, outputSize: 1, generator: &g))  // -> (B, 1)
/// }
/// // model.parameters: lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight, head.bias
/// let pass = try model.forward(Tensor<Float>(zeros: [24, 8, 1]))               // keeps every layer's record
/// let (_, dPrediction) = try meanSquaredError(predictions: pass.output, targets: Tensor(zeros: [8, 1]))
/// model.parameters.zeroGradients()
/// _ = try pass.backward(dPrediction)                                            // head, last step, LSTM
/// ```
///
/// Layers are named as in PyTorch: a `(name, layer)` pair gives its name, any other layer its position ("0", "1",
/// ...), and parameters are `name.parameter` (`lstm.weight_ih_l0`), so a PyTorch `state_dict` of the same model loads
/// by name. Building the model gathers every layer's parameters into ``parameters`` (values kept) and rebinds the
/// layers to it.
///
/// A model is in training mode until ``eval()``: only dropout depends on it.
public final class Sequential<Body: Layer>: Layer, ParameterizedLayer {
    /// The layers' scalar type.
    public typealias Scalar = Body.Scalar
    /// The first layer's input.
    public typealias Input = Body.Input
    /// The last layer's output.
    public typealias Output = Body.Output
    /// Every layer's record, in a nested tuple.
    public typealias Record = Body.Record

    /// The layers, as the builder chained them.
    public let body: Body
    /// Every parameter of the model, named `layer.parameter`.
    public private(set) var parameters: ParameterStore<Scalar>
    /// The prefix of the names in ``parameters`` ("" unless this model is a layer of another).
    public private(set) var parameterPrefix = ""
    /// Draws the dropout masks of ``forward(_:)`` and ``callAsFunction(_:)`` (part of a training checkpoint).
    public var generator: SeededGenerator
    /// Whether the model is in training mode (dropout acts); true until ``eval()``.
    public private(set) var isTraining = true
    private let members: [(name: String, layer: any ParameterizedLayer<Scalar>)]
    private var generation = 0

    /// A model from the layers the builder lists, first to last.
    /// - Parameters:
    ///   - seed: seeds ``generator``.
    ///   - body: the layers; `(name, layer)` names one.
    /// - Throws: when a layer's constructor throws, or a name is invalid or repeated.
    public init(seed: UInt64 = 0, @SequentialBuilder _ body: () throws -> Body) throws {
        self.body = try body()
        var list: [(name: String, layer: any ParameterizedLayer<Scalar>)] = []
        var index = 0
        self.body._appendParameterized(to: &list, index: &index, name: nil)
        members = list
        parameters = try ParameterStore(gatheringList: list.map { ($0.name, $0.layer) })
        generator = SeededGenerator(seed: seed)
    }

    /// Training mode: dropout acts (PyTorch `model.train()`).
    public func train() { setTraining(true) }

    /// Evaluation mode: dropout is off (PyTorch `model.eval()`).
    public func eval() { setTraining(false) }

    /// Sets the mode of every layer.
    public func setTraining(_ training: Bool) {
        isTraining = training
        body.setTraining(training)
    }

    /// One forward through every layer, kept for ``Pass/backward(_:)``, with ``generator``'s dropout masks.
    public func forward(_ input: Input) throws -> Pass {
        let (output, record) = try body.forward(input, generator: &generator)
        generation &+= 1
        return Pass(model: self, generation: generation, output: output, record: record)
    }

    /// The output only (no backward), in the current mode.
    public func callAsFunction(_ input: Input) throws -> Output {
        try body.forward(input, generator: &generator).output
    }

    /// The forward as a layer of an enclosing model, whose generator draws the masks.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        try body.forward(input, generator: &generator)
    }

    /// The layers' backwards, last first.
    public func backward(_ record: Record, outputGradient: Output.Gradient) throws -> Input.Gradient {
        try body.backward(record, outputGradient: outputGradient)
    }

    /// One forward of a ``Sequential`` model: its output, and a backward through every layer.
    public struct Pass {
        /// The model that ran it.
        public let model: Sequential
        let generation: Int
        /// The last layer's output.
        public let output: Output
        /// Every layer's record.
        public let record: Record

        /// Runs every layer's backward, last first: parameter gradients are added into the model's store (zero them
        /// first), and dL/dinput is returned.
        /// - Throws: when the model has run another forward since this one, or a gradient's shape is wrong.
        @discardableResult
        public func backward(_ outputGradient: Output.Gradient) throws -> Input.Gradient {
            guard generation == model.generation else {
                throw RecurrentKitError(
                    "got a stale pass: the model has run \(model.generation &- generation) forward(s) since; use a "
                        + "pass before the next forward"
                )
            }
            return try model.body.backward(record, outputGradient: outputGradient)
        }
    }

    // MARK: - Parameters

    /// Every layer's parameters under its name, in order.
    public var parameterDeclarations: ParameterLayout {
        var layout = ParameterLayout()
        for (name, layer) in members {
            for entry in layer.parameterDeclarations.entries {
                layout.append("\(name).\(entry.name)", shape: entry.shape)
            }
        }
        return layout
    }

    /// Rebinds every layer to `store` under `prefix` (an enclosing container calls it).
    public func _bind(to store: ParameterStore<Scalar>, prefix: String) throws {
        for (name, layer) in members { try layer._bind(to: store, prefix: "\(prefix)\(name).") }
        (parameters, parameterPrefix) = (store, prefix)
    }
}

extension Sequential where Input == SequenceBatch<Scalar> {
    /// One forward over dense sequences x, (T, B, I) or (B, T, I) batch-first, with optional lengths.
    public func forward(_ x: Tensor<Scalar>, lengths: [Int]? = nil, layout: SequenceLayout = .timeMajor) throws -> Pass
    {
        try forward(SequenceBatch(x, lengths: lengths, layout: layout))
    }

    /// The output for dense sequences x, (T, B, I) or (B, T, I) batch-first, in the current mode.
    public func callAsFunction(
        _ x: Tensor<Scalar>, lengths: [Int]? = nil, layout: SequenceLayout = .timeMajor
    ) throws -> Output {
        try self(SequenceBatch(x, lengths: lengths, layout: layout))
    }
}

/// Lists a ``Sequential`` model's layers: each line a layer, or a `(name, layer)` pair.
@resultBuilder
public enum SequentialBuilder {
    /// A layer named by its position.
    public static func buildExpression<L: Layer>(_ layer: L) -> Named<L> { Named(name: nil, layer) }
    /// A layer with a name.
    public static func buildExpression<L: Layer>(_ named: (String, L)) -> Named<L> { Named(name: named.0, named.1) }
    /// The first layer.
    public static func buildPartialBlock<L: Layer>(first: L) -> L { first }
    /// The layers so far followed by the next, whose input is their output.
    public static func buildPartialBlock<A: Layer, B: Layer>(accumulated: A, next: B) -> Chain<A, B>
    where A.Output == B.Input, A.Scalar == B.Scalar {
        Chain(accumulated, next)
    }
}

/// A layer with the name its container gives it (nil: its position).
public final class Named<Wrapped: Layer>: Layer {
    /// The layer's scalar type.
    public typealias Scalar = Wrapped.Scalar
    /// The layer's input.
    public typealias Input = Wrapped.Input
    /// The layer's output.
    public typealias Output = Wrapped.Output
    /// The layer's record.
    public typealias Record = Wrapped.Record
    /// The name, or nil for the position.
    public let name: String?
    /// The layer.
    public let layer: Wrapped

    /// `layer` under `name`.
    public init(name: String?, _ layer: Wrapped) { (self.name, self.layer) = (name, layer) }

    /// The layer's forward.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        try layer.forward(input, generator: &generator)
    }

    /// The layer's backward.
    public func backward(_ record: Record, outputGradient: Output.Gradient) throws -> Input.Gradient {
        try layer.backward(record, outputGradient: outputGradient)
    }

    /// The layer's mode.
    public func setTraining(_ training: Bool) { layer.setTraining(training) }

    /// The layer, under this name.
    public func _appendParameterized(
        to list: inout [(name: String, layer: any ParameterizedLayer<Scalar>)], index: inout Int, name: String?
    ) {
        layer._appendParameterized(to: &list, index: &index, name: self.name)
    }
}

/// Two layers run one after the other: `first`'s output is `second`'s input; the backward runs `second`'s first.
public final class Chain<First: Layer, Second: Layer>: Layer
where First.Output == Second.Input, First.Scalar == Second.Scalar {
    /// The layers' scalar type.
    public typealias Scalar = First.Scalar
    /// `first`'s input.
    public typealias Input = First.Input
    /// `second`'s output.
    public typealias Output = Second.Output
    /// Both records.
    public typealias Record = (First.Record, Second.Record)
    /// The earlier layers.
    public let first: First
    /// The next layer.
    public let second: Second

    /// `first` then `second`.
    public init(_ first: First, _ second: Second) { (self.first, self.second) = (first, second) }

    /// `second(first(input))`, keeping both records.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        let (middle, firstRecord) = try first.forward(input, generator: &generator)
        let (output, secondRecord) = try second.forward(middle, generator: &generator)
        return (output, (firstRecord, secondRecord))
    }

    /// `second`'s backward, then `first`'s.
    public func backward(_ record: Record, outputGradient: Output.Gradient) throws -> Input.Gradient {
        try first.backward(record.0, outputGradient: try second.backward(record.1, outputGradient: outputGradient))
    }

    /// Both layers' mode.
    public func setTraining(_ training: Bool) {
        first.setTraining(training)
        second.setTraining(training)
    }

    /// Both layers' parameterized layers, in order.
    public func _appendParameterized(
        to list: inout [(name: String, layer: any ParameterizedLayer<Scalar>)], index: inout Int, name: String?
    ) {
        first._appendParameterized(to: &list, index: &index, name: nil)
        second._appendParameterized(to: &list, index: &index, name: nil)
    }
}
