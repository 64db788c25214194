// The library's parameterized layers as ``Layer``s: their hand-written backwards, chained by containers.

extension Linear: Layer {
    /// x (rows, In) or any shape ending in In.
    public typealias Input = Tensor<Scalar>
    /// y, x's shape with the last dimension Out.
    public typealias Output = Tensor<Scalar>
    /// The input, which dL/dW needs.
    public typealias Record = Tensor<Scalar>

    /// y = x W^T + b; the record keeps x. The output reuses the layer's storage (no allocation once warm).
    public func forward(
        _ input: Tensor<Scalar>, generator: inout SeededGenerator
    ) throws -> (output: Tensor<Scalar>, record: Tensor<Scalar>) {
        let rows = try checkedRows(input, width: inputSize, name: "Linear input")
        buffers.output.prepare(like: input.shape, last: outputSize)
        input.scalars.withUnsafeBufferPointer { x in
            buffers.output.scalars.withUnsafeMutableBufferPointer {
                forward(x.baseAddress!, rows: rows, into: $0.baseAddress!)
            }
        }
        return (buffers.output, input)
    }

    /// Adds dL/dW and dL/db; returns dL/dx (x's shape), in the layer's storage.
    public func backward(_ record: Tensor<Scalar>, outputGradient dy: Tensor<Scalar>) throws -> Tensor<Scalar> {
        let rows = try checkedRows(record, width: inputSize, name: "Linear input")
        guard Tensor<Scalar>.sameLeading(dy.shape, record.shape), dy.shape.last == outputSize else {
            throw RecurrentKitError.shapeMismatch(
                "Linear outputGradient", expected: Array(record.shape.dropLast()) + [outputSize], got: dy.shape)
        }
        buffers.inputGradient.prepare(like: record.shape)
        record.scalars.withUnsafeBufferPointer { x in
            dy.scalars.withUnsafeBufferPointer { g in
                buffers.inputGradient.scalars.withUnsafeMutableBufferPointer {
                    backward(g.baseAddress!, x: x.baseAddress!, rows: rows, inputGradient: $0.baseAddress!)
                }
            }
        }
        return buffers.inputGradient
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
    public func forward(
        _ input: SequenceBatch<Scalar>, generator: inout SeededGenerator
    ) throws -> (output: SequenceBatch<Scalar>, record: [Int]) {
        guard case .oneHot(let tokens, let steps, let batch) = input.input else {
            throw RecurrentKitError("Embedding takes token indices, got dense input")
        }
        guard tokens.count == steps * batch else {
            throw RecurrentKitError("Embedding got \(tokens.count) tokens for steps x batch = \(steps) x \(batch)")
        }
        try checkTokens(tokens)
        if input.layout == .timeMajor {
            buffers.output.prepare(steps, batch, dimension)
        } else {
            buffers.output.prepare(batch, steps, dimension)
        }
        buffers.output.scalars.withUnsafeMutableBufferPointer { forward(tokens, into: $0.baseAddress!) }
        var output = input
        output.input = .dense(buffers.output)
        return (output, tokens)
    }

    /// Adds each step's gradient into its token's row; the input gradient is nil (tokens) and the initial-state
    /// gradient passes through.
    public func backward(
        _ record: [Int], outputGradient: SequenceBatchGradient<Scalar>
    ) throws -> SequenceBatchGradient<Scalar> {
        guard let dense = outputGradient.input else {
            return SequenceBatchGradient(input: nil, initialState: outputGradient.initialState)
        }
        guard dense.count == record.count * dimension, dense.shape.last == dimension else {
            throw RecurrentKitError.shapeMismatch(
                "Embedding outputGradient", expected: [record.count, dimension], got: dense.shape)
        }
        dense.scalars.withUnsafeBufferPointer { backward(record, outputGradient: $0.baseAddress!) }
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
    /// dropout between layers in training mode. A time-major batch goes through the buffer forward, and the output
    /// and final state reuse the network's storage (no allocation once warm).
    public func forward(
        _ input: SequenceBatch<Scalar>, generator: inout SeededGenerator
    ) throws -> (output: RecurrentOutput<Scalar>, record: Record) {
        let dense: Bool
        if case .dense = input.input { dense = true } else { dense = false }
        guard input.layout == .timeMajor else {
            let record = try self(
                input.input, layout: input.layout, initialState: input.initialState, lengths: input.lengths,
                training: isTraining, generator: &generator)
            let output = RecurrentOutput(
                output: try record.output, finalState: try record.finalState, lengths: input.lengths,
                layout: input.layout, directions: configuration.directions)
            return (output, (record, dense))
        }
        let record = try timeMajorForward(input, generator: &generator)
        let D = configuration.outputSize
        layerBuffers.output.prepare(record.steps, record.batch, D)
        try record.withUnsafeOutput { out in
            layerBuffers.output.scalars.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: out) }
        }
        try record.copyFinalState(into: &layerBuffers.state)
        let output = RecurrentOutput(
            output: layerBuffers.output, finalState: layerBuffers.state!, lengths: input.lengths,
            layout: .timeMajor, directions: configuration.directions)
        return (output, (record, dense))
    }

    /// The buffer forward over a time-major batch's tensors.
    private func timeMajorForward(
        _ input: SequenceBatch<Scalar>, generator: inout SeededGenerator
    ) throws -> RecurrentRecord<Scalar> {
        let state = input.initialState
        if let h = state?.h {
            try h.requireShape(
                configuration.stateLayers, batchOf(input), configuration.stateSize, name: "initial state h")
        }
        if configuration.cell.hasCellState, let c = state?.c {
            try c.requireShape(
                configuration.stateLayers, batchOf(input), configuration.hiddenSize, name: "initial state c")
        }
        return try withOptionalPointer(state?.h) { h0 in
            try withOptionalPointer(configuration.cell.hasCellState ? state?.c : nil) { c0 in
                switch input.input {
                case .dense(let x):
                    guard x.shape.count == 3, x.shape[2] == configuration.inputSize else {
                        throw RecurrentKitError.shapeMismatch(
                            "input", expected: [-1, -1, configuration.inputSize], got: x.shape)
                    }
                    return try x.scalars.withUnsafeBufferPointer {
                        try forward(
                            steps: x.shape[0], batch: x.shape[1], input: $0.baseAddress!, tokens: nil,
                            initialHidden: h0, initialCell: c0,
                            lengths: input.lengths, training: isTraining, generator: &generator)
                    }
                case .oneHot(let tokens, let steps, let batch):
                    return try forward(
                        steps: steps, batch: batch, input: nil, tokens: tokens, initialHidden: h0, initialCell: c0,
                        lengths: input.lengths, training: isTraining, generator: &generator)
                }
            }
        }
    }

    private func batchOf(_ input: SequenceBatch<Scalar>) -> Int {
        switch input.input {
        case .dense(let x): return x.shape.count > 1 ? x.shape[1] : 0
        case .oneHot(_, _, let batch): return batch
        }
    }

    /// Backpropagates through time; nil parts of `outputGradient` are zeros.
    /// - Returns: dL/dinput (nil for token input) and dL/dh0 (and dL/dc0), in the network's storage for a time-major
    ///   batch.
    public func backward(
        _ record: Record, outputGradient: RecurrentOutputGradient<Scalar>
    ) throws -> SequenceBatchGradient<Scalar> {
        let r = record.record
        let (T, B, D) = (r.steps, r.batch, configuration.outputSize)
        guard r.layout == .timeMajor else {
            let shape = [r.batch, r.steps, D]
            let result = try backward(
                r, outputGradient: outputGradient.output ?? Tensor(zeros: shape),
                finalStateGradient: outputGradient.finalState)
            return SequenceBatchGradient(
                input: record.dense ? result.inputGradient : nil, initialState: result.initialStateGradient)
        }
        let output: Tensor<Scalar>
        if let given = outputGradient.output {
            try given.requireShape(T, B, D, name: "outputGradient")
            output = given
        } else {
            layerBuffers.innerGradient.prepare(T, B, D)
            layerBuffers.innerGradient.zeroAll()
            output = layerBuffers.innerGradient
        }
        let (L, R, H) = (configuration.stateLayers, configuration.stateSize, configuration.hiddenSize)
        if let final = outputGradient.finalState {
            try final.h.requireShape(L, B, R, name: "finalStateGradient.h")
            if configuration.cell.hasCellState, let c = final.c {
                try c.requireShape(L, B, H, name: "finalStateGradient.c")
            }
        }
        if record.dense { layerBuffers.inputGradient.prepare(T, B, configuration.inputSize) }
        var initial = layerBuffers.stateGradient ?? RecurrentState(zerosFor: configuration, batch: B)
        layerBuffers.stateGradient = nil  // `initial` is then the only reference: written in place
        initial.h.prepare(L, B, R)
        if configuration.cell.hasCellState {
            if initial.c == nil { initial.c = Tensor(zeros: [L, B, H]) }
            initial.c!.prepare(L, B, H)
        } else {
            initial.c = nil
        }
        try output.scalars.withUnsafeBufferPointer { dOut in
            try withOptionalPointer(outputGradient.finalState?.h) { dh in
                try withOptionalPointer(configuration.cell.hasCellState ? outputGradient.finalState?.c : nil) { dc in
                    try initial.h.scalars.withUnsafeMutableBufferPointer { dh0 in
                        try withOptionalMutablePointer(&initial.c) { dc0 in
                            if record.dense {
                                try layerBuffers.inputGradient.scalars.withUnsafeMutableBufferPointer { dx in
                                    try backward(
                                        r, outputGradient: dOut.baseAddress!, finalHiddenGradient: dh,
                                        finalCellGradient: dc,
                                        inputGradient: dx.baseAddress!, initialHiddenGradient: dh0.baseAddress!,
                                        initialCellGradient: dc0)
                                }
                            } else {
                                try backward(
                                    r, outputGradient: dOut.baseAddress!, finalHiddenGradient: dh,
                                    finalCellGradient: dc,
                                    initialHiddenGradient: dh0.baseAddress!, initialCellGradient: dc0)
                            }
                        }
                    }
                }
            }
        }
        layerBuffers.stateGradient = initial
        return SequenceBatchGradient(input: record.dense ? layerBuffers.inputGradient : nil, initialState: initial)
    }

    /// Training mode switches the dropout between layers on.
    public func setTraining(_ training: Bool) { isTraining = training }
}
