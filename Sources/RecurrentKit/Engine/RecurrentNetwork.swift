// The public recurrent layer: sizes, parameters, mode and the record state of its latest forward. It checks every
// argument and hands the work to its `LayerStack` (the engine: OneDirectionStack.swift, BidirectionalStack.swift).

/// A stack of recurrent layers with PyTorch's semantics (`nn.RNN`, `nn.GRU`, `nn.LSTM`, time-major),
/// and backpropagation through time written by hand.
///
/// `forward` runs all layers over T steps and keeps what `backward` needs; `backward` takes the gradient
/// of every output h_t of the last layer and of the final states, adds parameter gradients into
/// ``ParameterStore/gradients`` (`+=`), and returns gradients for the input and the initial states.
/// Truncated BPTT: pass the previous chunk's ``RecurrentState`` as the next initial state (its gradient
/// path is cut, like d2l's `detach_`, because states are plain values), or pass nil to reset to zeros.
public class RecurrentNetwork<Scalar: RecurrentScalar>: ParameterizedLayer {
    /// Sizes and options.
    public let configuration: RecurrentConfiguration
    /// Holds `weight_ih_l{k}` (G*H, In), `weight_hh_l{k}` (G*H, H), `bias_ih_l{k}` (G*H), `bias_hh_l{k}` (G*H)
    /// (shared with the rest of a model gathered by ``ParameterStore/init(gathering:)``).
    public internal(set) var parameters: ParameterStore<Scalar>
    /// The prefix of this network's names in ``parameters`` ("" for a standalone network, e.g. "rnn." in a model).
    public var parameterPrefix: String { prefix }
    var prefix: String
    /// How the parameters are named: per layer (`weight_ih_l0`), as a cell (`weight_ih`), or as one direction of one
    /// layer of a bidirectional stack.
    let naming: ParameterNaming
    /// What runs the layers (LayerStack.swift): one direction's loop, or with `bidirectional` two one-direction stacks
    /// per layer and what they keep.
    let stack: LayerStack<Scalar>

    // The latest forward, as records see it.
    /// Steps and batch of the latest forward; 0 steps when there is none.
    var cachedSteps = 0
    var cachedBatch = 0
    /// Counts forwards: a ``RecurrentRecord`` is valid only while this equals the count it was made with.
    var forwardGeneration = 0
    /// Whether the latest forward read one-hot tokens (its backward has no input gradient).
    var cachedOneHot = false
    /// Whether the latest forward read precomputed input projections (inference only: no backward).
    var cachedProjected = false

    /// Opt-in memory-efficient BPTT (after Gruslys et al. 2016): when set, forward keeps every layer's state only at
    /// the start of each segment of `recomputeInterval` steps (plus the layer-0 input and the last layer's outputs,
    /// kept whole) and backward recomputes one segment's activations at a time, so activation memory follows the
    /// interval instead of T, for about one extra forward pass. Gradients are bit-identical to the default. A positive
    /// multiple of ``timeBlockSteps``; nil (default) keeps every activation.
    public var recomputeInterval: Int? = nil
    /// Data-parallel training: each forward's batch is the rows `dropoutShard.rows` of a global batch of
    /// `dropoutShard.globalBatch` rows (time-major, the shard's rows in order). The dropout masks between layers are
    /// then drawn for the whole global batch, from the same streams as one process would use, and this shard's rows
    /// kept, so a model trained on N processes sees exactly the masks of one process. nil (default): the batch is
    /// the whole batch. Not available with a variable-length or bidirectional forward.
    public var dropoutShard: BatchShard? = nil
    /// Training mode (PyTorch `train()`/`eval()`): true until ``setTraining(_:)`` turns it off. A forward whose
    /// `training` argument is nil (the default), and the ``Layer`` forward, apply the dropout between layers in
    /// training mode only.
    public internal(set) var isTraining = true
    /// The ``Layer`` forward's output and final state, and the backward's gradients, reused between calls.
    let layerBuffers = LayerBuffers<Scalar>()
    /// Products over time (input projections, weight gradients) run in blocks of this many steps at fixed positions,
    /// so a recomputing backward issues exactly the same calls as the default one.
    public static var timeBlockSteps: Int { OneDirectionStack<Scalar>.timeBlockSteps }

    /// Attached by an analysis (d2l 8.7's gradient flow) to record dL/dh_t at every step of each backward; nil (the
    /// default, and always in training): nothing is recorded.
    public var hiddenGradientRecorder: HiddenGradientRecorder<Scalar>? = nil

    /// A standalone network with its own parameters, initialised by `initialization` from `generator`.
    public convenience init(
        _ configuration: RecurrentConfiguration,
        initialization: Initialization = .pytorch,
        generator: inout SeededGenerator
    ) throws {
        try self.init(configuration, parameters: try ownParameters(configuration), prefix: "", naming: .layers)
        initialize(initialization, generator: &generator)
    }

    /// A network whose parameters live in a larger store under `prefix` (e.g. "rnn.").
    public convenience init(
        _ configuration: RecurrentConfiguration, parameters: ParameterStore<Scalar>, prefix: String
    ) throws {
        try self.init(configuration, parameters: parameters, prefix: prefix, naming: .layers)
    }

    /// A network bound to `parameters` under `prefix`, its names following `naming`.
    init(
        _ configuration: RecurrentConfiguration, parameters: ParameterStore<Scalar>, prefix: String,
        naming: ParameterNaming
    ) throws {
        try configuration.validate()
        guard naming == .layers || (configuration.numLayers == 1 && !configuration.bidirectional) else {
            throw RecurrentKitError("a cell or a direction has one layer")
        }
        try Self.checkDeclared(configuration, in: parameters, prefix: prefix, naming: naming)
        self.configuration = configuration
        self.parameters = parameters
        self.prefix = prefix
        self.naming = naming
        if configuration.bidirectional {
            stack = BidirectionalStack(configuration, parameters: parameters, prefix: prefix)
        } else {
            stack = OneDirectionStack(
                configuration,
                weights: RecurrentWeights(configuration, naming: naming, store: parameters, prefix: prefix))
        }
    }

    /// The parameter pointers of a one-direction network's layers (a bidirectional network's are its directions').
    var weights: RecurrentWeights<Scalar> { stack.engines[0].weights }

    /// Forward over T steps. `input` is (T, B, I) dense or nil with `tokens` (T*B indices in [0, I)).
    /// `h0`, `c0` are (L, B, H) or nil for zeros; they are copied before any cache is resized, so they may point into
    /// memory the previous forward wrote (`finalHidden(layer:)` itself). `lengths` (B values in [1, T]) makes a
    /// variable-length batch: row b runs its first lengths[b] steps only (see SequencePacking.swift).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    func forward(
        steps T: Int, batch B: Int,
        input: UnsafePointer<Scalar>?, tokens: [Int]?,
        h0: UnsafePointer<Scalar>?, c0: UnsafePointer<Scalar>?, lengths: [Int]? = nil,
        inputProjections: UnsafePointer<Scalar>? = nil,
        training: Bool, generator: inout SeededGenerator
    ) throws {
        let I = configuration.inputSize
        guard T >= 1 else { throw RecurrentKitError.invalidArgument("steps", T, "must be at least 1") }
        guard B >= 1 else { throw RecurrentKitError.invalidArgument("batch", B, "must be at least 1") }
        if let interval = recomputeInterval, interval < 1 || interval % Self.timeBlockSteps != 0 {
            throw RecurrentKitError.invalidArgument(
                "recompute interval", interval, "must be a positive multiple of \(Self.timeBlockSteps)")
        }
        // Every check comes before anything changes, so a refused forward leaves the last record usable.
        if let lengths { try SequencePacking.check(lengths, steps: T, batch: B) }
        if let shard = dropoutShard, training, configuration.dropout > 0 {
            guard shard.count == B else {
                throw RecurrentKitError("dropout shard has \(shard.count) rows but the batch has \(B)")
            }
            guard lengths == nil, !configuration.bidirectional else {
                throw RecurrentKitError("a dropout shard is not available with variable-length or bidirectional layers")
            }
        }
        if let tokens {
            guard tokens.count == T * B else {
                throw RecurrentKitError("one-hot input has \(tokens.count) indices, expected T*B = \(T * B)")
            }
            for (i, token) in tokens.enumerated() where token < 0 || token >= I {
                // Padded positions of a variable-length batch are never read: any value is allowed there.
                if let lengths, i / B >= lengths[i % B] { continue }
                throw RecurrentKitError("one-hot index \(token) at position \(i) is outside [0, \(I))")
            }
        } else if input == nil && inputProjections == nil {
            throw RecurrentKitError("forward needs dense input, one-hot tokens or input projections")
        }
        if inputProjections != nil {
            guard input == nil, tokens == nil else {
                throw RecurrentKitError("give input projections instead of the input, not with it")
            }
            guard !configuration.bidirectional else {
                throw RecurrentKitError("input projections are not defined for a bidirectional stack")
            }
        }
        // Records of earlier forwards are stale from here on, whatever happens below.
        forwardGeneration &+= 1
        cachedSteps = 0
        try stack.forward(
            steps: T, batch: B, input: input, tokens: tokens, h0: h0, c0: c0, lengths: lengths,
            inputProjections: inputProjections, training: training, recomputeInterval: recomputeInterval,
            dropoutShard: dropoutShard, generator: &generator)
        (cachedSteps, cachedBatch) = (T, B)
        cachedOneHot = tokens != nil
        cachedProjected = inputProjections != nil
    }

    /// Backward through the cached forward. `outputGradient` is (T, B, H); `finalHiddenGradient` and
    /// `finalCellGradient` are (L, B, H) or nil for zeros. Writes (overwrites) `inputGradient` (T, B, I) when
    /// non-nil and the input was dense, and `initialHiddenGradient`/`initialCellGradient` (L, B, H) when non-nil.
    /// Adds every parameter gradient into the store.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    func backward(
        outputGradient: UnsafePointer<Scalar>,
        finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?,
        inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?,
        initialCellGradient: UnsafeMutablePointer<Scalar>?,
        truncation: BackwardTruncation = .none
    ) throws {
        let T = cachedSteps, B = cachedBatch
        guard T > 0 else { throw RecurrentKitError("backward called without a forward pass") }
        guard !cachedProjected else {
            throw RecurrentKitError(
                "a forward from precomputed input projections is for inference: it has no input to differentiate")
        }
        try stack.backward(
            steps: T, batch: B, outputGradient: outputGradient, finalHiddenGradient: finalHiddenGradient,
            finalCellGradient: finalCellGradient, inputGradient: cachedOneHot ? nil : inputGradient,
            initialHiddenGradient: initialHiddenGradient, initialCellGradient: initialCellGradient,
            truncation: truncation, recorder: hiddenGradientRecorder)
    }

    // MARK: - Pointer API (no allocation after the first call at a given size)

    /// Every h_t of the last layer after `forward`, (T, B, D*H), valid until the next forward.
    var output: UnsafeMutablePointer<Scalar> { stack.output }

    /// Final hidden state of state row `k` (layer k, or layer k/2 and direction k%2 when bidirectional), (B, H).
    func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> { stack.finalHidden(layer: k) }

    /// Final cell state of state row `k`, (B, H), after `forward` (LSTM only).
    func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> { stack.finalCell(layer: k) }

    /// Bytes this network holds for forward caches and backward scratch (packed weights and parameters excluded).
    /// Buffers grow to the largest sequence seen and are reused; with ``recomputeInterval`` they hold one segment.
    public var activationMemoryBytes: Int { stack.activationMemoryBytes }
}

func withOptionalPointer<Scalar, R>(
    _ tensor: Tensor<Scalar>?, _ body: (UnsafePointer<Scalar>?) throws -> R
) rethrows -> R {
    guard let tensor else { return try body(nil) }
    return try tensor.scalars.withUnsafeBufferPointer { try body($0.baseAddress) }
}

func withOptionalMutablePointer<Scalar, R>(
    _ tensor: inout Tensor<Scalar>?, _ body: (UnsafeMutablePointer<Scalar>?) throws -> R
) rethrows -> R {
    guard tensor != nil else { return try body(nil) }
    return try tensor!.scalars.withUnsafeMutableBufferPointer { try body($0.baseAddress) }
}
