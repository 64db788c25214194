import RecurrentKit
/// Sizes and options of a character (or token) language model: input -> recurrent layers -> linear output.
public struct LanguageModelConfiguration: Codable, Equatable, Sendable {
    /// Vocabulary size V (>= 1).
    public var vocabularySize: Int
    /// Recurrent cell.
    public var cell: CellKind
    /// Hidden units H (>= 1).
    public var hiddenSize: Int
    /// Recurrent layers L (>= 1).
    public var numLayers: Int
    /// Dropout between recurrent layers in training, [0, 1). Default 0.
    public var dropout: Double
    /// Embedding width E, or nil for one-hot input (d2l's choice). Default nil.
    public var embeddingSize: Int?
    /// Whether the recurrent layers have biases (PyTorch `bias`). Default true.
    public var bias: Bool
    /// Whether the recurrent layers run in both directions (PyTorch `bidirectional`); the head then reads 2H. Such a
    /// model sees the token it must predict (d2l 9.4), so it can be loaded and its logits computed, but it is refused
    /// for training, evaluation and generation. Default false.
    public var bidirectional: Bool
    /// LSTM projection width P (PyTorch `proj_size`), or 0 (default) for none: h and the head's input then have width
    /// P.
    public var projectionSize: Int

    /// Creates a configuration (validated by ``validate()``).
    public init(
        vocabularySize: Int, cell: CellKind, hiddenSize: Int, numLayers: Int = 1, dropout: Double = 0,
        embeddingSize: Int? = nil,
        bias: Bool = true, bidirectional: Bool = false, projectionSize: Int = 0
    ) {
        self.vocabularySize = vocabularySize
        self.cell = cell
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
        self.embeddingSize = embeddingSize
        self.bias = bias
        self.bidirectional = bidirectional
        self.projectionSize = projectionSize
    }

    private enum CodingKeys: String, CodingKey {
        case vocabularySize, cell, hiddenSize, numLayers, dropout, embeddingSize, bias, bidirectional, projectionSize
    }

    /// Decodes a configuration; `bias` (true), `bidirectional` (false) and `projectionSize` (0) may be absent, as in
    /// every file written before they existed.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            vocabularySize: try c.decode(Int.self, forKey: .vocabularySize),
            cell: try c.decode(CellKind.self, forKey: .cell),
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            numLayers: try c.decode(Int.self, forKey: .numLayers),
            dropout: try c.decode(Double.self, forKey: .dropout),
            embeddingSize: try c.decodeIfPresent(Int.self, forKey: .embeddingSize),
            bias: try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true,
            bidirectional: try c.decodeIfPresent(Bool.self, forKey: .bidirectional) ?? false,
            projectionSize: try c.decodeIfPresent(Int.self, forKey: .projectionSize) ?? 0)
    }

    /// Encodes the configuration; `bias`, `bidirectional` and `projectionSize` only when they differ from the defaults,
    /// so a default model's metadata is what earlier versions wrote.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabularySize, forKey: .vocabularySize)
        try c.encode(cell, forKey: .cell)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(dropout, forKey: .dropout)
        try c.encodeIfPresent(embeddingSize, forKey: .embeddingSize)
        if !bias { try c.encode(false, forKey: .bias) }
        if bidirectional { try c.encode(true, forKey: .bidirectional) }
        if projectionSize != 0 { try c.encode(projectionSize, forKey: .projectionSize) }
    }

    /// The recurrent part: its input is the one-hot width V or the embedding width E.
    public var recurrent: RecurrentConfiguration {
        RecurrentConfiguration(
            cell: cell, inputSize: embeddingSize ?? vocabularySize, hiddenSize: hiddenSize,
            numLayers: numLayers, dropout: dropout, bias: bias, bidirectional: bidirectional,
            projectionSize: projectionSize)
    }

    /// Throws unless the model predicts the next token from the past only (it is not ``bidirectional``).
    public func requireCausal(for use: String) throws {
        guard !bidirectional else {
            throw RecurrentKitError(
                "a bidirectional model reads the token it must predict (d2l 9.4), so it cannot be used for \(use); "
                    + "load it to compute logits only"
            )
        }
    }

    /// Throws an error naming the first invalid field.
    public func validate() throws {
        guard vocabularySize >= 1 else {
            throw RecurrentKitError.invalidArgument("vocabularySize", vocabularySize, "must be at least 1")
        }
        guard vocabularySize <= 1 << 24 else {
            throw RecurrentKitError.invalidArgument("vocabularySize", vocabularySize, "must be at most 16777216")
        }
        if let e = embeddingSize, e < 1 {
            throw RecurrentKitError.invalidArgument("embeddingSize", e, "must be at least 1")
        }
        if let e = embeddingSize, e > 1 << 16 {
            throw RecurrentKitError.invalidArgument("embeddingSize", e, "must be at most 65536")
        }
        try recurrent.validate()
    }

    /// `state_dict` layout: `embedding.weight` (V, E) when embedded, `rnn.*`, `output.weight` (V, H) ((V, 2H) when
    /// bidirectional, P instead of H with a projection), `output.bias` (V).
    public var parameterLayout: ParameterLayout {
        var layout = ParameterLayout()
        if let e = embeddingSize {
            Embedding<Float>.declareParameters(
                prefix: "embedding.", vocabularySize: vocabularySize, dimension: e, into: &layout)
        }
        recurrent.declareParameters(prefix: "rnn.", into: &layout)
        Linear<Float>.declareParameters(
            prefix: "output.", inputSize: recurrent.outputSize, outputSize: vocabularySize, into: &layout)
        return layout
    }
}

/// A recurrent language model over token indices: one-hot or embedding input, a `RecurrentNetwork`,
/// and a linear layer to V logits; trained with softmax cross-entropy averaged over T*B.
public final class LanguageModel<Scalar: RecurrentScalar> {
    /// Sizes and options.
    public let configuration: LanguageModelConfiguration
    /// Every parameter under its PyTorch `state_dict` name, in one flat buffer (a container's, once the model is part
    /// of one).
    public internal(set) var parameters: ParameterStore<Scalar>
    /// The prefix of this model's names in ``parameters`` ("" unless it is part of a container).
    public internal(set) var parameterPrefix = ""
    /// The recurrent layers (`rnn.` names).
    public let recurrent: RecurrentNetwork<Scalar>
    /// Token vectors (`embedding.weight`), nil with one-hot input.
    public let embedding: Embedding<Scalar>?
    /// Hidden state to logits (`output.weight` (V, H), `output.bias` (V)).
    public let output: Linear<Scalar>

    private let embedded = Workspace<Scalar>()  // (T, B, E) embedding output
    let gradEmbedded = Workspace<Scalar>()  // (T, B, E)
    private let logitBuffer = Workspace<Scalar>()  // (T, B, V)
    private let gradLogits = Workspace<Scalar>()  // (T, B, V)
    let gradHidden = Workspace<Scalar>()  // (T, B, H)
    // The Layer interface (LanguageModel+Layer.swift): the logits it returns, the state gradient, the carried state.
    var layerLogits = Tensor<Scalar>(zeros: [0])
    var layerStateGradient: RecurrentState<Scalar>? = nil
    var carried: RecurrentState<Scalar>? = nil
    var spareState: RecurrentState<Scalar>? = nil
    /// Randomized truncation for training through the `Layer` interface: when set to a continue probability p in
    /// (0, 1], every training-mode ``forward(_:generator:)`` draws a seed from its generator and its backward cuts the
    /// recurrent gradient at random steps (Tallec and Ollivier 2017; d2l 8.7's "randomized truncation"). nil (default):
    /// the full gradient through each batch.
    public var randomizedTruncation: Double? = nil
    private var cachedTokens: [Int] = []
    /// The recurrent layers' record of this model's latest forward (nil before the first), for a backward of your
    /// own through it, e.g. with a loss on the last step only; stale once anything runs the layers again.
    public private(set) var record: RecurrentRecord<Scalar>? = nil

    /// A model with fresh parameters drawn by `initialization` from `generator`.
    public convenience init(
        _ configuration: LanguageModelConfiguration, initialization: Initialization = .pytorch,
        generator: inout SeededGenerator
    ) throws {
        try self.init(configuration)
        embedding?.initialize(initialization, generator: &generator)
        recurrent.initialize(initialization, generator: &generator)
        output.initialize(initialization, generator: &generator)
    }

    /// A model with all parameters zero (to be loaded from a checkpoint).
    public init(_ configuration: LanguageModelConfiguration) throws {
        try configuration.validate()
        let layout = configuration.parameterLayout
        // Values and gradients; refused with the sizes before the allocation could fail.
        try checkMemory(
            layout.totalCount * MemoryLayout<Scalar>.stride * 2,
            for:
                "a \(configuration.cell.rawValue) model with H \(configuration.hiddenSize), \(configuration.numLayers) "
                + "layer(s) and \(layout.totalCount) parameters"
        )
        self.configuration = configuration
        parameters = ParameterStore(layout: layout)
        recurrent = try RecurrentNetwork(configuration.recurrent, parameters: parameters, prefix: "rnn.")
        if let e = configuration.embeddingSize {
            embedding = try Embedding(
                prefix: "embedding.", vocabularySize: configuration.vocabularySize, dimension: e, store: parameters)
        } else {
            embedding = nil
        }
        output = try Linear(
            prefix: "output.", inputSize: configuration.recurrent.outputSize, outputSize: configuration.vocabularySize,
            store: parameters)
    }

    /// Runs the model over `inputs` (T*B indices, time-major) and returns the logits (T, B, V), valid until the next
    /// call. `state` is the initial state (zeros when nil); the final state is available from ``finalState()``. With
    /// `destination`, the logits are written there instead of the model's own buffer.
    @discardableResult
    func forwardLogits(
        inputs: [Int], steps T: Int, batch B: Int, state: RecurrentState<Scalar>?, training: Bool,
        generator: inout SeededGenerator, into destination: UnsafeMutablePointer<Scalar>? = nil
    ) throws -> UnsafeMutablePointer<Scalar> {
        let V = configuration.vocabularySize
        guard T >= 1, B >= 1, T.multipliedReportingOverflow(by: B).overflow == false, inputs.count == T * B else {
            throw RecurrentKitError("expected \(T)x\(B) = \(T * B) input tokens, got \(inputs.count)")
        }
        for (i, token) in inputs.enumerated() where token < 0 || token >= V {
            throw RecurrentKitError("token \(token) at position \(i) is outside the vocabulary [0, \(V))")
        }
        let L = configuration.recurrent.stateLayers, H = configuration.hiddenSize
        if let state {
            try state.h.requireShape(L, B, configuration.recurrent.stateSize, name: "state.h")
            if configuration.cell.hasCellState, let c = state.c { try c.requireShape(L, B, H, name: "state.c") }
        }
        cachedTokens = inputs
        let c = configuration.cell.hasCellState ? state?.c : nil
        let record = try withUnsafeScalars(state?.h) { h0 in
            try withUnsafeScalars(c) { c0 in
                if let embedding {
                    let x = embedded.reserve(T * B * embedding.dimension)
                    embedding.forward(inputs, into: x)
                    return try recurrent.forward(
                        steps: T, batch: B, input: x, tokens: nil, initialHidden: h0, initialCell: c0,
                        training: training, generator: &generator)
                }
                return try recurrent.forward(
                    steps: T, batch: B, input: nil, tokens: inputs, initialHidden: h0, initialCell: c0,
                    training: training, generator: &generator)
            }
        }
        self.record = record
        let logits = destination ?? logitBuffer.reserve(T * B * V)
        try record.withUnsafeOutput { output.forward($0.baseAddress!, rows: T * B, into: logits) }
        return logits
    }

    /// Training mode (PyTorch `train()`/`eval()`): the dropout between recurrent layers acts in
    /// ``loss(inputs:targets:steps:batch:state:training:computeGradients:truncation:gradientScale:generator:)`` when
    /// its `training` is nil; true until ``setTraining(_:)`` turns it off. Generation and evaluation always run without
    /// dropout.
    public var isTraining: Bool { recurrent.isTraining }

    /// Turns training mode on (dropout acts) or off.
    public func setTraining(_ training: Bool) { recurrent.setTraining(training) }

    /// Mean cross-entropy of predicting `targets` from `inputs` (both T*B, time-major), and, when `computeGradients`,
    /// adds dL/dparameters into `parameters.gradients` (zero them first yourself).
    /// - Parameters:
    ///   - inputs: T*B token indices, time-major.
    ///   - targets: T*B token indices to predict, time-major.
    ///   - T: steps (>= 1).
    ///   - B: batch rows (>= 1).
    ///   - state: initial state (L, B, H), zeros when nil; pass the previous ``finalState()`` to carry it with
    ///     its gradient cut (truncated BPTT, d2l's `detach_`).
    ///   - training: enables dropout; nil (default) follows the model's mode, ``isTraining`` (true until
    ///     ``setTraining(_:)`` turns it off, as PyTorch's `train()`/`eval()`).
    ///   - computeGradients: run the backward pass too (default true).
    ///   - truncation: how far the recurrent gradient travels back inside the chunk (full by default).
    ///   - gradientScale: the gradients are those of `gradientScale` times the mean loss (data-parallel training
    ///     passes B_r/B, so each process's gradient is its share of the global batch's mean: dL/dlogits is
    ///     (softmax - onehot) / (T*B) as in one process, up to the last bit).
    ///   - generator: draws the dropout masks.
    /// - Returns: mean cross-entropy in nats over the T*B predictions.
    public func loss(
        inputs: [Int], targets: [Int], steps T: Int, batch B: Int, state: RecurrentState<Scalar>? = nil,
        training: Bool? = nil, computeGradients: Bool = true, truncation: BackwardTruncation = .none,
        gradientScale: Double = 1, generator: inout SeededGenerator
    ) throws -> Double {
        let training = training ?? isTraining
        guard T >= 1, B >= 1, T.multipliedReportingOverflow(by: B).overflow == false else {
            throw RecurrentKitError(
                "invalid steps \(T) x batch \(B): both must be at least 1 and the number of tokens representable")
        }
        guard targets.count == T * B else { throw RecurrentKitError("expected \(T * B) targets, got \(targets.count)") }
        let V = configuration.vocabularySize, H = configuration.recurrent.outputSize
        let logits = try forwardLogits(
            inputs: inputs, steps: T, batch: B, state: state, training: training, generator: &generator)
        let dLogits = computeGradients ? gradLogits.reserve(T * B * V) : nil
        let loss = try softmaxCrossEntropy(
            logits: logits, rows: T * B, classes: V, targets: targets, gradient: dLogits,
            gradientScale: gradientScale)
        guard computeGradients, let dLogits, let record else { return loss }
        let dHidden = gradHidden.reserve(T * B * H)
        try record.withUnsafeOutput {
            output.backward(dLogits, x: $0.baseAddress!, rows: T * B, inputGradient: dHidden)
        }
        if let embedding {
            let dx = gradEmbedded.reserve(T * B * embedding.dimension)
            try recurrent.backward(record, outputGradient: dHidden, inputGradient: dx, truncation: truncation)
            embedding.backward(cachedTokens, outputGradient: dx)
        } else {
            try recurrent.backward(record, outputGradient: dHidden, truncation: truncation)
        }
        return loss
    }

    /// Logits (T, B, V) for `inputs` (T*B indices) from `state`, in evaluation mode (no dropout).
    public func logits(
        inputs: [Int], steps T: Int, batch B: Int, state: RecurrentState<Scalar>? = nil
    ) throws -> Tensor<Scalar> {
        var generator = SeededGenerator(seed: 0)
        let p = try forwardLogits(
            inputs: inputs, steps: T, batch: B, state: state, training: false, generator: &generator)
        let V = configuration.vocabularySize
        return try Tensor(shape: [T, B, V], scalars: Array(UnsafeBufferPointer(start: p, count: T * B * V)))
    }

    // Generation: the carried state, (L, 1, R) h then (L, 1, H) c, so each step reads it as h0/c0 without allocating.
    private let generationState = Workspace<Scalar>()
    // Generation: layer 0's input projection of every token (V, G*H), built at each reset, and the rows of one call.
    private let generationTable = Workspace<Scalar>()
    private let generationRows = Workspace<Scalar>()

    /// Batch-1 generation step: feeds `tokens` (the prefix on the first call, then one token at a time), carrying the
    /// state from the previous call unless `reset`; returns the logits of the last position (V values, valid until the
    /// next call).
    func generationLogits(_ tokens: [Int], reset: Bool) throws -> UnsafeMutablePointer<Scalar> {
        try configuration.requireCausal(for: "generation")
        let L = configuration.numLayers, H = configuration.recurrent.stateSize, V = configuration.vocabularySize
        let state = generationState.reserve(L * (H + configuration.hiddenSize))
        if reset { state.update(repeating: 0, count: L * (H + configuration.hiddenSize)) }
        var generator = SeededGenerator(seed: 0)
        let T = tokens.count
        guard T >= 1 else { throw RecurrentKitError("generation needs at least one token") }
        for (i, token) in tokens.enumerated() where token < 0 || token >= V {
            throw RecurrentKitError("token \(token) at position \(i) is outside the vocabulary [0, \(V))")
        }
        // Layer 0 reads one row of a per-token table instead of W_ih (a quarter of a 2-layer LSTM's weight bytes per
        // token) unless the table would be large (`RecurrentNetwork.decodesWithInputTable`); the table is rebuilt at
        // every reset, so weights changed between generations are always seen.
        let record: RecurrentRecord<Scalar>
        if let embedding, !recurrent.decodesWithInputTable(vocabularySize: V, embeddingSize: embedding.dimension) {
            let x = embedded.reserve(T * embedding.dimension)
            embedding.forward(tokens, into: x)
            record = try recurrent.forward(
                steps: T, batch: 1, input: x, tokens: nil, initialHidden: state, initialCell: state + L * H,
                training: false, generator: &generator)
        } else {
            let GH = configuration.cell.gateCount * configuration.hiddenSize
            let table = generationTable.reserve(V * GH)
            if reset {
                try recurrent.inputProjectionTable(
                    embedding: embedding.map { UnsafePointer($0.weight.values.baseAddress!) }, vocabularySize: V,
                    into: table)
            }
            let rows = generationRows.reserve(T * GH)
            for (t, token) in tokens.enumerated() { (rows + t * GH).update(from: table + token * GH, count: GH) }
            record = try recurrent.forward(
                steps: T, batch: 1, input: nil, tokens: nil, initialHidden: state, initialCell: state + L * H,
                inputProjections: rows, training: false, generator: &generator)
        }
        self.record = record
        try record.copyFinalState(hidden: state, cell: state + L * H)
        let logits = logitBuffer.reserve(V)
        try record.withUnsafeOutput { output.forward($0.baseAddress! + (T - 1) * H, rows: 1, into: logits) }
        return logits
    }

    /// Final state of every layer after the last forward (a value: carrying it cuts the gradient path).
    public func finalState() throws -> RecurrentState<Scalar> { try recurrent.finalState() }

    /// Writes the final state into `state`, reusing its storage when the shapes match (no allocation per update).
    public func copyFinalState(into state: inout RecurrentState<Scalar>?) throws {
        try recurrent.copyFinalState(into: &state)
    }
}

/// Calls `body` with the tensor's scalars, or with nil.
private func withUnsafeScalars<Scalar, R>(
    _ tensor: Tensor<Scalar>?, _ body: (UnsafePointer<Scalar>?) throws -> R
) rethrows -> R {
    guard let tensor else { return try body(nil) }
    return try tensor.scalars.withUnsafeBufferPointer { try body($0.baseAddress!) }
}
