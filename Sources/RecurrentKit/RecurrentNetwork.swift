import _RecurrentKitKernels
/// What one layer's forward keeps for its backward (T steps, batch B, H hidden, G gates, In inputs).
final class LayerCache<Scalar: RecurrentScalar> {
    /// (T, B, In) input of layers k > 0 as used (dropout applied); unused for layer 0 (see `inputCopy`).
    let input = Workspace<Scalar>()
    /// (T, B, G*H): input projection W_ih x_t + b_ih, then (LSTM, GRU) the activated gates i|f|g|o or r|z|n.
    let gates = Workspace<Scalar>()
    /// (T+1, B, R): h_0 (the initial state) then h_1 ... h_T.
    let hidden = Workspace<Scalar>()
    /// (T+1, B, H): LSTM c_0 ... c_T.
    let cell = Workspace<Scalar>()
    /// (T, B, H): LSTM tanh(c_t).
    let tanhCell = Workspace<Scalar>()
    /// (T, B, H): GRU W_hn h_{t-1} + b_hn, the term the reset gate multiplies.
    let recurrentNew = Workspace<Scalar>()
    /// (T, B, R): dropout keep mask of this layer's output, already scaled by 1/(1-p); valid when `droppedOut`.
    let dropoutMask = Workspace<Scalar>()
    /// (T, B, H): LSTM with a projection, o * tanh(c_t) before W_hr (h_t = W_hr of it).
    let unprojected = Workspace<Scalar>()
    /// Whether this layer's output went through dropout in the last forward.
    var droppedOut = false
}

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
    /// With `bidirectional`: the one-layer networks doing each direction's work, and what the stack keeps.
    private(set) var bidirectionalLayers: BidirectionalLayers<Scalar>? = nil

    // Per-layer parameter and gradient pointers, resolved when bound.
    var weightIH: [UnsafeMutablePointer<Scalar>]
    var weightHH: [UnsafeMutablePointer<Scalar>]
    /// LSTM with a projection: `weight_hr_l{k}` (P, H) and its gradient (empty otherwise).
    var weightHR: [UnsafeMutablePointer<Scalar>] = []
    var gradWeightHR: [UnsafeMutablePointer<Scalar>] = []
    var biasIH: [UnsafeMutablePointer<Scalar>]
    var biasHH: [UnsafeMutablePointer<Scalar>]
    var gradWeightIH: [UnsafeMutablePointer<Scalar>]
    var gradWeightHH: [UnsafeMutablePointer<Scalar>]
    var gradBiasIH: [UnsafeMutablePointer<Scalar>]
    var gradBiasHH: [UnsafeMutablePointer<Scalar>]

    // Forward cache.
    let layers: [LayerCache<Scalar>]
    /// Steps and batch of the cached forward; 0 when there is none.
    var cachedSteps = 0
    var cachedBatch = 0
    /// Counts forwards: a ``RecurrentRecord`` is valid only while this equals the count it was made with.
    var forwardGeneration = 0
    /// (T, B) token indices of the cached forward when the input was one-hot (packed, (N), for a variable-length batch).
    var cachedTokens: [Int]? = nil
    /// Whether the cached forward read layer 0's input projections precomputed (`inputProjections`, inference only).
    var cachedProjected = false
    /// The sorted order and step sizes of the cached forward's variable-length batch; nil when every row ran T steps.
    var packing: SequencePacking? = nil
    private let packingStorage = SequencePacking()

    // W_hh packed once per forward (the weights do not change between a forward and its backward):
    // op(B) = W_hh^T (H, G*H) for h W_hh^T, and W_hh (G*H, H) for dGates W_hh.
    private var packedForward: [PackedWeight<Scalar>] = []
    private var packedBackward: [PackedWeight<Scalar>] = []
    private var packedBackwardReady = false
    /// Whether the cached forward packed W_hh (sequences of at least `packingMinimumSteps` steps).
    private var usesPackedWeights = false
    /// Shorter sequences (generation, one token at a time) read W_hh in place: packing would cost more than it saves.
    static var packingMinimumSteps: Int { 4 }

    // Backward truncation of the current backward pass; randomized truncation draws from one stream per layer.
    private var truncation: BackwardTruncation = .none
    private var truncationGenerators: [SeededGenerator] = []

    /// Opt-in memory-efficient BPTT (after Gruslys et al. 2016): when set, forward keeps every layer's state only at
    /// the start of each segment of `recomputeInterval` steps (plus the layer-0 input and the last layer's outputs, kept
    /// whole) and backward recomputes
    /// one segment's activations at a time, so activation memory follows the interval instead of T, for about one
    /// extra forward pass. Gradients are bit-identical to the default. A positive multiple of ``timeBlockSteps``;
    /// nil (default) keeps every activation.
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
    public static var timeBlockSteps: Int { 16 }
    /// Whether the cached forward kept states at segment starts only.
    var recomputes = false
    /// Segment length of the cached forward (T when not recomputing): later changes to `recomputeInterval` do not
    /// affect a backward through a forward that already ran.
    private var cachedSegmentSteps = 0
    /// Which segment's activations the layer caches hold now (the last after forward; backward recomputes others).
    private var heldSegment = 0
    /// Whether the cached forward was in training mode (dropout), for recomputation.
    private var cachedTraining = false
    /// Seed of the cached forward's dropout masks.
    private var dropoutSeed: UInt64 = 0

    /// When true, backward records ``hiddenGradients``.
    public var recordsHiddenGradients = false
    /// After a backward with ``recordsHiddenGradients``: per layer, dL/dh_t for every step, (T, B, H) flattened:
    /// the output gradient plus the recurrent gradient from step t+1, the quantity d2l 8.7 eq. (8) recurses on.
    public private(set) var hiddenGradients: [[Scalar]] = []
    private var recordedBatch = 1

    /// [layer][t] = ||dL/dh_t|| over the batch, from ``hiddenGradients``.
    public var hiddenGradientNorms: [[Double]] {
        let B = recordedBatch, H = configuration.stateSize
        return hiddenGradients.map { g in
            stride(from: 0, to: g.count, by: B * H).map { start in
                (start..<(start + B * H)).reduce(0.0) { $0 + Double(g[$1]) * Double(g[$1]) }.squareRoot()
            }
        }
    }

    // Backward scratch, reused.
    private let gradProjected = Workspace<Scalar>()  // (T, B, G*H) dL/d(W_ih x + b_ih)
    // (T, B, G*H) dL/d(W_hh h + b_hh); GRU only (others alias gradProjected)
    private let gradRecurrent = Workspace<Scalar>()
    // (T, B, max(In, R)) gradient w.r.t. the current layer's output / input
    private let gradOutput = Workspace<Scalar>()
    let gradHidden = Workspace<Scalar>()  // (B, R) dL/dh_t carried backwards
    let gradHiddenNext = Workspace<Scalar>()  // (B, R)
    let gradCell = Workspace<Scalar>()  // (B, H) dL/dc_t carried backwards
    let rowTasks = StepRowTasks<Scalar>()
    let stepScratch = Workspace<Scalar>()  // (B, G*H) GRU W_hh h + b_hh in forward
    let projectionScratch = Workspace<Scalar>()  // (2, B, H) LSTM projection: dL/dh_t, then dL/d(o * tanh c_t)
    // (B, H) zeros: the output term of an LSTM step whose output gradient went through W_hr
    let zeroRows = Workspace<Scalar>()
    private let stagedStates = Workspace<Scalar>()  // (L, B, R) h0 then (L, B, H) c0 copies (they may alias the caches)
    private let oneHotScratch = Workspace<Scalar>()  // (I, G*H) transposed one-hot W_ih gradient of one time block
    private let columnSumScratch = Workspace<Scalar>()  // (G*H) bias gradient sums
    /// With `bias: false`: zeros the stack reads as biases, then scratch for the bias gradients, (4, L, G*H).
    let absentBias = Workspace<Scalar>()
    // (L, B, R) dL/dh then (L, B, H) dL/dc per layer at the current segment end
    private let carriedGradients = Workspace<Scalar>()
    private let oneHotWeightT = Workspace<Scalar>()  // (I, G*H) W_ih^T for the one-hot gather

    // Forward data kept whole.
    private let inputCopy = Workspace<Scalar>()  // (T, B, I) dense input of layer 0
    private let outputSequence = Workspace<Scalar>()  // (T, B, R) last layer's h_1 ... h_T when recomputing
    // (segments, L, B, R + H) h then c of every layer at each segment start
    private let stateCheckpoints = Workspace<Scalar>()
    private let finalStates = Workspace<Scalar>()  // (L, B, R) h_T then (L, B, H) c_T when recomputing or packed
    // Variable-length batches (see SequencePacking.swift).
    private let sortedFinalStates = Workspace<Scalar>()  // (L, B, R + H) each sorted row's state at its own last step
    // (T, B, R) last layer's output in the caller's order, zeros when padded
    private let paddedOutput = Workspace<Scalar>()
    private let packedGradient = Workspace<Scalar>()  // (N, R) output gradient in packed order
    private let packedInputGradient = Workspace<Scalar>()  // (N, I) input gradient in packed order
    private let gatheredHidden = Workspace<Scalar>()  // (rows of a time block, R) h_{t-1} rows matching dW_hh's rows

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
        self.configuration = configuration
        self.parameters = parameters
        self.prefix = prefix
        self.naming = naming
        try Self.checkDeclared(configuration, in: parameters, prefix: prefix, naming: naming)
        let L = configuration.numLayers
        (weightIH, weightHH, biasIH, biasHH) = ([], [], [], [])
        (gradWeightIH, gradWeightHH, gradBiasIH, gradBiasHH) = ([], [], [], [])
        layers = (0..<L).map { _ in LayerCache() }
        packedForward = (0..<L).map { _ in PackedWeight() }
        packedBackward = (0..<L).map { _ in PackedWeight() }
        resolvePointers()
        if configuration.bidirectional { bidirectionalLayers = try BidirectionalLayers(self) }
    }

    // MARK: - Pointer API (no allocation after the first call at a given size)

    /// Every h_t of the last layer after `forward`, (T, B, H), valid until the next forward.
    var output: UnsafeMutablePointer<Scalar> {
        if let bidirectionalLayers { return bidirectionalLayers.outputs[configuration.numLayers - 1].pointer }
        if packing != nil { return paddedOutput.pointer }
        return recomputes
            ? outputSequence.pointer
            : layers[configuration.numLayers - 1].hidden.pointer + cachedBatch * configuration.stateSize
    }

    /// Final hidden state of state row `k` (layer k, or layer k/2 and direction k%2 when bidirectional), (B, H).
    func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> {
        if let bidirectionalLayers { return bidirectionalLayers.directions[k].finalHidden(layer: 0) }
        let BH = cachedBatch * configuration.stateSize
        return recomputes || packing != nil ? finalStates.pointer + k * BH : layers[k].hidden.pointer + cachedSteps * BH
    }

    /// Final cell state of state row `k`, (B, H), after `forward` (LSTM only).
    func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> {
        if let bidirectionalLayers { return bidirectionalLayers.directions[k].finalCell(layer: 0) }
        let BH = cachedBatch * configuration.hiddenSize,
            cells = configuration.numLayers * cachedBatch * configuration.stateSize
        return recomputes || packing != nil
            ? finalStates.pointer + cells + k * BH : layers[k].cell.pointer + cachedSteps * BH
    }

    /// Bytes this network holds for forward caches and backward scratch (packed weights and parameters excluded).
    /// Buffers grow to the largest sequence seen and are reused; with ``recomputeInterval`` they hold one segment.
    public var activationMemoryBytes: Int {
        var workspaces = [
            inputCopy, outputSequence, stateCheckpoints, finalStates, stagedStates, carriedGradients, sortedFinalStates,
            paddedOutput, packedGradient, packedInputGradient, gatheredHidden,
            gradProjected, gradRecurrent, gradOutput, gradHidden, gradHiddenNext, gradCell, stepScratch,
            projectionScratch, zeroRows,
            oneHotWeightT, oneHotScratch, columnSumScratch,
        ]
        for cache in layers {
            workspaces += [
                cache.input, cache.gates, cache.hidden, cache.cell, cache.tanhCell, cache.recurrentNew,
                cache.dropoutMask, cache.unprojected,
            ]
        }
        return workspaces.reduce(0) { $0 + $1.capacity } * MemoryLayout<Scalar>.stride
            + (bidirectionalLayers?.activationMemoryBytes ?? 0)
    }

    /// Absolute step ranges of the time blocks covering [first, first + n): boundaries at multiples of
    /// ``timeBlockSteps``, so every caller of the block products (plain or recomputing) issues the same calls.
    @inline(__always)
    private func timeBlocks(first: Int, steps n: Int) -> TimeSpans {
        TimeSpans(first: first, end: first + n, boundary: Self.timeBlockSteps)
    }

    /// Segments the sequence is processed in: one when all activations are kept, else ``recomputeInterval`` steps each.
    private func segments(steps T: Int) -> TimeSpans {
        TimeSpans(first: 0, end: T, boundary: max(cachedSegmentSteps, 1))
    }

    /// Where absolute step t's rows start in the (rows, width) buffers kept whole (layer-0 input, one-hot tokens, the
    /// recomputing forward's output): t * B, or the packed offset.
    @inline(__always)
    private func absoluteRow(_ t: Int, batch B: Int) -> Int { packing?.rowStart[t] ?? t * B }

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
        let L = configuration.numLayers, H = configuration.hiddenSize, G = configuration.cell.gateCount,
            R = configuration.stateSize
        let GH = G * H, I = configuration.inputSize
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
            guard lengths == nil, bidirectionalLayers == nil else {
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
            guard bidirectionalLayers == nil else {
                throw RecurrentKitError("input projections are not defined for a bidirectional stack")
            }
        }
        let packed = try lengths.map { try packingStorage.configure($0, steps: T, batch: B) } ?? false
        if let bidirectionalLayers {
            try bidirectionalLayers.forward(
                steps: T, batch: B, input: input, tokens: tokens, h0: h0, c0: c0, lengths: packed ? lengths : nil,
                training: training, generator: &generator)
            packing = nil
            cachedTokens = tokens
            cachedSteps = T
            cachedBatch = B
            forwardGeneration &+= 1
            return
        }
        let isLSTM = configuration.cell == .lstm
        let willRecompute = recomputeInterval.map { $0 < T } ?? false
        let segmentSteps = willRecompute ? recomputeInterval! : T
        let dropsOut = training && configuration.dropout > 0
        // Reserve every buffer first: initial states may alias last call's final states, so copy them in before anything moves.
        for k in 0..<L {
            let cache = layers[k]
            if k > 0 { cache.input.reserve(segmentSteps * B * configuration.layerInputSize(k)) }
            cache.gates.reserve(segmentSteps * B * GH)
            if isLSTM { cache.tanhCell.reserve(segmentSteps * B * H) }
            if configuration.cell == .gru { cache.recurrentNew.reserve(segmentSteps * B * H) }
            if k < L - 1 && dropsOut { cache.dropoutMask.reserve(segmentSteps * B * R) }
            if R != H { cache.unprojected.reserve(segmentSteps * B * H) }
        }
        packing = packed ? packingStorage : nil
        // Layer 0 reads the dense input (T, B, I) or, with `inputProjections`, its precomputed projections (T, B, G*H).
        cachedProjected = inputProjections != nil
        let firstWidth = cachedProjected ? GH : I
        if let first = inputProjections ?? input {
            if let packing {
                packing.pack(first, into: inputCopy.reserve(packing.validRows * firstWidth), width: firstWidth)
            } else {
                inputCopy.reserve(T * B * firstWidth).update(from: first, count: T * B * firstWidth)
            }
        }
        stepScratch.reserve(B * GH)
        // h0 (L, B, R) then c0 (L, B, H); every state buffer of the stack has this layout.
        let cells = L * B * R
        stagedStates.reserve(2 * L * B * H)
        if let h0 {
            stagedStates.pointer.update(from: h0, count: L * B * R)
        } else {
            stagedStates.pointer.update(repeating: 0, count: L * B * R)
        }
        if isLSTM {
            if let c0 {
                (stagedStates.pointer + cells).update(from: c0, count: L * B * H)
            } else {
                (stagedStates.pointer + cells).update(repeating: 0, count: L * B * H)
            }
        }
        for k in 0..<L {
            let cache = layers[k]
            cache.hidden.reserve((segmentSteps + 1) * B * R)
            if isLSTM { cache.cell.reserve((segmentSteps + 1) * B * H) }
            if let packing {  // the sorted rows' initial states
                packing.permuteRows(
                    stagedStates.pointer + k * B * R, into: cache.hidden.pointer, layers: 1, width: R, toSorted: true)
                if isLSTM {
                    packing.permuteRows(
                        stagedStates.pointer + cells + k * B * H, into: cache.cell.pointer, layers: 1, width: H,
                        toSorted: true)
                }
            } else {
                cache.hidden.pointer.update(from: stagedStates.pointer + k * B * R, count: B * R)
                if isLSTM { cache.cell.pointer.update(from: stagedStates.pointer + cells + k * B * H, count: B * H) }
            }
        }
        if let packing, let tokens {
            var packedTokens: [Int] = []
            packing.pack(tokens: tokens, into: &packedTokens)
            cachedTokens = packedTokens
        } else {
            cachedTokens = tokens
        }
        cachedSteps = T
        forwardGeneration &+= 1
        cachedBatch = B
        cachedTraining = training
        recomputes = willRecompute
        cachedSegmentSteps = segmentSteps
        // One seed per forward; each (layer, time block) mask draws from its own stream, so a recomputed segment
        // gets the same masks.
        dropoutSeed = dropsOut && L > 1 ? generator.next() : 0
        usesPackedWeights = T >= Self.packingMinimumSteps
        packedBackwardReady = false
        if usesPackedWeights {
            for k in 0..<L { packedForward[k].pack(transB: true, k: R, n: GH, b: weightHH[k], ldb: R) }
        }
        if let tokens = cachedTokens, tokens.count >= 64 {
            // W_ih^T (I, G*H), transposed once per forward so each gathered row is contiguous.
            let w = weightIH[0], wT = oneHotWeightT.reserve(I * GH)
            for j in 0..<GH { for v in 0..<I { wT[v * GH + j] = w[j * I + v] } }
        }

        let segmentList = segments(steps: T)
        heldSegment = segmentList.count - 1
        if recomputes {
            stateCheckpoints.reserve(segmentList.count * 2 * L * B * H)
            outputSequence.reserve(T * B * R)
        }
        if recomputes || packed { finalStates.reserve(2 * L * B * H) }
        if packed { sortedFinalStates.reserve(2 * L * B * H) }
        for (index, segment) in segmentList.enumerated() {
            let steps = StepRows(first: segment.start, count: segment.count, batch: B, packing: packing)
            for k in 0..<L {
                let cache = layers[k]
                if index > 0 {
                    // Carry the state from the end of the previous segment (same buffer, earlier slot).
                    let previous = StepRows(
                        first: segmentList[index - 1].start, count: segmentList[index - 1].count, batch: B,
                        packing: packing)
                    let last = previous.count - 1, rows = previous.rows(last)
                    cache.hidden.pointer.update(from: cache.hidden.pointer + previous.output(last) * R, count: rows * R)
                    if isLSTM {
                        cache.cell.pointer.update(from: cache.cell.pointer + previous.output(last) * H, count: rows * H)
                    }
                }
                if recomputes {
                    let slot = stateCheckpoints.pointer + index * 2 * L * B * H
                    (slot + k * B * R).update(from: cache.hidden.pointer, count: B * R)
                    if isLSTM { (slot + cells + k * B * H).update(from: cache.cell.pointer, count: B * H) }
                }
                layerForward(k, steps)
                if packed { keepFinishedRows(layer: k, steps) }
            }
            if recomputes {
                (outputSequence.pointer + absoluteRow(segment.start, batch: B) * R)
                    .update(from: layers[L - 1].hidden.pointer + B * R, count: steps.total * R)
            }
        }
        if let packing {
            packing.permuteRows(
                sortedFinalStates.pointer, into: finalStates.pointer, layers: L, width: R, toSorted: false)
            if isLSTM {
                packing.permuteRows(
                    sortedFinalStates.pointer + cells, into: finalStates.pointer + cells, layers: L, width: H,
                    toSorted: false)
            }
            packing.unpack(
                recomputes ? outputSequence.pointer : layers[L - 1].hidden.pointer + B * R,
                into: paddedOutput.reserve(T * B * R), width: R)
        } else if recomputes {
            let n = segmentList.last!.count
            for k in 0..<L {
                (finalStates.pointer + k * B * R).update(from: layers[k].hidden.pointer + n * B * R, count: B * R)
                if isLSTM {
                    (finalStates.pointer + cells + k * B * H).update(
                        from: layers[k].cell.pointer + n * B * H, count: B * H)
                }
            }
        }
    }

    /// Forward of layer `k` over absolute steps [first, first + n); its `hidden` (and `cell`) slot 0 already holds the
    /// state at `first`, and for k > 0 its `input` holds the layer below's (dropped-out) output for these steps.
    private func layerForward(_ k: Int, _ steps: StepRows) {
        let L = configuration.numLayers, H = configuration.hiddenSize, GH = configuration.cell.gateCount * H,
            R = configuration.stateSize
        let first = steps.first, n = steps.count, B = steps.batch
        let cache = layers[k]
        let inSize = configuration.layerInputSize(k)
        // 1. Input projection, one product per time block: (rows, In) x W_ih^T + b_ih -> (rows, G*H).
        for block in timeBlocks(first: first, steps: n) {
            let local = steps.offset(block.start - first), rows = steps.offset(block.end - first) - local
            let projected = cache.gates.pointer + local * GH
            let tokenBase = absoluteRow(block.start, batch: B)
            if k == 0, let tokens = cachedTokens {
                // One-hot input: a row gather (exact). Few rows (generation) gather in place.
                let b = biasIH[0]
                if tokens.count < 64 {
                    let w = weightIH[0]
                    for row in 0..<rows {
                        let token = tokens[tokenBase + row], out = projected + row * GH
                        for j in 0..<GH { out[j] = w[j * inSize + token] + b[j] }
                    }
                } else {
                    let wT = oneHotWeightT.pointer
                    for row in 0..<rows {
                        let source = wT + tokens[tokenBase + row] * GH, out = projected + row * GH
                        for j in 0..<GH { out[j] = source[j] + b[j] }
                    }
                }
            } else if k == 0 && cachedProjected {
                projected.update(from: inputCopy.pointer + tokenBase * GH, count: rows * GH)
            } else {
                let x = k == 0 ? inputCopy.pointer + tokenBase * inSize : cache.input.pointer + local * inSize
                fillRows(projected, rows: rows, with: biasIH[k], width: GH)
                Scalar.gemm(
                    transA: false, transB: true, m: rows, n: GH, k: inSize,
                    alpha: 1, a: x, lda: inSize, b: weightIH[k], ldb: inSize,
                    beta: 1, c: projected, ldc: GH)
            }
        }
        // 2. The recurrence, one step at a time.
        switch configuration.cell {
        case .rnnTanh, .rnnReLU, .rnnLinear: rnnForward(layer: k, steps)
        case .lstm: lstmForward(layer: k, steps)
        case .gru: gruForward(layer: k, steps)
        }
        // 3. Dropout on this layer's output feeds the next layer.
        guard k < L - 1 else { cache.droppedOut = false; return }
        let next = layers[k + 1].input.pointer
        let out = cache.hidden.pointer + B * R
        let p = configuration.dropout
        cache.droppedOut = cachedTraining && p > 0
        guard cache.droppedOut else { next.update(from: out, count: steps.total * R); return }
        let mask = cache.dropoutMask.pointer
        let keepScale = Scalar(1 / (1 - p))
        for block in timeBlocks(first: first, steps: n) {
            var blockGenerator = SeededGenerator(
                seed: dropoutSeed ^ (UInt64(k) &* 0x9E37_79B9_7F4A_7C15)
                    ^ (UInt64(block.start) &* 0xD1B5_4A32_D192_ED03))
            if let shard = dropoutShard, !shard.isWholeBatch {
                // The block's whole (steps, global batch, R) mask in the stream's order; this shard's rows kept.
                let G = shard.globalBatch, lo = shard.rows.lowerBound, hi = shard.rows.upperBound
                var i = steps.offset(block.start - first) * R
                for _ in block.start..<block.end {
                    for row in 0..<G {
                        guard row >= lo && row < hi else { for _ in 0..<R { _ = blockGenerator.nextUnit() }; continue }
                        for _ in 0..<R {
                            mask[i] = blockGenerator.nextUnit() < p ? 0 : keepScale
                            next[i] = out[i] * mask[i]
                            i += 1
                        }
                    }
                }
                continue
            }
            for i in (steps.offset(block.start - first) * R)..<(steps.offset(block.end - first) * R) {
                mask[i] = blockGenerator.nextUnit() < p ? 0 : keepScale
                next[i] = out[i] * mask[i]
            }
        }
    }

    /// With a variable-length batch: copies the states of the rows whose last step is in `steps` (sorted rows
    /// [B_{t+1}, B_t) end at step t) into `sortedFinalStates`.
    private func keepFinishedRows(layer k: Int, _ steps: StepRows) {
        let L = configuration.numLayers, H = configuration.hiddenSize, B = steps.batch, R = configuration.stateSize
        for t in 0..<steps.count {
            let ending = steps.rows(t), continuing = packing!.batchSizes[steps.first + t + 1]
            guard ending > continuing else { continue }
            let rows = ending - continuing, row = steps.output(t) + continuing
            (sortedFinalStates.pointer + (k * B + continuing) * R).update(
                from: layers[k].hidden.pointer + row * R, count: rows * R)
            guard configuration.cell == .lstm else { continue }
            (sortedFinalStates.pointer + L * B * R + (k * B + continuing) * H).update(
                from: layers[k].cell.pointer + row * H, count: rows * H)
        }
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
        if let bidirectionalLayers {
            guard truncation == .none else {
                throw RecurrentKitError("truncation inside a chunk is not defined for a bidirectional stack; use .none")
            }
            try bidirectionalLayers.backward(
                steps: T, batch: B, outputGradient: outputGradient, finalHiddenGradient: finalHiddenGradient,
                finalCellGradient: finalCellGradient, inputGradient: cachedTokens == nil ? inputGradient : nil,
                initialHiddenGradient: initialHiddenGradient, initialCellGradient: initialCellGradient)
            return
        }
        let L = configuration.numLayers, H = configuration.hiddenSize, G = configuration.cell.gateCount,
            R = configuration.stateSize
        let GH = G * H, cells = L * B * R
        switch truncation {
        case .none: truncationGenerators = []
        case .fixed(let length):
            guard length >= 1 else {
                throw RecurrentKitError.invalidArgument("truncation length", length, "must be at least 1")
            }
        case .randomized(let p, let seed):
            guard p > 0, p <= 1 else {
                throw RecurrentKitError.invalidArgument("continue probability", p, "must be in (0, 1]")
            }
            // One stream per layer, each drawn backwards in time, so segment order does not change the draws.
            truncationGenerators = (0..<L).map { SeededGenerator(seed: seed ^ (UInt64($0) &* 0x9E37_79B9_7F4A_7C15)) }
        }
        self.truncation = truncation
        if usesPackedWeights && !packedBackwardReady {
            for k in 0..<L { packedBackward[k].pack(transB: false, k: GH, n: R, b: weightHH[k], ldb: R) }
            packedBackwardReady = true
        }
        if recordsHiddenGradients {
            guard packing == nil else {
                throw RecurrentKitError("hidden-gradient recording is not available for a variable-length batch")
            }
            recordedBatch = B
            hiddenGradients = Array(repeating: Array(repeating: 0, count: T * B * R), count: L)
        }
        let isGRU = configuration.cell == .gru, isLSTM = configuration.cell == .lstm
        let segmentList = segments(steps: T)
        let segmentSteps = segmentList[0].count
        let dProjected = gradProjected.reserve(segmentSteps * B * GH)
        let dRecurrent = isGRU ? gradRecurrent.reserve(segmentSteps * B * GH) : dProjected
        let dLayerOutput = gradOutput.reserve(segmentSteps * B * H)
        gradHidden.reserve(B * H); gradHiddenNext.reserve(B * H); gradCell.reserve(B * H)
        if R != H { projectionScratch.reserve(2 * B * H); zeroRows.reserve(B * H).update(repeating: 0, count: B * H) }
        // dL/dh (L, B, R) then dL/dc (L, B, H) per layer at the end of the segment being processed.
        let carried = carriedGradients.reserve(2 * L * B * H)
        if let g = finalHiddenGradient {
            carried.update(from: g, count: L * B * R)
        } else {
            carried.update(repeating: 0, count: L * B * R)
        }
        if isLSTM, let g = finalCellGradient {
            (carried + cells).update(from: g, count: L * B * H)
        } else {
            (carried + cells).update(repeating: 0, count: L * B * H)
        }
        // A variable-length batch works on sorted rows: the output gradient's valid positions packed, the final-state
        // gradients permuted (each waits in the carried gradient until backward reaches its row's last step).
        var outputSource = outputGradient
        if let packing {
            let sorted = stagedStates.reserve(2 * L * B * H)  // free after the forward
            sorted.update(from: carried, count: cells + L * B * H)
            packing.permuteRows(sorted, into: carried, layers: L, width: R, toSorted: true)
            packing.permuteRows(sorted + cells, into: carried + cells, layers: L, width: H, toSorted: true)
            let packedOutput = packedGradient.reserve(packing.validRows * R)
            packing.pack(outputGradient, into: packedOutput, width: R)
            outputSource = UnsafePointer(packedOutput)
            if inputGradient != nil && cachedTokens == nil {
                packedInputGradient.reserve(packing.validRows * configuration.inputSize)
            }
        }

        if cachedTokens != nil {
            let I = configuration.inputSize
            oneHotScratch.reserve(I * GH).update(repeating: 0, count: I * GH)
        }
        for index in segmentList.indices.reversed() {
            let segment = segmentList[index]
            let first = segment.start, n = segment.count
            if index != heldSegment {
                recomputeSegment(index, first: first, steps: n, batch: B)
                heldSegment = index
            }
            let steps = StepRows(first: first, count: n, batch: B, packing: packing)
            dLayerOutput.update(from: outputSource + absoluteRow(first, batch: B) * R, count: steps.total * R)
            for k in stride(from: L - 1, through: 0, by: -1) {
                gradHidden.pointer.update(from: carried + k * B * R, count: B * R)
                if isLSTM { gradCell.pointer.update(from: carried + cells + k * B * H, count: B * H) }
                switch configuration.cell {
                case .rnnTanh, .rnnReLU, .rnnLinear:
                    rnnBackward(layer: k, steps, dOutput: dLayerOutput, dPre: dProjected)
                case .lstm: lstmBackward(layer: k, steps, dOutput: dLayerOutput, dPre: dProjected)
                case .gru:
                    gruBackward(layer: k, steps, dOutput: dLayerOutput, dProjected: dProjected, dRecurrent: dRecurrent)
                }
                (carried + k * B * R).update(from: gradHidden.pointer, count: B * R)
                if isLSTM { (carried + cells + k * B * H).update(from: gradCell.pointer, count: B * H) }
                accumulateWeightGradients(k, steps, dProjected: dProjected, dRecurrent: dRecurrent)
                // dL/dinput (rows, In) = dProjected x W_ih, per time block; for k > 0 the layer below's output gradient.
                if k == 0 && (cachedTokens != nil || inputGradient == nil) { continue }
                let inSize = configuration.layerInputSize(k)
                let firstLayerTarget = packing != nil ? packedInputGradient.pointer : inputGradient
                for block in timeBlocks(first: first, steps: n) {
                    let local = steps.offset(block.start - first), rows = steps.offset(block.end - first) - local
                    let target =
                        k == 0
                        ? firstLayerTarget! + absoluteRow(block.start, batch: B) * inSize
                        : dLayerOutput + local * inSize
                    Scalar.gemm(
                        transA: false, transB: false, m: rows, n: inSize, k: GH,
                        alpha: 1, a: dProjected + local * GH, lda: GH, b: weightIH[k], ldb: inSize,
                        beta: 0, c: target, ldc: inSize)
                }
                if k > 0 && layers[k - 1].droppedOut {
                    let mask = layers[k - 1].dropoutMask.pointer
                    for i in 0..<(steps.total * R) { dLayerOutput[i] *= mask[i] }
                }
            }
        }
        if let packing {
            if let g = initialHiddenGradient {
                packing.permuteRows(carried, into: g, layers: L, width: R, toSorted: false)
            }
            if isLSTM, let g = initialCellGradient {
                packing.permuteRows(carried + cells, into: g, layers: L, width: H, toSorted: false)
            }
            if cachedTokens == nil, let dx = inputGradient {
                packing.unpack(packedInputGradient.pointer, into: dx, width: configuration.inputSize)
            }
        } else {
            if let g = initialHiddenGradient { g.update(from: carried, count: L * B * R) }
            if isLSTM, let g = initialCellGradient { g.update(from: carried + cells, count: L * B * H) }
        }
        if cachedTokens != nil {
            let I = configuration.inputSize, dw = gradWeightIH[0], dwT = oneHotScratch.pointer
            for j in 0..<GH { for v in 0..<I { dw[j * I + v] += dwT[v * GH + j] } }
        }
    }

    /// Recomputes every layer's activations of segment `index` from its state checkpoint (same calls as the forward,
    /// so the same bits).
    private func recomputeSegment(_ index: Int, first: Int, steps n: Int, batch B: Int) {
        let steps = StepRows(first: first, count: n, batch: B, packing: packing)
        let L = configuration.numLayers, H = configuration.hiddenSize, R = configuration.stateSize
        let slot = stateCheckpoints.pointer + index * 2 * L * B * H
        for k in 0..<L {
            layers[k].hidden.pointer.update(from: slot + k * B * R, count: B * R)
            if configuration.cell == .lstm {
                layers[k].cell.pointer.update(from: slot + L * B * R + k * B * H, count: B * H)
            }
            layerForward(k, steps)
        }
    }

    /// Adds layer k's weight and bias gradients for steps [first, first + n), one product per time block, latest
    /// block first (the order is the same whether the sequence is one segment or many).
    private func accumulateWeightGradients(
        _ k: Int, _ steps: StepRows,
        dProjected: UnsafeMutablePointer<Scalar>, dRecurrent: UnsafeMutablePointer<Scalar>
    ) {
        let H = configuration.hiddenSize, GH = configuration.cell.gateCount * H, R = configuration.stateSize
        let first = steps.first, B = steps.batch
        let cache = layers[k]
        let inSize = configuration.layerInputSize(k)
        let sums = columnSumScratch.reserve(GH)
        for block in timeBlocks(first: first, steps: steps.count).reversed() {
            let local = steps.offset(block.start - first), rows = steps.offset(block.end - first) - local
            let dP = dProjected + local * GH, dR = dRecurrent + local * GH
            // dW_hh += dRec^T (G*H, rows) x [h_{t-1}] (rows, H). With equal lengths the h_{t-1} rows are contiguous in
            // the state cache; a variable-length batch gathers step t's first B_t rows of h_{t-1}.
            var hPrev = UnsafePointer(cache.hidden.pointer + local * R)
            if packing != nil {
                let gathered = gatheredHidden.reserve(rows * R)
                for t in (block.start - first)..<(block.end - first) {
                    (gathered + (steps.offset(t) - local) * R).update(
                        from: cache.hidden.pointer + steps.previous(t) * R, count: steps.rows(t) * R)
                }
                hPrev = UnsafePointer(gathered)
            }
            Scalar.gemm(
                transA: true, transB: false, m: GH, n: R, k: rows,
                alpha: 1, a: dR, lda: GH, b: hPrev, ldb: R,
                beta: 1, c: gradWeightHH[k], ldc: R)
            if dR == dP {
                // RNN and LSTM: both biases receive the same column sums; compute them once.
                sums.update(repeating: 0, count: GH)
                addColumnSums(of: dP, rows: rows, width: GH, into: sums)
                for j in 0..<GH { gradBiasHH[k][j] += sums[j]; gradBiasIH[k][j] += sums[j] }
            } else {
                addColumnSums(of: dR, rows: rows, width: GH, into: gradBiasHH[k])
                addColumnSums(of: dP, rows: rows, width: GH, into: gradBiasIH[k])
            }
            if k == 0, let tokens = cachedTokens {
                // One-hot input: dW_ih[:, token] += dProjected row (a scatter, the transpose of the forward gather),
                // accumulated in a contiguous (I, G*H) buffer (zeroed by backward, added transposed at its end).
                let dwT = oneHotScratch.pointer
                for row in 0..<rows {
                    let target = dwT + tokens[absoluteRow(block.start, batch: B) + row] * GH, d = dP + row * GH
                    for j in 0..<GH { target[j] += d[j] }
                }
            } else {
                let x =
                    k == 0
                    ? inputCopy.pointer + absoluteRow(block.start, batch: B) * inSize
                    : cache.input.pointer + local * inSize
                Scalar.gemm(
                    transA: true, transB: false, m: GH, n: inSize, k: rows,
                    alpha: 1, a: dP, lda: GH, b: x, ldb: inSize,
                    beta: 1, c: gradWeightIH[k], ldc: inSize)
            }
        }
    }

    // MARK: - Recurrent products

    /// out (B, G*H) = h (B, R) W_hh^T + beta * out, from the packed weight when this forward packed it.
    @inline(__always)
    func recurrentProduct(
        layer k: Int, _ h: UnsafePointer<Scalar>, batch B: Int, beta: Scalar, into out: UnsafeMutablePointer<Scalar>
    ) {
        let R = configuration.stateSize, GH = configuration.cell.gateCount * configuration.hiddenSize
        if usesPackedWeights {
            packedForward[k].multiply(h, m: B, lda: R, beta: beta, into: out, ldc: GH)
        } else {
            Scalar.gemm(
                transA: false, transB: true, m: B, n: GH, k: R, alpha: 1, a: h, lda: R, b: weightHH[k], ldb: R,
                beta: beta, c: out, ldc: GH)
        }
    }

    /// dh (B, R) = dGates (B, G*H) W_hh + beta * dh: the hidden slice of the gradient, to step t-1.
    @inline(__always)
    func recurrentGradientProduct(
        layer k: Int, _ dGates: UnsafePointer<Scalar>, batch B: Int, beta: Scalar, into dh: UnsafeMutablePointer<Scalar>
    ) {
        let R = configuration.stateSize, GH = configuration.cell.gateCount * configuration.hiddenSize
        if usesPackedWeights {
            packedBackward[k].multiply(dGates, m: B, lda: GH, beta: beta, into: dh, ldc: R)
        } else {
            Scalar.gemm(
                transA: false, transB: false, m: B, n: R, k: GH, alpha: 1, a: dGates, lda: GH, b: weightHH[k], ldb: R,
                beta: beta, c: dh, ldc: R)
        }
    }

    // MARK: - Truncation and recording

    /// Applies the truncation rule to the recurrent gradient that step t sends to step t-1 (dh, and dc for the LSTM).
    @inline(__always)
    func truncateRecurrentGradient(
        layer k: Int, step t: Int, rows: Int, _ dh: UnsafeMutablePointer<Scalar>, _ dc: UnsafeMutablePointer<Scalar>?
    ) {
        let hCount = rows * configuration.stateSize, cCount = rows * configuration.hiddenSize
        switch truncation {
        case .none: return
        case .fixed(let length):
            guard t > 0, t % length == 0 else { return }  // t = 0 feeds h0, whose gradient the first chunk keeps
            dh.update(repeating: 0, count: hCount)
            dc?.update(repeating: 0, count: cCount)
        case .randomized(let p, _):
            let keep = truncationGenerators[k].nextUnit() < p
            let weight: Scalar = keep ? Scalar(1 / p) : 0
            if keep && p == 1 { return }
            for i in 0..<hCount { dh[i] *= weight }
            if let dc { for i in 0..<cCount { dc[i] *= weight } }
        }
    }

    /// Records dL/dh_t = dOut_t + dh_recurrent of `rows` rows for layer k at step t when enabled.
    @inline(__always)
    func recordGradientNorm(
        layer k: Int, step t: Int, rows: Int, _ dh: UnsafePointer<Scalar>, _ dOut: UnsafePointer<Scalar>
    ) {
        guard recordsHiddenGradients else { return }
        let count = rows * configuration.stateSize
        for i in 0..<count { hiddenGradients[k][t * count + i] = dh[i] + dOut[i] }
    }

}

// MARK: - Small helpers shared by the layers

/// Consecutive step ranges covering [first, end) whose boundaries fall on multiples of `boundary` (a collection, so
/// iterating it, forwards or reversed, allocates nothing).
struct TimeSpans: RandomAccessCollection {
    /// One range of absolute steps [start, start + count).
    struct Span { let start: Int, count: Int; var end: Int { start + count } }
    let first: Int, end: Int, boundary: Int
    var startIndex: Int { 0 }
    var endIndex: Int { end > first ? (end - 1) / boundary - first / boundary + 1 : 0 }
    subscript(i: Int) -> Span {
        let start = i == 0 ? first : (first / boundary + i) * boundary
        return Span(start: start, count: Swift.min((first / boundary + i + 1) * boundary, end) - start)
    }
}

/// Copies `row` (width) into each of `rows` rows of `destination`.
@inline(__always)
func fillRows<Scalar: RecurrentScalar>(
    _ destination: UnsafeMutablePointer<Scalar>, rows: Int, with row: UnsafePointer<Scalar>, width: Int
) {
    for r in 0..<rows { (destination + r * width).update(from: row, count: width) }
}

/// `sums[j] += sum_r matrix[r, j]` for a (rows, width) matrix.
@inline(__always)
func addColumnSums<Scalar: RecurrentScalar>(
    of matrix: UnsafePointer<Scalar>, rows: Int, width: Int, into sums: UnsafeMutablePointer<Scalar>
) {
    for r in 0..<rows {
        let row = matrix + r * width
        for j in 0..<width { sums[j] += row[j] }
    }
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
