/// A fully connected layer y = x W^T + b (PyTorch `nn.Linear`): `weight` (Out, In), `bias` (Out).
public struct Linear<Scalar: RecurrentScalar> {
    /// Input features In.
    public let inputSize: Int
    /// Output features Out.
    public let outputSize: Int
    private let store: ParameterStore<Scalar> // keeps the memory behind the pointers alive
    let weight: UnsafeMutablePointer<Scalar>      // (Out, In)
    let bias: UnsafeMutablePointer<Scalar>        // (Out)
    let gradWeight: UnsafeMutablePointer<Scalar>  // (Out, In)
    let gradBias: UnsafeMutablePointer<Scalar>    // (Out)

    /// Declares `{prefix}weight` (Out, In) and `{prefix}bias` (Out).
    public static func declareParameters(prefix: String, inputSize: Int, outputSize: Int, into layout: inout ParameterLayout) {
        layout.append("\(prefix)weight", shape: [outputSize, inputSize])
        layout.append("\(prefix)bias", shape: [outputSize])
    }

    /// Binds to the parameters declared under `prefix` in `store`.
    public init(prefix: String, inputSize: Int, outputSize: Int, store: ParameterStore<Scalar>) throws {
        let w = try store.requireEntry("\(prefix)weight"), b = try store.requireEntry("\(prefix)bias")
        guard w.shape == [outputSize, inputSize] else { throw RecurrentKitError.shapeMismatch(w.name, expected: [outputSize, inputSize], got: w.shape) }
        guard b.shape == [outputSize] else { throw RecurrentKitError.shapeMismatch(b.name, expected: [outputSize], got: b.shape) }
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.store = store
        weight = store.values + w.offset
        bias = store.values + b.offset
        gradWeight = store.gradients + w.offset
        gradBias = store.gradients + b.offset
    }

    /// PyTorch's default: weight and bias from U(-1/sqrt(In), 1/sqrt(In)); d2l's scratch models: N(0, 0.01^2) weight, zero bias.
    public func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
        switch initialization {
        case .pytorch:
            let bound = 1 / Double(inputSize).squareRoot()
            for i in 0..<(outputSize * inputSize) { weight[i] = Scalar(generator.uniform(-bound, bound)) }
            for i in 0..<outputSize { bias[i] = Scalar(generator.uniform(-bound, bound)) }
        case .d2l, .identity:
            for i in 0..<(outputSize * inputSize) { weight[i] = Scalar(0.01 * generator.normal()) }
            bias.update(repeating: 0, count: outputSize)
        }
    }

    /// y (rows, Out) = x (rows, In) W^T + b.
    func forward(_ x: UnsafePointer<Scalar>, rows: Int, into y: UnsafeMutablePointer<Scalar>) {
        fillRows(y, rows: rows, with: bias, width: outputSize)
        Scalar.gemm(transA: false, transB: true, m: rows, n: outputSize, k: inputSize,
                    alpha: 1, a: x, lda: inputSize, b: weight, ldb: inputSize, beta: 1, c: y, ldc: outputSize)
    }

    /// dW += dy^T x, db += column sums of dy; dx (rows, In) = dy W (overwritten) when non-nil.
    func backward(_ dy: UnsafePointer<Scalar>, x: UnsafePointer<Scalar>, rows: Int, inputGradient dx: UnsafeMutablePointer<Scalar>?) {
        Scalar.gemm(transA: true, transB: false, m: outputSize, n: inputSize, k: rows,
                    alpha: 1, a: dy, lda: outputSize, b: x, ldb: inputSize, beta: 1, c: gradWeight, ldc: inputSize)
        addColumnSums(of: dy, rows: rows, width: outputSize, into: gradBias)
        if let dx {
            Scalar.gemm(transA: false, transB: false, m: rows, n: inputSize, k: outputSize,
                        alpha: 1, a: dy, lda: outputSize, b: weight, ldb: inputSize, beta: 0, c: dx, ldc: inputSize)
        }
    }
}

/// A lookup table of vectors (PyTorch `nn.Embedding`): `weight` (V, E); row v is token v's vector.
public struct Embedding<Scalar: RecurrentScalar> {
    /// Vocabulary size V.
    public let vocabularySize: Int
    /// Vector width E.
    public let dimension: Int
    private let store: ParameterStore<Scalar> // keeps the memory behind the pointers alive
    let weight: UnsafeMutablePointer<Scalar>      // (V, E)
    let gradWeight: UnsafeMutablePointer<Scalar>  // (V, E)

    /// Declares `{prefix}weight` (V, E).
    public static func declareParameters(prefix: String, vocabularySize: Int, dimension: Int, into layout: inout ParameterLayout) {
        layout.append("\(prefix)weight", shape: [vocabularySize, dimension])
    }

    /// Binds to `{prefix}weight` in `store`.
    public init(prefix: String, vocabularySize: Int, dimension: Int, store: ParameterStore<Scalar>) throws {
        let w = try store.requireEntry("\(prefix)weight")
        guard w.shape == [vocabularySize, dimension] else { throw RecurrentKitError.shapeMismatch(w.name, expected: [vocabularySize, dimension], got: w.shape) }
        self.vocabularySize = vocabularySize
        self.dimension = dimension
        self.store = store
        weight = store.values + w.offset
        gradWeight = store.gradients + w.offset
    }

    /// PyTorch's default N(0, 1); d2l-style N(0, 0.01^2).
    public func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
        let scale = initialization == .pytorch ? 1.0 : 0.01
        for i in 0..<(vocabularySize * dimension) { weight[i] = Scalar(scale * generator.normal()) }
    }

    /// out (count, E) = rows of the table for `tokens` (already range-checked).
    func forward(_ tokens: [Int], into out: UnsafeMutablePointer<Scalar>) {
        for (r, token) in tokens.enumerated() { (out + r * dimension).update(from: weight + token * dimension, count: dimension) }
    }

    /// dW[token] += dOut row, for every position.
    func backward(_ tokens: [Int], outputGradient dOut: UnsafePointer<Scalar>) {
        for (r, token) in tokens.enumerated() {
            let g = gradWeight + token * dimension, d = dOut + r * dimension
            for j in 0..<dimension { g[j] += d[j] }
        }
    }
}
