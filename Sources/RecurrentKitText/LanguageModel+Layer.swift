import RecurrentKit

// The language model as a Layer: tokens (T, B) -> logits (T, B, V), the embedding -> recurrent -> linear chain kept
// here once, so a Trainer (or a container) trains it like any other model, carrying its state between batches.

/// What a ``LanguageModel``'s ``LanguageModel/forward(_:generator:)`` keeps for its backward.
public struct LanguageModelRecord<Scalar: RecurrentScalar> {
    /// The input tokens, (T, B) time-major.
    public let tokens: [Int]
    /// Steps T and rows B.
    public let steps: Int, batch: Int
    /// The recurrent layers' record.
    public let recurrent: RecurrentRecord<Scalar>
    /// The truncation of the backward (randomized when ``LanguageModel/randomizedTruncation`` is set in training).
    public let truncation: BackwardTruncation
    /// Whether the forward started from an initial state given in its input (its gradient is then returned).
    let hadInitialState: Bool
}

extension LanguageModel: Layer {
    /// Token sequences, (T, B) time-major (`SequenceBatch/init(tokens:steps:batch:lengths:layout:initialState:)`),
    /// optionally with an initial state (L, B, H); without one the forward starts from the carried state (zeros
    /// unless a `Trainer` carries it, see `StatefulLayer`).
    public typealias Input = SequenceBatch<Scalar>
    /// Logits (T, B, V).
    public typealias Output = Tensor<Scalar>
    /// The tokens, the recurrent record and the truncation.
    public typealias Record = LanguageModelRecord<Scalar>

    /// Embedding (or one-hot) -> recurrent layers -> linear head: logits (T, B, V), in the model's own storage (no
    /// allocation once warm). Dropout acts in training mode (``isTraining``).
    /// - Throws: for dense, variable-length or batch-first input, a token outside the vocabulary, or a state of the
    ///   wrong shape.
    public func forward(
        _ input: SequenceBatch<Scalar>, generator: inout SeededGenerator
    ) throws -> (output: Tensor<Scalar>, record: LanguageModelRecord<Scalar>) {
        guard case let .oneHot(tokens, T, B) = input.input else {
            throw RecurrentKitError(
                "a language model reads token indices (SequenceBatch(tokens:steps:batch:)), not dense features")
        }
        guard input.lengths == nil, input.layout == .timeMajor else {
            throw RecurrentKitError(
                "a language model reads time-major token batches without lengths (every row predicts all T steps)")
        }
        let training = isTraining
        var truncation = BackwardTruncation.none
        if training, let p = randomizedTruncation {
            truncation = .randomized(continueProbability: p, seed: generator.next())
        }
        let V = configuration.vocabularySize
        if layerLogits.shape != [T, B, V] { layerLogits = Tensor(zeros: [T, B, V]) }
        let state = input.initialState ?? carried
        try layerLogits.scalars.withUnsafeMutableBufferPointer { logits in
            _ = try forwardLogits(
                inputs: tokens, steps: T, batch: B, state: state, training: training, generator: &generator,
                into: logits.baseAddress!)
        }
        guard let record else { throw RecurrentKitError("the language model's forward left no record") }
        return (
            layerLogits,
            LanguageModelRecord(
                tokens: tokens, steps: T, batch: B, recurrent: record, truncation: truncation,
                hadInitialState: input.initialState != nil)
        )
    }

    /// Adds dL/dparameters (head, recurrent layers, embedding) into the store; returns dL/dh0 (and dL/dc0) when the
    /// input gave an initial state, and no input gradient (tokens have none).
    /// - Throws: when `outputGradient` is not (T, B, V) or the record is stale (the model ran again since).
    public func backward(
        _ record: LanguageModelRecord<Scalar>, outputGradient: Tensor<Scalar>
    ) throws -> SequenceBatchGradient<Scalar> {
        let (T, B, V) = (record.steps, record.batch, configuration.vocabularySize)
        try outputGradient.requireShape(T, B, V, name: "language model outputGradient")
        let H = configuration.recurrent.outputSize
        let dHidden = gradHidden.reserve(T * B * H)
        try record.recurrent.withUnsafeOutput { x in
            outputGradient.scalars.withUnsafeBufferPointer { dy in
                output.backward(dy.baseAddress!, x: x.baseAddress!, rows: T * B, inputGradient: dHidden)
            }
        }
        var stateGradient: RecurrentState<Scalar>? = nil
        if record.hadInitialState {
            let shape = [configuration.recurrent.stateLayers, B, configuration.recurrent.stateSize]
            var g = layerStateGradient
            layerStateGradient = nil
            if g?.h.shape != shape {
                g = RecurrentState(
                    h: Tensor(zeros: shape),
                    c: configuration.cell.hasCellState ? Tensor(zeros: [shape[0], B, configuration.hiddenSize]) : nil)
            }
            stateGradient = g
        }
        let dx = embedding.map { gradEmbedded.reserve(T * B * $0.dimension) }
        try withStatePointers(&stateGradient) { dh0, dc0 in
            try recurrent.backward(
                record.recurrent, outputGradient: dHidden, inputGradient: dx, initialHiddenGradient: dh0,
                initialCellGradient: dc0, truncation: record.truncation)
        }
        if let embedding, let dx { embedding.backward(record.tokens, outputGradient: dx) }
        layerStateGradient = stateGradient
        return SequenceBatchGradient(input: nil, initialState: stateGradient)
    }

    /// Calls `body` with pointers into the state's h and c (nil for a missing state or c).
    private func withStatePointers(
        _ state: inout RecurrentState<Scalar>?,
        _ body: (UnsafeMutablePointer<Scalar>?, UnsafeMutablePointer<Scalar>?) throws -> Void
    ) throws {
        guard var value = state else { return try body(nil, nil) }
        state = nil  // `value` holds the only reference: written in place
        var c = value.c
        value.c = nil
        try value.h.scalars.withUnsafeMutableBufferPointer { h in
            guard c != nil else { return try body(h.baseAddress!, nil) }
            try c!.scalars.withUnsafeMutableBufferPointer { try body(h.baseAddress!, $0.baseAddress!) }
        }
        value.c = c
        state = value
    }
}

extension LanguageModel: ParameterizedLayer {
    /// ``LanguageModelConfiguration/parameterLayout``: `embedding.weight`, `rnn.*`, `output.weight`, `output.bias`.
    public var parameterDeclarations: ParameterLayout { configuration.parameterLayout }

    /// Points the embedding, the recurrent layers and the head at `store` under `prefix`.
    public func _bind(to store: ParameterStore<Scalar>, prefix: String) throws {
        try embedding?._bind(to: store, prefix: prefix + "embedding.")
        try recurrent._bind(to: store, prefix: prefix + "rnn.")
        try output._bind(to: store, prefix: prefix + "output.")
        (parameters, parameterPrefix) = (store, prefix)
    }
}

extension LanguageModel: StatefulLayer {
    /// The state the next ``forward(_:generator:)`` without an initial state starts from, (L, B, H) h and (L, B, H) c
    /// for the LSTM; nil: zeros. A `Trainer` sets it (``carryFinalState()``); set it yourself to resume a stream.
    public var carriedState: RecurrentState<Scalar>? {
        get { carried }
        set { carried = newValue }
    }

    /// Whether the next forward without an initial state starts from ``carriedState``.
    public var isCarryingState: Bool { carried != nil }

    /// The next forward starts from zeros (the state's storage is kept for the next ``carryFinalState()``).
    public func resetCarriedState() {
        if carried != nil { spareState = carried }
        carried = nil
    }

    /// The next forward starts from the latest forward's final state, copied (reusing storage: no allocation).
    public func carryFinalState() throws {
        if carried == nil { swap(&carried, &spareState) }
        try copyFinalState(into: &carried)
    }

    /// Adds ``carriedState`` as `prefix` + `h` (L, B, H) and, for the LSTM, `prefix` + `c`, in the model's precision.
    public func writeCarriedState(into file: inout SafetensorsFile, prefix: String) throws {
        guard let carried else { return }
        let dtype: SafetensorsFile.DType = MemoryLayout<Scalar>.size == 8 ? .f64 : .f32
        try file.add(prefix + "h", carried.h, as: dtype)
        if let c = carried.c { try file.add(prefix + "c", c, as: dtype) }
    }

    /// Sets ``carriedState`` from `prefix` + `h` (and `c`): (L, B, H) with this model's layers and widths, any B,
    /// finite values; none in the file: not carrying.
    public func readCarriedState(from file: SafetensorsFile, prefix: String) throws {
        guard file.tensors[prefix + "h"] != nil else {
            if file.tensors[prefix + "c"] != nil {
                throw RecurrentKitError("tensor \(prefix)c is a carried cell state without \(prefix)h")
            }
            resetCarriedState()
            return
        }
        let h: Tensor<Scalar> = try file.tensor(prefix + "h")
        let layers = configuration.recurrent.stateLayers
        guard h.shape.count == 3, h.shape[0] == layers, h.shape[1] >= 1, h.shape[2] == configuration.recurrent.stateSize
        else {
            throw RecurrentKitError.shapeMismatch(
                prefix + "h",
                expected: [layers, h.shape.count == 3 ? h.shape[1] : 1, configuration.recurrent.stateSize], got: h.shape
            )
        }
        var c: Tensor<Scalar>? = nil
        if configuration.cell.hasCellState {
            guard file.tensors[prefix + "c"] != nil else {
                throw RecurrentKitError("a carried LSTM state needs \(prefix)c beside \(prefix)h")
            }
            let cell: Tensor<Scalar> = try file.tensor(prefix + "c")
            try cell.requireShape([layers, h.shape[1], configuration.hiddenSize], name: prefix + "c")
            c = cell
        } else if file.tensors[prefix + "c"] != nil {
            throw RecurrentKitError(
                "tensor \(prefix)c is a carried cell state, but a \(configuration.cell.rawValue) model has none")
        }
        for (name, tensor) in [("h", h), ("c", c)] where !(tensor?.scalars.allSatisfy(\.isFinite) ?? true) {
            throw RecurrentKitError("tensor \(prefix)\(name) holds NaN or infinite values")
        }
        carried = RecurrentState(h: h, c: c)
    }

    /// Runs `body` from a zero state and puts the carried state back afterwards.
    public func withCarriedStateSaved<R>(_ body: () throws -> R) rethrows -> R {
        let saved = carried
        carried = nil
        defer { carried = saved }
        return try body()
    }
}

/// The language model's loss for a `Trainer`: mean softmax cross-entropy of logits (T, B, V) against the T*B next
/// tokens (time-major), reduced in the logits' precision as d2l and
/// ``LanguageModel/loss(inputs:targets:steps:batch:state:training:computeGradients:truncation:gradientScale:generator:)``
/// do (so training through it gives the same weights bit for bit); the gradient's storage is reused.
public final class NextTokenLoss<Scalar: RecurrentScalar> {
    private var gradient = Tensor<Scalar>(zeros: [0])

    /// A loss with empty storage.
    public init() {}

    /// Mean cross-entropy (nats per token) and dL/dlogits (T, B, V) = (softmax - onehot) / (T B).
    /// - Throws: when the logits are not (T, B, V) with T*B targets, or a target is outside [0, V).
    public func callAsFunction(
        _ logits: Tensor<Scalar>, _ targets: [Int]
    ) throws -> (loss: Double, gradient: Tensor<Scalar>) {
        guard logits.shape.count == 3 else {
            throw RecurrentKitError("next-token logits must be (T, B, V), got shape \(logits.shape)")
        }
        let rows = logits.shape[0] * logits.shape[1], V = logits.shape[2]
        if gradient.shape != logits.shape { gradient = Tensor(zeros: logits.shape) }
        let loss = try logits.scalars.withUnsafeBufferPointer { z in
            try gradient.scalars.withUnsafeMutableBufferPointer { g in
                try softmaxCrossEntropy(
                    logits: z.baseAddress!, rows: rows, classes: V, targets: targets, gradient: g.baseAddress!)
            }
        }
        return (loss, gradient)
    }
}
