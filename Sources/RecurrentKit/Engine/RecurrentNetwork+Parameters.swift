// A stack's parameters: binding into a store (alone or gathered into a model), typed views, initialisation.

/// A store holding exactly `configuration`'s parameters named by `naming`; validates the configuration first.
func ownParameters<Scalar: RecurrentScalar>(
    _ configuration: RecurrentConfiguration, naming: ParameterNaming = .layers
) throws -> ParameterStore<Scalar> {
    try configuration.validate()
    var layout = ParameterLayout()
    configuration.declareParameters(prefix: "", into: &layout, naming: naming)
    return ParameterStore(layout: layout)
}

extension RecurrentNetwork {
    /// Points the per-layer parameter and gradient pointers into `parameters` under `prefix` (names checked before).
    func resolvePointers() {
        // A bidirectional stack's work is done by its direction networks; its own per-layer pointers stay empty.
        let L = configuration.bidirectional ? 0 : configuration.numLayers
        weightIH = (0..<L).map { parameters.value(parameterName("weight_ih", $0)) }
        weightHH = (0..<L).map { parameters.value(parameterName("weight_hh", $0)) }
        // Without biases the stack reads zeros and adds bias gradients into scratch no one reads, so its loops stay
        // the same (adding +0 changes no value).
        let GH = configuration.cell.gateCount * configuration.hiddenSize
        let zeros = configuration.bias ? nil : absentBias.reserve(4 * L * GH)
        if let zeros { zeros.update(repeating: 0, count: 4 * L * GH) }
        /// The bias pointer of `base` for layer `k`: in the store, or block `block` of the absent-bias buffer.
        func biasPointer(_ base: String, _ k: Int, block: Int, gradient: Bool) -> UnsafeMutablePointer<Scalar> {
            if let zeros { return zeros + (block * L + k) * GH }
            return gradient ? parameters.gradient(parameterName(base, k)) : parameters.value(parameterName(base, k))
        }
        biasIH = (0..<L).map { biasPointer("bias_ih", $0, block: 0, gradient: false) }
        biasHH = (0..<L).map { biasPointer("bias_hh", $0, block: 1, gradient: false) }
        gradWeightIH = (0..<L).map { parameters.gradient(parameterName("weight_ih", $0)) }
        gradWeightHH = (0..<L).map { parameters.gradient(parameterName("weight_hh", $0)) }
        gradBiasIH = (0..<L).map { biasPointer("bias_ih", $0, block: 2, gradient: true) }
        gradBiasHH = (0..<L).map { biasPointer("bias_hh", $0, block: 3, gradient: true) }
        let projects = configuration.projectionSize > 0
        weightHR = projects ? (0..<L).map { parameters.value(parameterName("weight_hr", $0)) } : []
        gradWeightHR = projects ? (0..<L).map { parameters.gradient(parameterName("weight_hr", $0)) } : []
    }

    /// The full name of parameter `base` (`weight_ih`, ...) of layer `k` in ``parameters``.
    func parameterName(_ base: String, _ k: Int, reverse: Bool = false) -> String {
        prefix + base + naming.suffix(layer: k, reverse: reverse)
    }

    /// Every parameter of every layer in `state_dict` order, names without a prefix (`weight_ih_l0`, ...).
    public var parameterDeclarations: ParameterLayout {
        var layout = ParameterLayout()
        configuration.declareParameters(prefix: "", into: &layout, naming: naming)
        return layout
    }

    /// Rebinds to `store` under `prefix` (``ParameterStore/init(gathering:)`` calls it after copying the values).
    /// Records of earlier forwards become stale.
    public func _bind(to store: ParameterStore<Scalar>, prefix: String) throws {
        try Self.checkDeclared(configuration, in: store, prefix: prefix, naming: naming)
        for direction in stack.directions { try direction._bind(to: store, prefix: prefix) }
        parameters = store
        self.prefix = prefix
        resolvePointers()
        cachedSteps = 0
        forwardGeneration &+= 1
    }

    static func checkDeclared(
        _ configuration: RecurrentConfiguration, in store: ParameterStore<Scalar>, prefix: String,
        naming: ParameterNaming
    ) throws {
        var layout = ParameterLayout()
        configuration.declareParameters(prefix: prefix, into: &layout, naming: naming)
        for entry in layout.entries {
            let existing = try store.requireEntry(entry.name)
            guard existing.shape == entry.shape else {
                throw RecurrentKitError.shapeMismatch(entry.name, expected: entry.shape, got: existing.shape)
            }
        }
    }

    /// `weight_ih_l{layer}` (or `weight_ih_l{layer}_reverse`), (G*H, In) with In the layer's input size, and its
    /// gradient.
    /// - Throws: when `layer` is outside [0, L), or `reverse` on a one-direction stack.
    public func weightIH(layer: Int, reverse: Bool = false) throws -> ParameterView<Scalar> {
        try view("weight_ih", layer, reverse)
    }
    /// `weight_hr_l{layer}` (or `..._reverse`), (P, H): an LSTM's projection
    /// (``RecurrentConfiguration/projectionSize``), and its gradient.
    /// - Throws: when `layer` is outside [0, L), `reverse` on a one-direction stack, or the network has no projection.
    public func weightHR(layer: Int, reverse: Bool = false) throws -> ParameterView<Scalar> {
        guard configuration.projectionSize > 0 else {
            throw RecurrentKitError("this network has no projection (projectionSize 0)")
        }
        return try view("weight_hr", layer, reverse)
    }
    /// `weight_hh_l{layer}` (or `..._reverse`), (G*H, R) with R = ``RecurrentConfiguration/stateSize``, and its
    /// gradient.
    /// - Throws: when `layer` is outside [0, L), or `reverse` on a one-direction stack.
    public func weightHH(layer: Int, reverse: Bool = false) throws -> ParameterView<Scalar> {
        try view("weight_hh", layer, reverse)
    }
    /// `bias_ih_l{layer}` (or `..._reverse`), (G*H), and its gradient.
    /// - Throws: when `layer` is outside [0, L), `reverse` on a one-direction stack, or the network has no biases.
    public func biasIH(layer: Int, reverse: Bool = false) throws -> ParameterView<Scalar> {
        try biasView("bias_ih", layer, reverse)
    }
    /// `bias_hh_l{layer}` (or `..._reverse`), (G*H), and its gradient.
    /// - Throws: when `layer` is outside [0, L), `reverse` on a one-direction stack, or the network has no biases.
    public func biasHH(layer: Int, reverse: Bool = false) throws -> ParameterView<Scalar> {
        try biasView("bias_hh", layer, reverse)
    }

    private func biasView(_ base: String, _ layer: Int, _ reverse: Bool) throws -> ParameterView<Scalar> {
        guard configuration.bias else { throw RecurrentKitError("this network has no biases (bias: false)") }
        return try view(base, layer, reverse)
    }

    private func view(_ base: String, _ layer: Int, _ reverse: Bool) throws -> ParameterView<Scalar> {
        guard layer >= 0, layer < configuration.numLayers else {
            throw RecurrentKitError.invalidArgument("layer", layer, "must be in 0..<\(configuration.numLayers)")
        }
        guard !reverse || configuration.bidirectional else {
            throw RecurrentKitError("this network has one direction (bidirectional: false)")
        }
        return ParameterView(store: parameters, name: parameterName(base, layer, reverse: reverse))
    }

    /// Sets the LSTM forget gate's bias (rows H..<2H) to `value` in `bias_ih` and to 0 in `bias_hh`, so the gate's
    /// pre-activation starts with bias exactly `value` (char-rnn and Jozefowicz et al. use 1: remember by default).
    /// - Throws: unless the network is an LSTM with biases.
    public func setForgetGateBias(_ value: Double) throws {
        guard configuration.cell == .lstm, configuration.bias else {
            throw RecurrentKitError("a forget-gate bias needs an LSTM with biases")
        }
        guard value.isFinite else { throw RecurrentKitError.invalidArgument("forget bias", value, "must be finite") }
        let H = configuration.hiddenSize
        for reverse in configuration.bidirectional ? [false, true] : [false] {
            for k in 0..<configuration.numLayers {
                let ih = try biasIH(layer: k, reverse: reverse).values,
                    hh = try biasHH(layer: k, reverse: reverse).values
                for j in H..<(2 * H) { ih[j] = Scalar(value); hh[j] = 0 }
            }
        }
    }

    /// Draws every parameter of this network again (in `state_dict` order, row-major).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
        for direction in stack.directions { direction.initialize(initialization, generator: &generator) }
        guard stack.directions.isEmpty else { return }  // a composition's parameters are its directions'

        let H = configuration.hiddenSize, R = configuration.stateSize
        let bound = 1 / Double(H).squareRoot()
        for k in 0..<configuration.numLayers {
            let rows = configuration.cell.gateCount * H
            let inCount = rows * configuration.layerInputSize(k)
            let hhCount = rows * R
            // A projection's W_hr (P, H) comes last in each layer's `state_dict` order, drawn like the other weights.
            let projection = weightHR.isEmpty ? [] : [(weightHR[k], R * H)]
            switch initialization {
            case .pytorch:
                let biases = configuration.bias ? [(biasIH[k], rows), (biasHH[k], rows)] : []
                for (p, n) in [(weightIH[k], inCount), (weightHH[k], hhCount)] + biases + projection {
                    for i in 0..<n { p[i] = Scalar(generator.uniform(-bound, bound)) }
                }
            case .d2l:
                for i in 0..<inCount { weightIH[k][i] = Scalar(0.01 * generator.normal()) }
                for i in 0..<hhCount { weightHH[k][i] = Scalar(0.01 * generator.normal()) }
                if configuration.bias {
                    biasIH[k].update(repeating: 0, count: rows); biasHH[k].update(repeating: 0, count: rows)
                }
                for (p, n) in projection { for i in 0..<n { p[i] = Scalar(0.01 * generator.normal()) } }
            case .orthogonal:
                let biases = configuration.bias ? [(biasIH[k], rows), (biasHH[k], rows)] : []
                for (p, n) in [(weightIH[k], inCount)] + biases {
                    for i in 0..<n { p[i] = Scalar(generator.uniform(-bound, bound)) }
                }
                // Each (H, R) gate block: the first R columns of a random H x H orthogonal matrix (orthonormal
                // columns).
                for g in 0..<configuration.cell.gateCount {
                    let q = randomOrthogonal(H, generator: &generator)
                    for i in 0..<H { for j in 0..<R { weightHH[k][g * H * R + i * R + j] = Scalar(q[i * H + j]) } }
                }
                for (p, n) in projection { for i in 0..<n { p[i] = Scalar(generator.uniform(-bound, bound)) } }
            case .identity:
                for i in 0..<inCount { weightIH[k][i] = Scalar(0.001 * generator.normal()) }
                weightHH[k].update(repeating: 0, count: hhCount)
                // Identity on each gate block's diagonal (for the RNN, the whole W_hh).
                for r in 0..<rows where r % H < R { weightHH[k][r * R + r % H] = 1 }
                if configuration.bias {
                    biasIH[k].update(repeating: 0, count: rows); biasHH[k].update(repeating: 0, count: rows)
                }
                for (p, n) in projection { for i in 0..<n { p[i] = Scalar(generator.uniform(-bound, bound)) } }
            }
        }
    }
}

/// A random n x n orthogonal matrix, row-major: QR of a standard Gaussian matrix by modified Gram-Schmidt in Double,
/// each column's sign made that of R's diagonal (as `torch.nn.init.orthogonal_`, so the draw is uniform).
func randomOrthogonal(_ n: Int, generator: inout SeededGenerator) -> [Double] {
    var a = (0..<(n * n)).map { _ in generator.normal() }  // a[i * n + j]: row i, column j
    for j in 0..<n {
        for p in 0..<j {
            var dot = 0.0
            for i in 0..<n { dot += a[i * n + p] * a[i * n + j] }
            for i in 0..<n { a[i * n + j] -= dot * a[i * n + p] }
        }
        var norm = 0.0
        for i in 0..<n { norm += a[i * n + j] * a[i * n + j] }
        norm = norm.squareRoot()
        // Column j of Q = a_j / r_jj with r_jj = norm > 0 (a Gaussian matrix is full rank with probability 1).
        for i in 0..<n { a[i * n + j] /= max(norm, .leastNormalMagnitude) }
    }
    return a
}
