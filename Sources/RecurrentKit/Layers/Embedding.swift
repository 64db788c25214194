/// A lookup table of vectors (PyTorch `nn.Embedding`): `weight` (V, E); row v is token v's vector.
///
/// Create it on its own and gather it into a model's store with ``ParameterStore/init(gathering:)``, as ``Linear``.
public final class Embedding<Scalar: RecurrentScalar>: ParameterizedLayer {
    /// Vocabulary size V.
    public let vocabularySize: Int
    /// Vector width E.
    public let dimension: Int
    /// The store holding `weight`.
    public private(set) var parameters: ParameterStore<Scalar>
    /// The prefix of this layer's names in ``parameters`` ("" for a standalone layer).
    public private(set) var parameterPrefix: String
    private(set) var weightValues: UnsafeMutablePointer<Scalar>  // (V, E)
    private(set) var weightGradients: UnsafeMutablePointer<Scalar>  // (V, E)
    let buffers = LayerBuffers<Scalar>()  // the Layer forward's vectors

    /// Declares `{prefix}weight` (V, E).
    public static func declareParameters(
        prefix: String, vocabularySize: Int, dimension: Int, into layout: inout ParameterLayout
    ) {
        layout.append("\(prefix)weight", shape: [vocabularySize, dimension])
    }

    /// A standalone table with its own parameters, drawn by `initialization` from `generator`.
    /// - Throws: when a size is below 1.
    public convenience init(
        vocabularySize: Int, dimension: Int, initialization: Initialization = .pytorch, generator: inout SeededGenerator
    ) throws {
        guard vocabularySize >= 1, dimension >= 1 else {
            throw RecurrentKitError("Embedding sizes must be at least 1, got V \(vocabularySize), E \(dimension)")
        }
        var layout = ParameterLayout()
        Self.declareParameters(prefix: "", vocabularySize: vocabularySize, dimension: dimension, into: &layout)
        try self.init(
            prefix: "", vocabularySize: vocabularySize, dimension: dimension, store: ParameterStore(layout: layout))
        initialize(initialization, generator: &generator)
    }

    /// Binds to `{prefix}weight` in `store`.
    public init(prefix: String, vocabularySize: Int, dimension: Int, store: ParameterStore<Scalar>) throws {
        self.vocabularySize = vocabularySize
        self.dimension = dimension
        (parameters, parameterPrefix) = (store, prefix)
        (weightValues, weightGradients) = try Self.resolve(
            store, prefix: prefix, vocabularySize: vocabularySize, dimension: dimension)
    }

    private static func resolve(
        _ store: ParameterStore<Scalar>, prefix: String, vocabularySize: Int, dimension: Int
    ) throws
        -> (UnsafeMutablePointer<Scalar>, UnsafeMutablePointer<Scalar>)
    {
        let w = try store.requireEntry("\(prefix)weight")
        guard w.shape == [vocabularySize, dimension] else {
            throw RecurrentKitError.shapeMismatch(w.name, expected: [vocabularySize, dimension], got: w.shape)
        }
        return (store.values + w.offset, store.gradients + w.offset)
    }

    /// `weight` (V, E).
    public var parameterDeclarations: ParameterLayout {
        var layout = ParameterLayout()
        Self.declareParameters(prefix: "", vocabularySize: vocabularySize, dimension: dimension, into: &layout)
        return layout
    }

    /// Rebinds to `store` under `prefix` (``ParameterStore/init(gathering:)`` calls it after copying the values).
    public func _bind(to store: ParameterStore<Scalar>, prefix: String) throws {
        (weightValues, weightGradients) = try Self.resolve(
            store, prefix: prefix, vocabularySize: vocabularySize, dimension: dimension)
        (parameters, parameterPrefix) = (store, prefix)
    }

    /// The table, (V, E), and its gradient.
    public var weight: ParameterView<Scalar> { ParameterView(store: parameters, name: parameterPrefix + "weight") }

    /// PyTorch's default N(0, 1); d2l-style N(0, 0.01^2).
    public func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
        let scale = initialization == .pytorch || initialization == .orthogonal ? 1.0 : 0.01
        for i in 0..<(vocabularySize * dimension) { weightValues[i] = Scalar(scale * generator.normal()) }
    }

    /// The vectors of `tokens`, (count, E).
    /// - Throws: when a token is outside [0, V).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func callAsFunction(_ tokens: [Int]) throws -> Tensor<Scalar> {
        try checkTokens(tokens)
        var out = Tensor<Scalar>(zeros: [tokens.count, dimension])
        out.scalars.withUnsafeMutableBufferPointer { forward(tokens, into: $0.baseAddress!) }
        return out
    }

    /// Adds dL/dout rows into the table's gradient at each token's row.
    /// - Parameters:
    ///   - tokens: the tokens given to the forward.
    ///   - dOut: (count, E).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func backward(tokens: [Int], outputGradient dOut: Tensor<Scalar>) throws {
        try checkTokens(tokens)
        guard dOut.shape == [tokens.count, dimension] else {
            throw RecurrentKitError.shapeMismatch(
                "Embedding outputGradient", expected: [tokens.count, dimension], got: dOut.shape)
        }
        dOut.scalars.withUnsafeBufferPointer { backward(tokens, outputGradient: $0.baseAddress!) }
    }

    func checkTokens(_ tokens: [Int]) throws {
        for (i, t) in tokens.enumerated() where t < 0 || t >= vocabularySize {
            throw RecurrentKitError("token \(t) at position \(i) is outside [0, \(vocabularySize))")
        }
    }

    /// out (count, E) = rows of the table for `tokens` (already range-checked), into caller-owned memory.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func forward(_ tokens: [Int], into out: UnsafeMutablePointer<Scalar>) {
        for (r, token) in tokens.enumerated() {
            (out + r * dimension).update(from: weightValues + token * dimension, count: dimension)
        }
    }

    /// dW[token] += dOut row, for every position (tokens already range-checked; caller-owned memory).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func backward(_ tokens: [Int], outputGradient dOut: UnsafePointer<Scalar>) {
        for (r, token) in tokens.enumerated() {
            let g = weightGradients + token * dimension, d = dOut + r * dimension
            for j in 0..<dimension { g[j] += d[j] }
        }
    }
}

/// Rows of a tensor whose last dimension must be `width`.
func checkedRows<Scalar>(_ x: Tensor<Scalar>, width: Int, name: String) throws -> Int {
    guard let last = x.shape.last, last == width, x.shape.count >= 2 else {
        throw RecurrentKitError.shapeMismatch(name, expected: [-1, width], got: x.shape)
    }
    return x.scalars.count / width
}
