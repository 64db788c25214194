/// A fully connected layer y = x W^T + b (PyTorch `nn.Linear`): `weight` (Out, In), `bias` (Out) unless made with
/// `bias: false`.
///
/// Create it on its own (it then owns a small store) and gather it with the other layers of a model into one store
/// with ``ParameterStore/init(gathering:)``; its parameters are reached through ``weight`` and ``bias``, never by name.
public final class Linear<Scalar: RecurrentScalar>: ParameterizedLayer {
    /// Input features In.
    public let inputSize: Int
    /// Output features Out.
    public let outputSize: Int
    /// The store holding `weight` and `bias` (shared with the rest of a gathered model).
    public private(set) var parameters: ParameterStore<Scalar>
    /// The prefix of this layer's names in ``parameters`` ("" for a standalone layer, e.g. "head." once gathered).
    public private(set) var parameterPrefix: String
    /// Whether the layer adds a bias (PyTorch `bias`).
    public let hasBias: Bool
    private let absentBias = Workspace<Scalar>()  // without a bias: zeros (Out), then gradient scratch (Out)
    let buffers = LayerBuffers<Scalar>()  // the Layer forward's output and backward's dx
    private(set) var weightValues: UnsafeMutablePointer<Scalar>  // (Out, In)
    private(set) var biasValues: UnsafeMutablePointer<Scalar>  // (Out)
    private(set) var weightGradients: UnsafeMutablePointer<Scalar>  // (Out, In)
    private(set) var biasGradients: UnsafeMutablePointer<Scalar>  // (Out)

    /// Declares `{prefix}weight` (Out, In) and, with `bias`, `{prefix}bias` (Out).
    public static func declareParameters(
        prefix: String, inputSize: Int, outputSize: Int, bias: Bool = true, into layout: inout ParameterLayout
    ) {
        layout.append("\(prefix)weight", shape: [outputSize, inputSize])
        if bias { layout.append("\(prefix)bias", shape: [outputSize]) }
    }

    /// A standalone layer with its own parameters, drawn by `initialization` from `generator`.
    /// - Throws: when a size is below 1.
    public convenience init(
        inputSize: Int, outputSize: Int, bias: Bool = true, initialization: Initialization = .pytorch,
        generator: inout SeededGenerator
    ) throws {
        guard inputSize >= 1, outputSize >= 1 else {
            throw RecurrentKitError("Linear sizes must be at least 1, got In \(inputSize), Out \(outputSize)")
        }
        var layout = ParameterLayout()
        Self.declareParameters(prefix: "", inputSize: inputSize, outputSize: outputSize, bias: bias, into: &layout)
        try self.init(
            prefix: "", inputSize: inputSize, outputSize: outputSize, bias: bias, store: ParameterStore(layout: layout))
        initialize(initialization, generator: &generator)
    }

    /// Binds to the parameters declared under `prefix` in `store` (`{prefix}bias` only with `bias`).
    public init(
        prefix: String, inputSize: Int, outputSize: Int, bias: Bool = true, store: ParameterStore<Scalar>
    ) throws {
        self.inputSize = inputSize
        self.outputSize = outputSize
        hasBias = bias
        (parameters, parameterPrefix) = (store, prefix)
        (weightValues, biasValues, weightGradients, biasGradients) = (
            store.values, store.values, store.gradients, store.gradients
        )
        try resolve(store, prefix: prefix)
    }

    /// Points at `weight` (and `bias`) under `prefix` in `store`; without a bias, at zeros and unread scratch.
    private func resolve(_ store: ParameterStore<Scalar>, prefix: String) throws {
        let w = try store.requireEntry("\(prefix)weight")
        guard w.shape == [outputSize, inputSize] else {
            throw RecurrentKitError.shapeMismatch(w.name, expected: [outputSize, inputSize], got: w.shape)
        }
        if hasBias {
            let b = try store.requireEntry("\(prefix)bias")
            guard b.shape == [outputSize] else {
                throw RecurrentKitError.shapeMismatch(b.name, expected: [outputSize], got: b.shape)
            }
            (biasValues, biasGradients) = (store.values + b.offset, store.gradients + b.offset)
        } else {
            let zeros = absentBias.reserve(2 * outputSize)
            zeros.update(repeating: 0, count: 2 * outputSize)
            (biasValues, biasGradients) = (zeros, zeros + outputSize)
        }
        (weightValues, weightGradients) = (store.values + w.offset, store.gradients + w.offset)
    }

    /// `weight` (Out, In) and `bias` (Out), in `state_dict` order.
    public var parameterDeclarations: ParameterLayout {
        var layout = ParameterLayout()
        Self.declareParameters(prefix: "", inputSize: inputSize, outputSize: outputSize, bias: hasBias, into: &layout)
        return layout
    }

    /// Rebinds to `store` under `prefix` (``ParameterStore/init(gathering:)`` calls it after copying the values).
    public func _bind(to store: ParameterStore<Scalar>, prefix: String) throws {
        try resolve(store, prefix: prefix)
        (parameters, parameterPrefix) = (store, prefix)
    }

    /// The weight W, (Out, In), and its gradient.
    public var weight: ParameterView<Scalar> { ParameterView(store: parameters, name: parameterPrefix + "weight") }
    /// The bias b, (Out), and its gradient; nil for a layer made with `bias: false`.
    public var bias: ParameterView<Scalar>? {
        hasBias ? ParameterView(store: parameters, name: parameterPrefix + "bias") : nil
    }

    /// PyTorch's default: weight and bias from U(-1/sqrt(In), 1/sqrt(In)); d2l's scratch models: N(0, 0.01^2) weight,
    /// zero bias.
    public func initialize(_ initialization: Initialization, generator: inout SeededGenerator) {
        switch initialization {
        case .pytorch, .orthogonal:
            let bound = 1 / Double(inputSize).squareRoot()
            for i in 0..<(outputSize * inputSize) { weightValues[i] = Scalar(generator.uniform(-bound, bound)) }
            if hasBias { for i in 0..<outputSize { biasValues[i] = Scalar(generator.uniform(-bound, bound)) } }
        case .d2l, .identity:
            for i in 0..<(outputSize * inputSize) { weightValues[i] = Scalar(0.01 * generator.normal()) }
            if hasBias { biasValues.update(repeating: 0, count: outputSize) }
        }
    }

    /// y = x W^T + b for a batch of rows.
    /// - Parameter x: (rows, In), or any shape whose last dimension is In (e.g. (T, B, In)).
    /// - Returns: y with the last dimension Out.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func callAsFunction(_ x: Tensor<Scalar>) throws -> Tensor<Scalar> {
        let rows = try checkedRows(x, width: inputSize, name: "Linear input")
        var y = Tensor<Scalar>(zeros: Array(x.shape.dropLast()) + [outputSize])
        x.scalars.withUnsafeBufferPointer { xs in
            y.scalars.withUnsafeMutableBufferPointer { forward(xs.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        return y
    }

    /// Adds dL/dW = dy^T x and dL/db = column sums of dy to the gradients, and returns dL/dx = dy W.
    /// - Parameters:
    ///   - x: the input given to the forward, (rows, In) or any shape ending in In.
    ///   - dy: dL/dy, x's shape with the last dimension Out.
    /// - Returns: dL/dx, x's shape.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func backward(input x: Tensor<Scalar>, outputGradient dy: Tensor<Scalar>) throws -> Tensor<Scalar> {
        let rows = try checkedRows(x, width: inputSize, name: "Linear input")
        guard dy.shape == Array(x.shape.dropLast()) + [outputSize] else {
            throw RecurrentKitError.shapeMismatch(
                "Linear outputGradient", expected: Array(x.shape.dropLast()) + [outputSize], got: dy.shape)
        }
        var dx = Tensor<Scalar>(zeros: x.shape)
        x.scalars.withUnsafeBufferPointer { xs in
            dy.scalars.withUnsafeBufferPointer { dys in
                dx.scalars.withUnsafeMutableBufferPointer {
                    backward(dys.baseAddress!, x: xs.baseAddress!, rows: rows, inputGradient: $0.baseAddress!)
                }
            }
        }
        return dx
    }

    /// y (rows, Out) = x (rows, In) W^T + b, into caller-owned memory (the allocation-free path).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func forward(_ x: UnsafePointer<Scalar>, rows: Int, into y: UnsafeMutablePointer<Scalar>) {
        fillRows(y, rows: rows, with: biasValues, width: outputSize)
        Scalar.gemm(
            transA: false, transB: true, m: rows, n: outputSize, k: inputSize,
            alpha: 1, a: x, lda: inputSize, b: weightValues, ldb: inputSize, beta: 1, c: y, ldc: outputSize)
    }

    /// dW += dy^T x, db += column sums of dy; dx (rows, In) = dy W (overwritten) when non-nil. Caller-owned memory.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func backward(
        _ dy: UnsafePointer<Scalar>, x: UnsafePointer<Scalar>, rows: Int,
        inputGradient dx: UnsafeMutablePointer<Scalar>?
    ) {
        Scalar.gemm(
            transA: true, transB: false, m: outputSize, n: inputSize, k: rows,
            alpha: 1, a: dy, lda: outputSize, b: x, ldb: inputSize, beta: 1, c: weightGradients, ldc: inputSize)
        addColumnSums(of: dy, rows: rows, width: outputSize, into: biasGradients)
        if let dx {
            Scalar.gemm(
                transA: false, transB: false, m: rows, n: inputSize, k: outputSize,
                alpha: 1, a: dy, lda: outputSize, b: weightValues, ldb: inputSize, beta: 0, c: dx, ldc: inputSize)
        }
    }
}
