/// The worst disagreement between the hand-written backward and finite differences for one tensor.
public struct GradientCheckResult: Sendable, Equatable {
    /// Tensor name: a parameter (`weight_ih_l0`, ...), `input`, `input_chunk2`, `h0` or `c0`.
    public let name: String
    /// Number of elements checked.
    public let count: Int
    /// max |analytic - numeric| / max(|analytic|, |numeric|, floor).
    public let worstRelativeError: Double
    /// max |analytic - numeric|.
    public let worstAbsoluteError: Double
    /// Position (one index per dimension) of the worst relative error.
    public let worstIndex: [Int]
    /// Analytic and numeric values at that position.
    public let analytic: Double, numeric: Double
    /// Elements whose five-point stencil moved a ReLU pre-activation across 0 (the kink, where the function has no
    /// derivative) and that were checked with a one-sided difference on the side that keeps every sign.
    public let oneSidedCount: Int
    /// Elements whose stencil crossed a kink on both sides: not compared (reported, never counted as a failure).
    public let skippedCount: Int
}

/// Finite-difference checks of ``RecurrentNetwork`` backward passes in `Double`.
///
/// The loss is L = sum(out * dOut) + sum(h_n * dh_n) [+ sum(c_n * dc_n)] with random dOut, dh_n, dc_n, or, with
/// `lastStepOnly`, L = sum(out_T * dOut_T). With `chunks` = 2 the sequence is split in two and the second chunk
/// starts from the first chunk's final state held constant (truncated BPTT): the numeric derivative then keeps that
/// state fixed too, exactly what the cut gradient path means. Derivatives use the five-point stencil
/// (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h, whose error is O(h^4).
///
/// A ReLU RNN is not differentiable where a pre-activation is exactly 0, and a stencil that moves one across 0
/// differences two linear pieces: the result is no derivative at all. For every perturbed element the check
/// compares the sign of every ReLU pre-activation (each layer, step, row and unit) at x +- h and x +- 2h with
/// those at x. When a sign changes, the element is re-checked with the one-sided second-order difference
/// (-3 f(x) + 4 f(x+h) - f(x+2h)) / 2h (or its mirror to the left) on a side where no sign changes, and
/// counted in ``GradientCheckResult/oneSidedCount``; when both sides cross a kink it is skipped and counted in
/// ``GradientCheckResult/skippedCount``, never reported as a failure. Like PyTorch's advice for
/// `torch.autograd.gradcheck` (check at points away from non-differentiable ones), this avoids false alarms
/// without hiding errors: every other element is compared as before, and the counts are printed.
public enum GradientCheck {
    /// A deliberate error in the analytic gradient, to prove that the check fails on a wrong backward.
    public struct Corruption: Sendable {
        /// Parameter name, e.g. `weight_ih_l0`.
        public var tensor: String
        /// Every analytic element of the tensor is multiplied by (1 + relativeError).
        public var relativeError: Double
        /// A corruption of `tensor` by `relativeError`.
        public init(tensor: String, relativeError: Double) {
            self.tensor = tensor
            self.relativeError = relativeError
        }
    }

    /// Options of one check.
    public struct Options: Sendable {
        /// Recurrent layers to check.
        public var configuration: RecurrentConfiguration
        /// Batch size B (>= 1). Default 3.
        public var batch: Int
        /// Steps T per chunk (>= 1). Default 6.
        public var steps: Int
        /// Number of truncated chunks, 1 or more. Default 1.
        public var chunks: Int
        /// Loss on the last step only (each row's own last step with ``lengths``). Default false.
        public var lastStepOnly: Bool
        /// A variable-length batch: B lengths in [1, steps] given to every chunk's forward (nil: every row runs all
        /// steps).
        public var lengths: [Int]? = nil
        /// Dropout active (masks fixed by the seed, so the function is deterministic). Default false.
        public var training: Bool
        /// Finite-difference step h (> 0). Default 1e-4.
        public var step: Double
        /// Denominator floor of the relative error (> 0). Default 1e-4.
        public var floor: Double
        /// Seed for weights, inputs, states, loss weights and dropout masks.
        public var seed: UInt64
        /// Parameter initialisation. Default PyTorch's.
        public var initialization: Initialization
        /// Test hook: adds 1e-3 to one analytic gradient element, to prove the check can fail.
        var corruptGradient: (name: String, index: Int)? = nil
        /// Self-test: corrupts the analytic gradient of one parameter before the comparison (nil: none).
        public var corruption: Corruption? = nil

        /// Options with the defaults above.
        public init(
            configuration: RecurrentConfiguration, batch: Int = 3, steps: Int = 6, chunks: Int = 1,
            lastStepOnly: Bool = false, training: Bool = false, step: Double = 1e-4, floor: Double = 1e-4,
            seed: UInt64 = 0, initialization: Initialization = .pytorch
        ) {
            self.configuration = configuration
            self.batch = batch
            self.steps = steps
            self.chunks = chunks
            self.lastStepOnly = lastStepOnly
            self.training = training
            self.step = step
            self.floor = floor
            self.seed = seed
            self.initialization = initialization
        }
    }

    /// Runs the check and returns one result per tensor: every parameter, each chunk's input, h0 (and c0).
    public static func run(_ options: Options) throws -> [GradientCheckResult] {
        let config = options.configuration
        try config.validate()
        guard options.batch >= 1 else {
            throw RecurrentKitError.invalidArgument("batch", options.batch, "must be at least 1")
        }
        guard options.steps >= 1 else {
            throw RecurrentKitError.invalidArgument("steps", options.steps, "must be at least 1")
        }
        guard options.chunks >= 1 else {
            throw RecurrentKitError.invalidArgument("chunks", options.chunks, "must be at least 1")
        }
        guard options.batch <= 1024, options.steps <= 10_000, options.chunks <= 100 else {
            throw RecurrentKitError(
                "gradient check too large: batch \(options.batch) (max 1024), steps \(options.steps) (max 10000), "
                    + "chunks \(options.chunks) (max 100)"
            )
        }
        guard options.floor > 0, options.floor.isFinite else {
            throw RecurrentKitError.invalidArgument("floor", options.floor, "must be > 0")
        }
        guard options.step > 0, options.step.isFinite else {
            throw RecurrentKitError.invalidArgument("step", options.step, "must be > 0")
        }
        let (B, T, L, H, O, R) = (
            options.batch, options.steps, config.stateLayers, config.hiddenSize, config.outputSize, config.stateSize
        )
        var generator = SeededGenerator(seed: options.seed)
        let network = try RecurrentNetwork<Double>(
            config, initialization: options.initialization, generator: &generator)
        let inputs = (0..<options.chunks).map { _ in
            Tensor<Double>(shape: [T, B, config.inputSize]) { generator.normal() }
        }
        let h0 = Tensor<Double>(shape: [L, B, R]) { 0.5 * generator.normal() }
        let c0: Tensor<Double>? =
            config.cell.hasCellState ? Tensor(shape: [L, B, H]) { 0.5 * generator.normal() } : nil
        let dOutputs: [Tensor<Double>] = (0..<options.chunks).map { _ in
            var d = Tensor<Double>(shape: [T, B, O]) { generator.normal() }
            if options.lastStepOnly {
                for t in 0..<T {
                    for b in 0..<B where t != (options.lengths?[b] ?? T) - 1 {
                        for j in 0..<O { d.scalars[(t * B + b) * O + j] = 0 }
                    }
                }
            }
            return d
        }
        let weightsOnState = !options.lastStepOnly
        let dhn = Tensor<Double>(shape: [L, B, R]) { weightsOnState ? generator.normal() : 0 }
        let dcn: Tensor<Double>? =
            config.cell.hasCellState ? Tensor(shape: [L, B, H]) { weightsOnState ? generator.normal() : 0 } : nil
        let maskSeed = generator.next()

        // Chunk start states from the unperturbed model: later chunks start from these constants.
        var startStates = [RecurrentState(h: h0, c: c0)]
        for c in 0..<(options.chunks - 1) {
            var masks = SeededGenerator(seed: maskSeed &+ UInt64(c))
            let record = try network(
                .dense(inputs[c]), initialState: startStates[c], lengths: options.lengths,
                training: options.training, generator: &masks)
            startStates.append(try record.finalState)
        }

        // L as a function of the current parameters, inputs and first state; `signs` receives the ReLU
        // pre-activation signs of every chunk (nothing for other cells).
        var signs: [Bool] = []
        func totalLoss(_ inputs: [Tensor<Double>], _ first: RecurrentState<Double>) throws -> Double {
            var sum = 0.0
            signs.removeAll(keepingCapacity: true)
            for c in 0..<options.chunks {
                var masks = SeededGenerator(seed: maskSeed &+ UInt64(c))
                let record = try network(
                    .dense(inputs[c]), initialState: c == 0 ? first : startStates[c],
                    lengths: options.lengths, training: options.training, generator: &masks)
                let (out, final) = (try record.output, try record.finalState)
                network.appendReLUSigns(to: &signs)
                for i in out.scalars.indices { sum += out.scalars[i] * dOutputs[c].scalars[i] }
                if c == options.chunks - 1 {
                    for i in final.h.scalars.indices { sum += final.h.scalars[i] * dhn.scalars[i] }
                    if let fc = final.c, let dcn {
                        for i in fc.scalars.indices { sum += fc.scalars[i] * dcn.scalars[i] }
                    }
                }
            }
            return sum
        }

        // Analytic gradients: backward per chunk, parameter gradients accumulating across chunks.
        network.parameters.zeroGradients()
        var inputGradients: [Tensor<Double>] = []
        var firstStateGradient: RecurrentState<Double>? = nil
        for c in 0..<options.chunks {
            var masks = SeededGenerator(seed: maskSeed &+ UInt64(c))
            let record = try network(
                .dense(inputs[c]), initialState: startStates[c], lengths: options.lengths, training: options.training,
                generator: &masks)
            let last = c == options.chunks - 1
            let (dx, dState) = try network.backward(
                record, outputGradient: dOutputs[c],
                finalStateGradient: last ? RecurrentState(h: dhn, c: dcn) : nil)
            inputGradients.append(dx!)
            if c == 0 { firstStateGradient = dState }
        }

        if let (name, index) = options.corruptGradient, let entry = network.parameters.entry(named: name) {
            network.parameters.gradients[entry.offset + index] += 1e-3
        }
        if let corruption = options.corruption {
            guard let entry = network.parameters.entry(named: corruption.tensor) else {
                throw RecurrentKitError("corruption: no parameter named '\(corruption.tensor)'")
            }
            for i in 0..<entry.count { network.parameters.gradients[entry.offset + i] *= 1 + corruption.relativeError }
        }

        // The unperturbed loss and signs: a stencil point whose signs differ has crossed a kink.
        let baseLoss = try totalLoss(inputs, startStates[0])
        let baseSigns = signs
        var oneSided = 0, skipped = 0

        /// The derivative of `loss(delta)`, the loss with one value moved by delta (and restored after): five-point,
        /// or one-sided on a side where no ReLU pre-activation changes sign; nil when both sides cross a kink.
        func derivative(_ loss: (Double) throws -> Double) rethrows -> Double? {
            let h = options.step
            // Other cells record no signs, so every comparison below is equal and the five-point stencil is used.
            let m2 = try loss(-2 * h), sameM2 = signs == baseSigns
            let m1 = try loss(-h), sameM1 = signs == baseSigns
            let p1 = try loss(h), sameP1 = signs == baseSigns
            let p2 = try loss(2 * h), sameP2 = signs == baseSigns
            let left = sameM2 && sameM1, right = sameP1 && sameP2
            if left && right { return (m2 - 8 * m1 + 8 * p1 - p2) / (12 * h) }
            if right { oneSided += 1; return (-3 * baseLoss + 4 * p1 - p2) / (2 * h) }
            if left { oneSided += 1; return (3 * baseLoss - 4 * m1 + m2) / (2 * h) }
            skipped += 1
            return nil
        }

        var results: [GradientCheckResult] = []
        func compare(_ name: String, shape: [Int], analytic: [Double], numericAt: (Int) throws -> Double?) rethrows {
            var worst = (rel: 0.0, abs: 0.0, index: 0, a: 0.0, n: 0.0)
            let (oneSidedBefore, skippedBefore) = (oneSided, skipped)
            for i in analytic.indices {
                guard let n = try numericAt(i) else { continue }
                let a = analytic[i]
                let absError = abs(a - n)
                let relError = absError / max(abs(a), abs(n), options.floor)
                if relError > worst.rel || relError.isNaN { worst = (relError, max(worst.abs, absError), i, a, n) }
                worst.abs = max(worst.abs, absError)
            }
            let probe = Tensor<Double>(zeros: shape)
            results.append(
                GradientCheckResult(
                    name: name, count: analytic.count, worstRelativeError: worst.rel,
                    worstAbsoluteError: worst.abs, worstIndex: probe.multiIndex(ofFlat: worst.index),
                    analytic: worst.a, numeric: worst.n,
                    oneSidedCount: oneSided - oneSidedBefore, skippedCount: skipped - skippedBefore))
        }

        let store = network.parameters
        for entry in store.entries {
            let analytic = Array(UnsafeBufferPointer(start: store.gradients + entry.offset, count: entry.count))
            try compare(entry.name, shape: entry.shape, analytic: analytic) { i in
                let p = store.values + entry.offset + i
                let original = p.pointee
                return try derivative { delta in
                    p.pointee = original + delta
                    defer { p.pointee = original }
                    return try totalLoss(inputs, startStates[0])
                }
            }
        }
        var perturbedInputs = inputs
        for c in 0..<options.chunks {
            try compare(
                c == 0 ? "input" : "input_chunk\(c + 1)", shape: [T, B, config.inputSize],
                analytic: inputGradients[c].scalars
            ) { i in
                try derivative { delta in
                    perturbedInputs[c].scalars[i] = inputs[c].scalars[i] + delta
                    defer { perturbedInputs[c].scalars[i] = inputs[c].scalars[i] }
                    return try totalLoss(perturbedInputs, startStates[0])
                }
            }
        }
        func stateLoss(h: Tensor<Double>, c: Tensor<Double>?) throws -> Double {
            try totalLoss(inputs, RecurrentState(h: h, c: c))
        }
        try compare("h0", shape: [L, B, R], analytic: firstStateGradient!.h.scalars) { i in
            try derivative { delta in
                var h = h0; h.scalars[i] += delta; return try stateLoss(h: h, c: c0)
            }
        }
        if let c0 {
            try compare("c0", shape: [L, B, H], analytic: firstStateGradient!.c!.scalars) { i in
                try derivative { delta in
                    var c = c0; c.scalars[i] += delta; return try stateLoss(h: h0, c: c)
                }
            }
        }
        return results
    }
}

extension RecurrentNetwork {
    /// Appends, for a ReLU RNN, whether each pre-activation of the cached forward was positive (every direction, layer,
    /// step, row and unit: h_t > 0 exactly when its pre-activation is), so a gradient check can tell whether a
    /// perturbation moved any pre-activation across the kink at 0. Other cells have no kink and append nothing.
    /// Requires caches that hold every step (no recompute interval).
    func appendReLUSigns(to signs: inout [Bool]) {
        for engine in stack.engines { engine.appendReLUSigns(to: &signs) }
    }
}

extension OneDirectionStack {
    /// ``RecurrentNetwork/appendReLUSigns(to:)`` for this direction's layers.
    func appendReLUSigns(to signs: inout [Bool]) {
        guard configuration.cell == .rnnReLU, !recomputes else { return }
        let count = (packing?.validRows ?? cachedSteps * cachedBatch) * configuration.stateSize
        for k in 0..<configuration.numLayers {
            let h = layers[k].hidden.pointer + cachedBatch * configuration.stateSize  // h_1 ... h_T
            for i in 0..<count { signs.append(h[i] > 0) }
        }
    }
}
