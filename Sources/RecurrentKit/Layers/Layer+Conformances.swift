// The library's parameterized layers as ``Layer``s: their hand-written backwards, chained by containers.

extension Linear: Layer {
    /// x (rows, In) or any shape ending in In.
    public typealias Input = Tensor<Scalar>
    /// y, x's shape with the last dimension Out.
    public typealias Output = Tensor<Scalar>
    /// The input, which dL/dW needs.
    public typealias Record = Tensor<Scalar>

    /// y = x W^T + b; the record keeps x.
    public func forward(_ input: Tensor<Scalar>, generator: inout SeededGenerator) throws -> (output: Tensor<Scalar>, record: Tensor<Scalar>) {
        (try self(input), input)
    }

    /// Adds dL/dW and dL/db; returns dL/dx (x's shape).
    public func backward(_ record: Tensor<Scalar>, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try backward(input: record, outputGradient: outputGradient)
    }
}

extension Embedding: Layer {
    /// Token sequences (``SequenceBatch/init(tokens:steps:batch:lengths:layout:initialState:)``).
    public typealias Input = SequenceBatch<Scalar>
    /// The same batch with dense vectors, (T, B, E) or (B, T, E) in the tokens' layout; lengths and initial state
    /// pass through unchanged.
    public typealias Output = SequenceBatch<Scalar>
    /// The tokens, whose rows receive the gradient.
    public typealias Record = [Int]

    /// Looks up every token's vector.
    /// - Throws: for dense input or a token outside [0, V).
    public func forward(_ input: SequenceBatch<Scalar>, generator: inout SeededGenerator) throws -> (output: SequenceBatch<Scalar>, record: [Int]) {
        guard case .oneHot(let tokens, let steps, let batch) = input.input else {
            throw RecurrentKitError("Embedding takes token indices, got dense input")
        }
        guard tokens.count == steps * batch else {
            throw RecurrentKitError("Embedding got \(tokens.count) tokens for steps x batch = \(steps) x \(batch)")
        }
        let vectors = try self(tokens)
        let shape = input.layout == .timeMajor ? [steps, batch, dimension] : [batch, steps, dimension]
        var output = input
        output.input = .dense(try vectors.reshaped(shape))
        return (output, tokens)
    }

    /// Adds each step's gradient into its token's row; the input gradient is nil (tokens) and the initial-state
    /// gradient passes through.
    public func backward(_ record: [Int], outputGradient: SequenceBatchGradient<Scalar>) throws -> SequenceBatchGradient<Scalar> {
        guard let dense = outputGradient.input else { return SequenceBatchGradient(input: nil, initialState: outputGradient.initialState) }
        try backward(tokens: record, outputGradient: try dense.reshaped([record.count, dimension]))
        return SequenceBatchGradient(input: nil, initialState: outputGradient.initialState)
    }
}

extension RecurrentNetwork: Layer {
    /// Dense features or token indices (read as one-hot), with optional lengths, layout and initial state.
    public typealias Input = SequenceBatch<Scalar>
    /// Every step of the last layer and every layer's final state.
    public typealias Output = RecurrentOutput<Scalar>
    /// This network's record (stale after its next forward) and whether the input was dense.
    public typealias Record = (record: RecurrentRecord<Scalar>, dense: Bool)

    /// Runs every layer over the batch (``callAsFunction(_:layout:initialState:lengths:training:generator:)``), with
    /// dropout between layers in training mode.
    public func forward(_ input: SequenceBatch<Scalar>, generator: inout SeededGenerator) throws -> (output: RecurrentOutput<Scalar>, record: Record) {
        let record = try self(input.input, layout: input.layout, initialState: input.initialState, lengths: input.lengths,
                              training: isTraining, generator: &generator)
        let output = RecurrentOutput(output: try record.output, finalState: try record.finalState, lengths: input.lengths,
                                     layout: input.layout, directions: configuration.directions)
        if case .dense = input.input { return (output, (record, true)) }
        return (output, (record, false))
    }

    /// Backpropagates through time; nil parts of `outputGradient` are zeros.
    /// - Returns: dL/dinput (nil for token input) and dL/dh0 (and dL/dc0).
    public func backward(_ record: Record, outputGradient: RecurrentOutputGradient<Scalar>) throws -> SequenceBatchGradient<Scalar> {
        let r = record.record
        let shape = r.layout == .timeMajor ? [r.steps, r.batch, configuration.outputSize] : [r.batch, r.steps, configuration.outputSize]
        let result = try backward(r, outputGradient: outputGradient.output ?? Tensor(zeros: shape), finalStateGradient: outputGradient.finalState)
        return SequenceBatchGradient(input: record.dense ? result.inputGradient : nil, initialState: result.initialStateGradient)
    }

    /// Training mode switches the dropout between layers on.
    public func setTraining(_ training: Bool) { isTraining = training }
}
