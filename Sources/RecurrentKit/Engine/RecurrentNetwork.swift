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
    /// What runs the layers (LayerStack.swift): this network's own loop in one direction, or with `bidirectional` two
    /// one-layer networks per layer and what they keep. Set once, at the end of `init`.
    var stack: LayerStack<Scalar>!

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
    /// (T, B) token indices of the cached forward when the input was one-hot (packed, (N), for a variable-length
    /// batch).
    var cachedTokens: [Int]? = nil
    /// Whether the cached forward read layer 0's input projections precomputed (`inputProjections`, inference only).
    var cachedProjected = false
    /// The sorted order and step sizes of the cached forward's variable-length batch; nil when every row ran T steps.
    var packing: SequencePacking? = nil
    let packingStorage = SequencePacking()

    // W_hh packed once per forward (the weights do not change between a forward and its backward):
    // op(B) = W_hh^T (H, G*H) for h W_hh^T, and W_hh (G*H, H) for dGates W_hh.
    var packedForward: [PackedWeight<Scalar>] = []
    var packedBackward: [PackedWeight<Scalar>] = []
    var packedBackwardReady = false
    /// Whether the cached forward packed W_hh (sequences of at least `packingMinimumSteps` steps).
    var usesPackedWeights = false
    /// Shorter sequences (generation, one token at a time) read W_hh in place: packing would cost more than it saves.
    static var packingMinimumSteps: Int { 4 }

    // Backward truncation of the current backward pass; randomized truncation draws from one stream per layer.
    var truncation: BackwardTruncation = .none
    var truncationGenerators: [SeededGenerator] = []

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
    public static var timeBlockSteps: Int { 16 }
    /// Whether the cached forward kept states at segment starts only.
    var recomputes = false
    /// Segment length of the cached forward (T when not recomputing): later changes to `recomputeInterval` do not
    /// affect a backward through a forward that already ran.
    var cachedSegmentSteps = 0
    /// Which segment's activations the layer caches hold now (the last after forward; backward recomputes others).
    var heldSegment = 0
    /// Whether the cached forward was in training mode (dropout), for recomputation.
    var cachedTraining = false
    /// Seed of the cached forward's dropout masks.
    var dropoutSeed: UInt64 = 0

    /// Attached by an analysis (d2l 8.7's gradient flow) to record dL/dh_t at every step of each backward; nil (the
    /// default, and always in training): nothing is recorded.
    public var hiddenGradientRecorder: HiddenGradientRecorder<Scalar>? = nil

    // Backward scratch, reused.
    let gradProjected = Workspace<Scalar>()  // (T, B, G*H) dL/d(W_ih x + b_ih)
    // (T, B, G*H) dL/d(W_hh h + b_hh); GRU only (others alias gradProjected)
    let gradRecurrent = Workspace<Scalar>()
    // (T, B, max(In, R)) gradient w.r.t. the current layer's output / input
    let gradOutput = Workspace<Scalar>()
    let gradHidden = Workspace<Scalar>()  // (B, R) dL/dh_t carried backwards
    let gradHiddenNext = Workspace<Scalar>()  // (B, R)
    let gradCell = Workspace<Scalar>()  // (B, H) dL/dc_t carried backwards
    let rowTasks = StepRowTasks<Scalar>()
    let stepScratch = Workspace<Scalar>()  // (B, G*H) GRU W_hh h + b_hh in forward
    let projectionScratch = Workspace<Scalar>()  // (2, B, H) LSTM projection: dL/dh_t, then dL/d(o * tanh c_t)
    // (B, H) zeros: the output term of an LSTM step whose output gradient went through W_hr
    let zeroRows = Workspace<Scalar>()
    let stagedStates = Workspace<Scalar>()  // (L, B, R) h0 then (L, B, H) c0 copies (they may alias the caches)
    let oneHotScratch = Workspace<Scalar>()  // (I, G*H) transposed one-hot W_ih gradient of one time block
    let columnSumScratch = Workspace<Scalar>()  // (G*H) bias gradient sums
    /// With `bias: false`: zeros the stack reads as biases, then scratch for the bias gradients, (4, L, G*H).
    let absentBias = Workspace<Scalar>()
    // (L, B, R) dL/dh then (L, B, H) dL/dc per layer at the current segment end
    let carriedGradients = Workspace<Scalar>()
    let oneHotWeightT = Workspace<Scalar>()  // (I, G*H) W_ih^T for the one-hot gather

    // Forward data kept whole.
    let inputCopy = Workspace<Scalar>()  // (T, B, I) dense input of layer 0
    let outputSequence = Workspace<Scalar>()  // (T, B, R) last layer's h_1 ... h_T when recomputing
    // (segments, L, B, R + H) h then c of every layer at each segment start
    let stateCheckpoints = Workspace<Scalar>()
    let finalStates = Workspace<Scalar>()  // (L, B, R) h_T then (L, B, H) c_T when recomputing or packed
    // Variable-length batches (see SequencePacking.swift).
    let sortedFinalStates = Workspace<Scalar>()  // (L, B, R + H) each sorted row's state at its own last step
    // (T, B, R) last layer's output in the caller's order, zeros when padded
    let paddedOutput = Workspace<Scalar>()
    let packedGradient = Workspace<Scalar>()  // (N, R) output gradient in packed order
    let packedInputGradient = Workspace<Scalar>()  // (N, I) input gradient in packed order
    let gatheredHidden = Workspace<Scalar>()  // (rows of a time block, R) h_{t-1} rows matching dW_hh's rows

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
        stack = configuration.bidirectional ? try BidirectionalLayers(self) : OneDirectionStack(self)
    }

    // MARK: - Pointer API (no allocation after the first call at a given size)

    /// Every h_t of the last layer after `forward`, (T, B, D*H), valid until the next forward.
    var output: UnsafeMutablePointer<Scalar> { stack.output }

    /// Final hidden state of state row `k` (layer k, or layer k/2 and direction k%2 when bidirectional), (B, H).
    func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> { stack.finalHidden(layer: k) }

    /// Final cell state of state row `k`, (B, H), after `forward` (LSTM only).
    func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> { stack.finalCell(layer: k) }

    /// ``output`` of this network's own loop.
    var oneDirectionOutput: UnsafeMutablePointer<Scalar> {
        if packing != nil { return paddedOutput.pointer }
        return recomputes
            ? outputSequence.pointer
            : layers[configuration.numLayers - 1].hidden.pointer + cachedBatch * configuration.stateSize
    }

    /// ``finalHidden(layer:)`` of this network's own loop.
    func oneDirectionFinalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> {
        let BH = cachedBatch * configuration.stateSize
        return recomputes || packing != nil ? finalStates.pointer + k * BH : layers[k].hidden.pointer + cachedSteps * BH
    }

    /// ``finalCell(layer:)`` of this network's own loop.
    func oneDirectionFinalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> {
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
            + stack.extraActivationBytes
    }

    /// Absolute step ranges of the time blocks covering [first, first + n): boundaries at multiples of
    /// ``timeBlockSteps``, so every caller of the block products (plain or recomputing) issues the same calls.
    @inline(__always)
    func timeBlocks(first: Int, steps n: Int) -> TimeSpans {
        TimeSpans(first: first, end: first + n, boundary: Self.timeBlockSteps)
    }

    /// Segments the sequence is processed in: one when all activations are kept, else ``recomputeInterval`` steps each.
    func segments(steps T: Int) -> TimeSpans {
        TimeSpans(first: 0, end: T, boundary: max(cachedSegmentSteps, 1))
    }

    /// Where absolute step t's rows start in the (rows, width) buffers kept whole (layer-0 input, one-hot tokens, the
    /// recomputing forward's output): t * B, or the packed offset.
    @inline(__always)
    func absoluteRow(_ t: Int, batch B: Int) -> Int { packing?.rowStart[t] ?? t * B }

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
