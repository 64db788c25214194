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
        parameters = store
        self.prefix = prefix
        for engine in stack.engines { engine.weights.bind(to: store, prefix: prefix) }
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
    public func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
        for engine in stack.engines { engine.weights.initialize(initialization, generator: &generator) }
    }
}
