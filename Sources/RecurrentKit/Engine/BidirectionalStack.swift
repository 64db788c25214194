// Bidirectional stacks (PyTorch `bidirectional=True`): every layer runs a forward direction over the sequence and a
// reverse direction over the time-reversed sequence, each a one-layer OneDirectionStack with its own parameters
// (`*_l{k}` and `*_l{k}_reverse`); the layer's output joins the two halves, (T, B, 2H) (2P with an LSTM projection:
// H below is the state width), and feeds the next layer
// through dropout. The directions run the cells' own loops (Cells/), so no equation is written here.

/// A bidirectional stack: two one-layer, one-direction stacks per layer, and what it keeps between its forward and its
/// backward.
final class BidirectionalStack<Scalar: RecurrentScalar>: LayerStack<Scalar> {
    /// Layer k's forward direction at 2k, its reverse direction at 2k + 1, reading the store's `*_l{k}` and
    /// `*_l{k}_reverse` parameters.
    private let directions: [OneDirectionStack<Scalar>]
    override var engines: [OneDirectionStack<Scalar>] { directions }
    /// (T, B, 2H) per layer: the joined output, after dropout below the last layer.
    let outputs: [Workspace<Scalar>]
    /// (T, B, 2H) per layer below the last: dropout keep masks scaled by 1/(1-p), valid when `droppedOut[k]`.
    let masks: [Workspace<Scalar>]
    private var droppedOut: [Bool]
    /// The cached forward's row lengths (variable-length batch), or nil when every row ran all T steps.
    private var lengths: [Int]? = nil
    private let configuration: RecurrentConfiguration
    private let reversedInput = Workspace<Scalar>()  // (T, B, In) time-reversed layer input
    private var reversedTokens: [Int] = []  // (T, B) time-reversed one-hot input of layer 0
    private let gradJoined = Workspace<Scalar>()  // (T, B, 2H) dL/d(joined output) of the layer being processed
    private let gradBelow = Workspace<Scalar>()  // (T, B, 2H) dL/d(output of the layer below)
    private let gradForward = Workspace<Scalar>()  // (T, B, H) forward half of gradJoined
    private let gradReverse = Workspace<Scalar>()  // (T, B, H) reverse half, time-reversed
    private let gradInputForward = Workspace<Scalar>()  // (T, B, In) dL/dx through the forward direction
    private let gradInputReverse = Workspace<Scalar>()  // (T, B, In) dL/dx through the reverse direction, time-reversed

    /// The stack of `c` (bidirectional) over `parameters` under `prefix` (names checked by the network).
    init(_ c: RecurrentConfiguration, parameters: ParameterStore<Scalar>, prefix: String) {
        configuration = c
        var made: [OneDirectionStack<Scalar>] = []
        for k in 0..<c.numLayers {
            let one = RecurrentConfiguration(
                cell: c.cell, inputSize: c.layerInputSize(k), hiddenSize: c.hiddenSize, numLayers: 1,
                dropout: 0, bias: c.bias, projectionSize: c.projectionSize)
            for reverse in [false, true] {
                let naming = ParameterNaming.direction(layer: k, reverse: reverse)
                made.append(
                    OneDirectionStack(
                        one, weights: RecurrentWeights(one, naming: naming, store: parameters, prefix: prefix)))
            }
        }
        directions = made
        outputs = (0..<c.numLayers).map { _ in Workspace() }
        masks = (0..<c.numLayers).map { _ in Workspace() }
        droppedOut = Array(repeating: false, count: c.numLayers)
    }

    /// Bytes of the directions' caches and of the joined outputs, masks and gradient scratch.
    override var activationMemoryBytes: Int {
        directions.reduce(0) { $0 + $1.activationMemoryBytes }
            + (outputs + masks + [
                reversedInput, gradJoined, gradBelow, gradForward, gradReverse, gradInputForward, gradInputReverse,
            ])
            .reduce(0) { $0 + $1.capacity } * MemoryLayout<Scalar>.stride
    }

    /// The step that step t of row b maps to in the reverse direction's time: T-1-t, or with a variable-length batch
    /// lengths[b]-1-t inside the row's length (the reverse direction starts at the row's own last step) and t on
    /// padded positions.
    @inline(__always)
    private func reversedStep(_ t: Int, row b: Int, steps T: Int) -> Int {
        guard let lengths else { return T - 1 - t }
        return t < lengths[b] ? lengths[b] - 1 - t : t
    }

    /// Copies `source` (T, B, width) into `destination` with each row's time axis reversed (see `reversedStep`).
    private func reverseTime(
        _ source: UnsafePointer<Scalar>, into destination: UnsafeMutablePointer<Scalar>, steps T: Int, batch B: Int,
        width: Int
    ) {
        for t in 0..<T {
            for b in 0..<B {
                (destination + (reversedStep(t, row: b, steps: T) * B + b) * width).update(
                    from: source + (t * B + b) * width, count: width)
            }
        }
    }

    override func forward(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?, h0: UnsafePointer<Scalar>?,
        c0: UnsafePointer<Scalar>?, lengths: [Int]?, inputProjections: UnsafePointer<Scalar>?, training: Bool,
        recomputeInterval: Int?, dropoutShard: BatchShard?, generator: inout SeededGenerator
    ) throws {
        // Rows that all run T steps need no packing, and then the reverse direction starts at T-1 for every row.
        let packed = lengths.map { SequencePacking.needsPacking($0, steps: T) } ?? false
        try forwardLayers(
            steps: T, batch: B, input: input, tokens: tokens, h0: h0, c0: c0, lengths: packed ? lengths : nil,
            training: training, recomputeInterval: recomputeInterval, generator: &generator)
    }

    override func backward(
        steps T: Int, batch B: Int, outputGradient: UnsafePointer<Scalar>, finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?, inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?, initialCellGradient: UnsafeMutablePointer<Scalar>?,
        truncation: BackwardTruncation, recorder: HiddenGradientRecorder<Scalar>?
    ) throws {
        guard truncation == .none else {
            throw RecurrentKitError("truncation inside a chunk is not defined for a bidirectional stack; use .none")
        }
        guard recorder == nil else {
            throw RecurrentKitError("hidden-gradient recording is not available for a bidirectional stack")
        }
        try backwardLayers(
            steps: T, batch: B, outputGradient: outputGradient, finalHiddenGradient: finalHiddenGradient,
            finalCellGradient: finalCellGradient, inputGradient: inputGradient,
            initialHiddenGradient: initialHiddenGradient, initialCellGradient: initialCellGradient)
    }

    override var output: UnsafeMutablePointer<Scalar> { outputs[configuration.numLayers - 1].pointer }
    override func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> { directions[k].finalHidden(layer: 0) }
    override func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> { directions[k].finalCell(layer: 0) }

    /// Every layer, each direction over its own time order, joined (and dropped out below the last layer).
    private func forwardLayers(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?, h0: UnsafePointer<Scalar>?,
        c0: UnsafePointer<Scalar>?, lengths: [Int]?, training: Bool, recomputeInterval: Int?,
        generator: inout SeededGenerator
    ) throws {
        let L = configuration.numLayers, H = configuration.stateSize, BH = B * H,
            cellRows = B * configuration.hiddenSize
        self.lengths = lengths
        let dropsOut = training && configuration.dropout > 0 && L > 1
        let seed = dropsOut ? generator.next() : 0
        var unused = SeededGenerator(seed: 0)  // one-layer directions have no dropout of their own
        for k in 0..<L {
            let In = configuration.layerInputSize(k)
            let forward = directions[2 * k], reverse = directions[2 * k + 1]
            let x: UnsafePointer<Scalar>? = k == 0 ? input : UnsafePointer(outputs[k - 1].pointer)
            let layerTokens = k == 0 ? tokens : nil
            try forward.forward(
                steps: T, batch: B, input: x, tokens: layerTokens, h0: h0.map { $0 + 2 * k * BH },
                c0: c0.map { $0 + 2 * k * cellRows }, lengths: lengths, inputProjections: nil, training: false,
                recomputeInterval: recomputeInterval, dropoutShard: nil, generator: &unused)
            if let layerTokens {
                if reversedTokens.count != T * B { reversedTokens = Array(repeating: 0, count: T * B) }
                for t in 0..<T {
                    for b in 0..<B {
                        reversedTokens[reversedStep(t, row: b, steps: T) * B + b] = layerTokens[t * B + b]
                    }
                }
                try reverse.forward(
                    steps: T, batch: B, input: nil, tokens: reversedTokens, h0: h0.map { $0 + (2 * k + 1) * BH },
                    c0: c0.map { $0 + (2 * k + 1) * cellRows }, lengths: lengths, inputProjections: nil,
                    training: false, recomputeInterval: recomputeInterval, dropoutShard: nil, generator: &unused)
            } else {
                let xr = reversedInput.reserve(T * B * In)
                reverseTime(x!, into: xr, steps: T, batch: B, width: In)
                try reverse.forward(
                    steps: T, batch: B, input: xr, tokens: nil, h0: h0.map { $0 + (2 * k + 1) * BH },
                    c0: c0.map { $0 + (2 * k + 1) * cellRows }, lengths: lengths, inputProjections: nil,
                    training: false, recomputeInterval: recomputeInterval, dropoutShard: nil, generator: &unused)
            }
            // Join: step t holds the forward direction's h_t and the reverse direction's state after reading x_t.
            let joined = outputs[k].reserve(T * B * 2 * H)
            let f = forward.output, r = reverse.output
            for t in 0..<T {
                for b in 0..<B {
                    (joined + (t * B + b) * 2 * H).update(from: f + (t * B + b) * H, count: H)
                    (joined + (t * B + b) * 2 * H + H).update(
                        from: r + (reversedStep(t, row: b, steps: T) * B + b) * H, count: H)
                }
            }
            droppedOut[k] = dropsOut && k < L - 1
            if droppedOut[k] {
                let p = configuration.dropout, keep = Scalar(1 / (1 - p)), n = T * B * 2 * H
                let mask = masks[k].reserve(n)
                var layerGenerator = SeededGenerator(seed: seed ^ (UInt64(k + 1) &* 0x9E37_79B9_7F4A_7C15))
                for i in 0..<n {
                    mask[i] = layerGenerator.nextUnit() < p ? 0 : keep
                    joined[i] *= mask[i]
                }
            }
        }
    }

    /// Every layer last first: each direction's backward over its own time order, the gradients joined again.
    private func backwardLayers(
        steps T: Int, batch B: Int, outputGradient: UnsafePointer<Scalar>, finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?, inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?, initialCellGradient: UnsafeMutablePointer<Scalar>?
    ) throws {
        let L = configuration.numLayers, H = configuration.stateSize, BH = B * H,
            cellRows = B * configuration.hiddenSize
        // Two (T, B, 2H) buffers take turns: `current` holds dL/d(joined output of layer k), `other` receives layer
        // k-1's.
        var current = gradJoined.reserve(T * B * 2 * H), other = gradBelow.reserve(T * B * 2 * H)
        current.update(from: outputGradient, count: T * B * 2 * H)
        for k in stride(from: L - 1, through: 0, by: -1) {
            let dJoined = UnsafePointer(current)
            let In = configuration.layerInputSize(k)
            let dF = gradForward.reserve(T * BH), dR = gradReverse.reserve(T * BH)
            for t in 0..<T {
                for b in 0..<B {
                    (dF + (t * B + b) * H).update(from: dJoined + (t * B + b) * 2 * H, count: H)
                    (dR + (reversedStep(t, row: b, steps: T) * B + b) * H).update(
                        from: dJoined + (t * B + b) * 2 * H + H, count: H)
                }
            }
            let wantsInput = k > 0 || inputGradient != nil
            let dxF = wantsInput ? gradInputForward.reserve(T * B * In) : nil
            let dxR = wantsInput ? gradInputReverse.reserve(T * B * In) : nil
            for (index, (direction, dOut, dx)) in [
                (directions[2 * k], UnsafePointer(dF), dxF), (directions[2 * k + 1], UnsafePointer(dR), dxR),
            ].enumerated() {
                let row = (2 * k + index) * BH, cellRow = (2 * k + index) * cellRows
                try direction.backward(
                    steps: T, batch: B, outputGradient: dOut, finalHiddenGradient: finalHiddenGradient.map { $0 + row },
                    finalCellGradient: finalCellGradient.map { $0 + cellRow }, inputGradient: dx,
                    initialHiddenGradient: initialHiddenGradient.map { $0 + row },
                    initialCellGradient: initialCellGradient.map { $0 + cellRow }, truncation: .none, recorder: nil)
            }
            guard wantsInput, let dxF, let dxR else { continue }
            // dL/dx_t = through the forward direction at t + through the reverse direction at its step T-1-t.
            let target = k > 0 ? other : inputGradient!
            for t in 0..<T {
                for b in 0..<B {
                    let out = target + (t * B + b) * In, a = dxF + (t * B + b) * In,
                        r = dxR + (reversedStep(t, row: b, steps: T) * B + b) * In
                    for i in 0..<In { out[i] = a[i] + r[i] }
                }
            }
            if k > 0 {
                if droppedOut[k - 1] {
                    let m = masks[k - 1].pointer; for i in 0..<(T * B * 2 * H) { target[i] *= m[i] }
                }
                swap(&current, &other)
            }
        }
    }
}
