// A stack's parameters: binding into a store (alone or gathered into a model), typed views, initialisation.

extension RecurrentNetwork {
    /// Points the per-layer parameter and gradient pointers into `parameters` under `prefix` (names checked before).
    func resolvePointers() {
        let L = configuration.numLayers
        weightIH = (0..<L).map { parameters.value(parameterName("weight_ih", $0)) }
        weightHH = (0..<L).map { parameters.value(parameterName("weight_hh", $0)) }
        biasIH = (0..<L).map { parameters.value(parameterName("bias_ih", $0)) }
        biasHH = (0..<L).map { parameters.value(parameterName("bias_hh", $0)) }
        gradWeightIH = (0..<L).map { parameters.gradient(parameterName("weight_ih", $0)) }
        gradWeightHH = (0..<L).map { parameters.gradient(parameterName("weight_hh", $0)) }
        gradBiasIH = (0..<L).map { parameters.gradient(parameterName("bias_ih", $0)) }
        gradBiasHH = (0..<L).map { parameters.gradient(parameterName("bias_hh", $0)) }
    }

    /// The full name of parameter `base` (`weight_ih`, ...) of layer `k` in ``parameters``.
    func parameterName(_ base: String, _ k: Int) -> String { prefix + base + (cellNames ? "" : "_l\(k)") }

    /// Every parameter of every layer in `state_dict` order, names without a prefix (`weight_ih_l0`, ...).
    public var parameterDeclarations: ParameterLayout {
        var layout = ParameterLayout()
        configuration.declareParameters(prefix: "", into: &layout, cellNames: cellNames)
        return layout
    }

    /// Rebinds to `store` under `prefix` (``ParameterStore/init(gathering:)`` calls it after copying the values).
    /// Records of earlier forwards become stale.
    public func _bind(to store: ParameterStore<Scalar>, prefix: String) throws {
        try Self.checkDeclared(configuration, in: store, prefix: prefix, cellNames: cellNames)
        parameters = store
        self.prefix = prefix
        resolvePointers()
        cachedSteps = 0
        forwardGeneration &+= 1
    }

    static func checkDeclared(_ configuration: RecurrentConfiguration, in store: ParameterStore<Scalar>, prefix: String,
                                      cellNames: Bool) throws {
        var layout = ParameterLayout()
        configuration.declareParameters(prefix: prefix, into: &layout, cellNames: cellNames)
        for entry in layout.entries {
            let existing = try store.requireEntry(entry.name)
            guard existing.shape == entry.shape else {
                throw RecurrentKitError.shapeMismatch(entry.name, expected: entry.shape, got: existing.shape)
            }
        }
    }

    /// `weight_ih_l{layer}`, (G*H, In) with In the layer's input size, and its gradient.
    /// - Throws: when `layer` is outside [0, L).
    public func weightIH(layer: Int) throws -> ParameterView<Scalar> { try view("weight_ih", layer) }
    /// `weight_hh_l{layer}`, (G*H, H), and its gradient.
    /// - Throws: when `layer` is outside [0, L).
    public func weightHH(layer: Int) throws -> ParameterView<Scalar> { try view("weight_hh", layer) }
    /// `bias_ih_l{layer}`, (G*H), and its gradient.
    /// - Throws: when `layer` is outside [0, L).
    public func biasIH(layer: Int) throws -> ParameterView<Scalar> { try view("bias_ih", layer) }
    /// `bias_hh_l{layer}`, (G*H), and its gradient.
    /// - Throws: when `layer` is outside [0, L).
    public func biasHH(layer: Int) throws -> ParameterView<Scalar> { try view("bias_hh", layer) }

    private func view(_ base: String, _ layer: Int) throws -> ParameterView<Scalar> {
        guard layer >= 0, layer < configuration.numLayers else {
            throw RecurrentKitError.invalidArgument("layer", layer, "must be in 0..<\(configuration.numLayers)")
        }
        return ParameterView(store: parameters, name: parameterName(base, layer))
    }

    /// Draws every parameter of this network again (in `state_dict` order, row-major).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
        let H = configuration.hiddenSize
        let bound = 1 / Double(H).squareRoot()
        for k in 0..<configuration.numLayers {
            let rows = configuration.cell.gateCount * H
            let inCount = rows * configuration.layerInputSize(k)
            let hhCount = rows * H
            switch initialization {
            case .pytorch:
                for (p, n) in [(weightIH[k], inCount), (weightHH[k], hhCount), (biasIH[k], rows), (biasHH[k], rows)] {
                    for i in 0..<n { p[i] = Scalar(generator.uniform(-bound, bound)) }
                }
            case .d2l:
                for i in 0..<inCount { weightIH[k][i] = Scalar(0.01 * generator.normal()) }
                for i in 0..<hhCount { weightHH[k][i] = Scalar(0.01 * generator.normal()) }
                biasIH[k].update(repeating: 0, count: rows)
                biasHH[k].update(repeating: 0, count: rows)
            case .identity:
                for i in 0..<inCount { weightIH[k][i] = Scalar(0.001 * generator.normal()) }
                weightHH[k].update(repeating: 0, count: hhCount)
                // Identity on each gate block's diagonal (for the RNN, the whole W_hh).
                for r in 0..<rows { weightHH[k][r * H + r % H] = 1 }
                biasIH[k].update(repeating: 0, count: rows)
                biasHH[k].update(repeating: 0, count: rows)
            }
        }
    }
}
