// The parameter and gradient pointers one layer loop reads, resolved by name from a store, and their initialisation.

/// Where a one-direction stack's parameters live in its store: per layer, `weight_ih` (G*H, In), `weight_hh` (G*H, R),
/// `bias_ih` and `bias_hh` (G*H), an LSTM projection's `weight_hr` (P, H), and their gradients. Shared by the network
/// that owns the names (it rebinds them when gathered into a model) and the `OneDirectionStack` that reads them.
final class RecurrentWeights<Scalar: RecurrentScalar> {
    /// The stack these pointers are for (one layer for a cell or one direction of a bidirectional layer).
    let configuration: RecurrentConfiguration
    /// How the parameters are named: per layer, as a cell, or as one direction of one bidirectional layer.
    let naming: ParameterNaming
    private(set) var weightIH: [UnsafeMutablePointer<Scalar>] = []
    private(set) var weightHH: [UnsafeMutablePointer<Scalar>] = []
    /// LSTM with a projection: `weight_hr_l{k}` (P, H) and its gradient (empty otherwise).
    private(set) var weightHR: [UnsafeMutablePointer<Scalar>] = []
    private(set) var gradWeightHR: [UnsafeMutablePointer<Scalar>] = []
    private(set) var biasIH: [UnsafeMutablePointer<Scalar>] = []
    private(set) var biasHH: [UnsafeMutablePointer<Scalar>] = []
    private(set) var gradWeightIH: [UnsafeMutablePointer<Scalar>] = []
    private(set) var gradWeightHH: [UnsafeMutablePointer<Scalar>] = []
    private(set) var gradBiasIH: [UnsafeMutablePointer<Scalar>] = []
    private(set) var gradBiasHH: [UnsafeMutablePointer<Scalar>] = []
    /// With `bias: false`: zeros the stack reads as biases, then scratch for the bias gradients, (4, L, G*H).
    private let absentBias = Workspace<Scalar>()

    /// Pointers into `store` under `prefix` (names checked by the caller).
    init(
        _ configuration: RecurrentConfiguration, naming: ParameterNaming, store: ParameterStore<Scalar>, prefix: String
    ) {
        self.configuration = configuration
        self.naming = naming
        bind(to: store, prefix: prefix)
    }

    /// Points every parameter and gradient pointer into `store` under `prefix` (names checked by the caller).
    func bind(to store: ParameterStore<Scalar>, prefix: String) {
        let L = configuration.numLayers
        func name(_ base: String, _ k: Int) -> String { prefix + base + naming.suffix(layer: k, reverse: false) }
        weightIH = (0..<L).map { store.value(name("weight_ih", $0)) }
        weightHH = (0..<L).map { store.value(name("weight_hh", $0)) }
        // Without biases the stack reads zeros and adds bias gradients into scratch no one reads, so its loops stay
        // the same (adding +0 changes no value).
        let GH = configuration.cell.gateCount * configuration.hiddenSize
        let zeros = configuration.bias ? nil : absentBias.reserve(4 * L * GH)
        if let zeros { zeros.update(repeating: 0, count: 4 * L * GH) }
        /// The bias pointer of `base` for layer `k`: in the store, or block `block` of the absent-bias buffer.
        func biasPointer(_ base: String, _ k: Int, block: Int, gradient: Bool) -> UnsafeMutablePointer<Scalar> {
            if let zeros { return zeros + (block * L + k) * GH }
            return gradient ? store.gradient(name(base, k)) : store.value(name(base, k))
        }
        biasIH = (0..<L).map { biasPointer("bias_ih", $0, block: 0, gradient: false) }
        biasHH = (0..<L).map { biasPointer("bias_hh", $0, block: 1, gradient: false) }
        gradWeightIH = (0..<L).map { store.gradient(name("weight_ih", $0)) }
        gradWeightHH = (0..<L).map { store.gradient(name("weight_hh", $0)) }
        gradBiasIH = (0..<L).map { biasPointer("bias_ih", $0, block: 2, gradient: true) }
        gradBiasHH = (0..<L).map { biasPointer("bias_hh", $0, block: 3, gradient: true) }
        let projects = configuration.projectionSize > 0
        weightHR = projects ? (0..<L).map { store.value(name("weight_hr", $0)) } : []
        gradWeightHR = projects ? (0..<L).map { store.gradient(name("weight_hr", $0)) } : []
    }

    /// Draws every parameter again, layer by layer in `state_dict` order, row-major.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
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
