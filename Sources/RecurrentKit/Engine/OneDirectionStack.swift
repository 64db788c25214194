// The buffer-level engine of one direction: the layer loop over caller buffers (OneDirectionStack+Forward.swift,
// +Backward.swift, and the cells' loops in Cells/), the caches and scratch it reuses, W_hh packed once per forward, and
// the recompute segments. It knows nothing of tensors, records or names: the public layer (`RecurrentNetwork`) checks
// every argument, keeps the record state and hands this engine pointers.

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

/// One direction of a recurrent stack (L layers over T steps, batch B, hidden H, state width R, G gates, input I): a
/// network's whole layer loop, or one direction of one layer of a bidirectional composition (BidirectionalStack.swift).
final class OneDirectionStack<Scalar: RecurrentScalar>: LayerStack<Scalar> {
    /// The sizes this loop runs (one layer and one direction for a direction of a bidirectional stack).
    let configuration: RecurrentConfiguration
    /// The parameter and gradient pointers, shared with the network that names them (it rebinds them).
    let weights: RecurrentWeights<Scalar>
    var weightIH: [UnsafeMutablePointer<Scalar>] { weights.weightIH }
    var weightHH: [UnsafeMutablePointer<Scalar>] { weights.weightHH }
    var weightHR: [UnsafeMutablePointer<Scalar>] { weights.weightHR }
    var biasIH: [UnsafeMutablePointer<Scalar>] { weights.biasIH }
    var biasHH: [UnsafeMutablePointer<Scalar>] { weights.biasHH }
    var gradWeightIH: [UnsafeMutablePointer<Scalar>] { weights.gradWeightIH }
    var gradWeightHH: [UnsafeMutablePointer<Scalar>] { weights.gradWeightHH }
    var gradWeightHR: [UnsafeMutablePointer<Scalar>] { weights.gradWeightHR }
    var gradBiasIH: [UnsafeMutablePointer<Scalar>] { weights.gradBiasIH }
    var gradBiasHH: [UnsafeMutablePointer<Scalar>] { weights.gradBiasHH }

    // Forward cache.
    let layers: [LayerCache<Scalar>]
    /// Steps and batch of the cached forward; 0 when there is none.
    var cachedSteps = 0
    var cachedBatch = 0
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
    let packedForward: [PackedWeight<Scalar>]
    let packedBackward: [PackedWeight<Scalar>]
    var packedBackwardReady = false
    /// Whether the cached forward packed W_hh (sequences of at least `packingMinimumSteps` steps).
    var usesPackedWeights = false
    /// Whether the latest forward started from a zero state (no h0): step 0's W_hh h0 is then skipped.
    var zeroInitialHidden = false
    /// Whether the backward running now returns dL/dh0: if not, step 0's dGates W_hh (which only feeds it) is skipped.
    var wantsInitialHiddenGradient = true
    /// Shorter sequences (generation, one token at a time) read W_hh in place: packing would cost more than it saves.
    static var packingMinimumSteps: Int { 4 }

    // Backward truncation of the current backward pass; randomized truncation draws from one stream per layer.
    var truncation: BackwardTruncation = .none
    var truncationGenerators: [SeededGenerator] = []
    /// The current backward's recorder of dL/dh_t (d2l 8.7's analysis; nil in training), set for one backward.
    var hiddenGradientRecorder: HiddenGradientRecorder<Scalar>? = nil

    /// Products over time (input projections, weight gradients) run in blocks of this many steps at fixed positions,
    /// so a recomputing backward issues exactly the same calls as the default one.
    static var timeBlockSteps: Int { 16 }
    /// Whether the cached forward kept states at segment starts only (`recomputeInterval` below T).
    var recomputes = false
    /// Segment length of the cached forward (T when not recomputing): later changes to the interval do not affect a
    /// backward through a forward that already ran.
    var cachedSegmentSteps = 0
    /// Which segment's activations the layer caches hold now (the last after forward; backward recomputes others).
    var heldSegment = 0
    /// Whether the cached forward was in training mode (dropout), for recomputation.
    var cachedTraining = false
    /// Seed of the cached forward's dropout masks.
    var dropoutSeed: UInt64 = 0
    /// The cached forward's data-parallel shard of the global batch (its dropout masks), or nil for the whole batch.
    var dropoutShard: BatchShard? = nil

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

    /// The loop of `configuration` over the parameters `weights` points at.
    init(_ configuration: RecurrentConfiguration, weights: RecurrentWeights<Scalar>) {
        self.configuration = configuration
        self.weights = weights
        let L = configuration.numLayers
        layers = (0..<L).map { _ in LayerCache() }
        packedForward = (0..<L).map { _ in PackedWeight() }
        packedBackward = (0..<L).map { _ in PackedWeight() }
    }

    override var engines: [OneDirectionStack<Scalar>] { [self] }

    override func forward(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?, h0: UnsafePointer<Scalar>?,
        c0: UnsafePointer<Scalar>?, lengths: [Int]?, inputProjections: UnsafePointer<Scalar>?, training: Bool,
        recomputeInterval: Int?, dropoutShard: BatchShard?, generator: inout SeededGenerator
    ) throws {
        let packed = try lengths.map { try packingStorage.configure($0, steps: T, batch: B) } ?? false
        forwardLayers(
            steps: T, batch: B, input: input, tokens: tokens, h0: h0, c0: c0, packed: packed,
            inputProjections: inputProjections, training: training, recomputeInterval: recomputeInterval,
            dropoutShard: dropoutShard, generator: &generator)
    }

    override func backward(
        steps T: Int, batch B: Int, outputGradient: UnsafePointer<Scalar>, finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?, inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?, initialCellGradient: UnsafeMutablePointer<Scalar>?,
        truncation: BackwardTruncation, recorder: HiddenGradientRecorder<Scalar>?
    ) throws {
        try backwardLayers(
            steps: T, batch: B, outputGradient: outputGradient, finalHiddenGradient: finalHiddenGradient,
            finalCellGradient: finalCellGradient, inputGradient: inputGradient,
            initialHiddenGradient: initialHiddenGradient, initialCellGradient: initialCellGradient,
            truncation: truncation, recorder: recorder)
    }

    override var output: UnsafeMutablePointer<Scalar> {
        if packing != nil { return paddedOutput.pointer }
        return recomputes
            ? outputSequence.pointer
            : layers[configuration.numLayers - 1].hidden.pointer + cachedBatch * configuration.stateSize
    }

    override func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> {
        let BH = cachedBatch * configuration.stateSize
        return recomputes || packing != nil ? finalStates.pointer + k * BH : layers[k].hidden.pointer + cachedSteps * BH
    }

    override func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> {
        let BH = cachedBatch * configuration.hiddenSize,
            cells = configuration.numLayers * cachedBatch * configuration.stateSize
        return recomputes || packing != nil
            ? finalStates.pointer + cells + k * BH : layers[k].cell.pointer + cachedSteps * BH
    }

    override var activationMemoryBytes: Int {
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
    }

    /// Absolute step ranges of the time blocks covering [first, first + n): boundaries at multiples of
    /// ``timeBlockSteps``, so every caller of the block products (plain or recomputing) issues the same calls.
    @inline(__always)
    func timeBlocks(first: Int, steps n: Int) -> TimeSpans {
        TimeSpans(first: first, end: first + n, boundary: Self.timeBlockSteps)
    }

    /// Segments the sequence is processed in: one when all activations are kept, else `cachedSegmentSteps` each.
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

/// `destination[r, j] += row[j]` for `rows` rows of `width` (Float: `rk_add_row_f32`, vectorised and split over the
/// pool when large; the same sums).
@inline(__always)
func addToRows<Scalar: RecurrentScalar>(
    _ destination: UnsafeMutablePointer<Scalar>, rows: Int, row: UnsafePointer<Scalar>, width: Int
) {
    if Scalar.self == Float.self {
        rk_add_row_f32(floats(destination), floats(row), rows, width)
        return
    }
    for r in 0..<rows {
        let d = destination + r * width
        for j in 0..<width { d[j] += row[j] }
    }
}

/// `c1 += a^T b1` (width, n1) and `c2 += a^T b2` (width, n2) for `a` (rows, width) and `b1`, `b2` (rows, n1 / n2): the
/// two products `Scalar.gemm` gives, bit for bit; Float packs each block of `a` once for both (`rk_sgemm_tn_pair`).
@inline(__always)
func accumulateProductPair<Scalar: RecurrentScalar>(
    _ a: UnsafePointer<Scalar>, rows: Int, width: Int, _ b1: UnsafePointer<Scalar>, _ n1: Int,
    into c1: UnsafeMutablePointer<Scalar>, _ b2: UnsafePointer<Scalar>, _ n2: Int, into c2: UnsafeMutablePointer<Scalar>
) {
    if Scalar.self == Float.self {
        rk_sgemm_tn_pair(
            width, rows, floats(a), width, n1, floats(b1), n1, floats(c1), n1, n2, floats(b2), n2, floats(c2), n2)
        return
    }
    Scalar.gemm(
        transA: true, transB: false, m: width, n: n1, k: rows, alpha: 1, a: a, lda: width, b: b1, ldb: n1, beta: 1,
        c: c1, ldc: n1)
    Scalar.gemm(
        transA: true, transB: false, m: width, n: n2, k: rows, alpha: 1, a: a, lda: width, b: b2, ldb: n2, beta: 1,
        c: c2, ldc: n2)
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
