// The stack's tensor conveniences over the buffer forward/backward: checked inputs, copies of outputs and states.

extension RecurrentNetwork {
    // MARK: - The tensor forms behind the public checked pair (RecurrentNetwork+Calls.swift)

    /// Checks `input` and `initialState` and runs the buffer forward on them.
    func runForward(
        _ input: RecurrentInput<Scalar>, initialState: RecurrentState<Scalar>?, lengths: [Int]? = nil, training: Bool,
        generator: inout SeededGenerator
    ) throws {
        let (T, B) = try checkInput(input)
        let L = configuration.stateLayers, H = configuration.hiddenSize, R = configuration.stateSize
        if let state = initialState {
            try state.h.requireShape(L, B, R, name: "h0")
            if configuration.cell.hasCellState, let c = state.c { try c.requireShape(L, B, H, name: "c0") }
        }
        try withInputPointer(input) { inputPointer, tokens in
            try withOptionalPointer(initialState?.h) { h0 in
                try withOptionalPointer(configuration.cell.hasCellState ? initialState?.c : nil) { c0 in
                    try forward(
                        steps: T, batch: B, input: inputPointer, tokens: tokens, h0: h0, c0: c0, lengths: lengths,
                        training: training, generator: &generator)
                }
            }
        }
    }

    /// Backpropagates through the last forward (the public backward checks its record first, then calls this).
    /// - Parameters:
    ///   - outputGradient: dL/dh_t of the last layer for every step, (T, B, directions x H).
    ///   - finalStateGradient: dL/dh_n (and dL/dc_n), (directions x L, B, H); zeros when nil.
    ///   - truncation: how far the recurrent gradient travels back in time; full by default.
    /// - Returns: dL/dinput (T, B, I) (nil for one-hot input) and dL/dh0 (and dL/dc0), (directions x L, B, H).
    ///   Parameter gradients are added into `parameters.gradients`.
    func runBackward(
        outputGradient: Tensor<Scalar>,
        finalStateGradient: RecurrentState<Scalar>? = nil,
        truncation: BackwardTruncation = .none
    ) throws -> (inputGradient: Tensor<Scalar>?, initialStateGradient: RecurrentState<Scalar>) {
        let T = cachedSteps, B = cachedBatch
        guard T > 0 else { throw RecurrentKitError("backward called without a forward pass") }
        let L = configuration.stateLayers, H = configuration.hiddenSize, R = configuration.stateSize,
            I = configuration.inputSize
        try outputGradient.requireShape(T, B, configuration.outputSize, name: "outputGradient")
        if let g = finalStateGradient {
            try g.h.requireShape(L, B, R, name: "finalStateGradient.h")
            if let c = g.c { try c.requireShape(L, B, H, name: "finalStateGradient.c") }
        }
        let dense = !cachedOneHot
        var inputGradient = dense ? Tensor<Scalar>(zeros: [T, B, I]) : nil
        var dh0 = Tensor<Scalar>(zeros: [L, B, R])
        var dc0: Tensor<Scalar>? = configuration.cell.hasCellState ? Tensor(zeros: [L, B, H]) : nil
        try outputGradient.scalars.withUnsafeBufferPointer { dOut in
            try withOptionalPointer(finalStateGradient?.h) { dhn in
                try withOptionalPointer(configuration.cell.hasCellState ? finalStateGradient?.c : nil) { dcn in
                    try dh0.scalars.withUnsafeMutableBufferPointer { dh0p in
                        try withOptionalMutablePointer(&dc0) { dc0p in
                            try withOptionalMutablePointer(&inputGradient) { dx in
                                try backward(
                                    outputGradient: dOut.baseAddress!, finalHiddenGradient: dhn,
                                    finalCellGradient: dcn, inputGradient: dx,
                                    initialHiddenGradient: dh0p.baseAddress!, initialCellGradient: dc0p,
                                    truncation: truncation)
                            }
                        }
                    }
                }
            }
        }
        return (inputGradient, RecurrentState(h: dh0, c: dc0))
    }

    /// Every h_t of the last layer from the cached forward, (T, B, directions x H).
    public func outputTensor() throws -> Tensor<Scalar> {
        let T = cachedSteps, B = cachedBatch, H = configuration.outputSize
        guard T > 0 else { throw RecurrentKitError("no forward pass has run") }
        return try Tensor(shape: [T, B, H], scalars: Array(UnsafeBufferPointer(start: output, count: T * B * H)))
    }

    /// Final h (and c) of every layer from the cached forward, (directions x L, B, H); a plain value, so carrying it
    /// into the next chunk cuts the gradient path (truncated BPTT).
    public func finalState() throws -> RecurrentState<Scalar> {
        var state: RecurrentState<Scalar>? = nil
        try copyFinalState(into: &state)
        return state!
    }

    /// Writes the final state (as ``finalState()``) into `state`, reusing its storage when the shapes already match,
    /// so a training loop that carries the state allocates nothing.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func copyFinalState(into state: inout RecurrentState<Scalar>?) throws {
        let B = cachedBatch, H = configuration.hiddenSize, R = configuration.stateSize, L = configuration.stateLayers
        guard cachedSteps > 0 else { throw RecurrentKitError("no forward pass has run") }
        let hasCell = configuration.cell.hasCellState
        var current: RecurrentState<Scalar>
        if let given = state, given.h.hasShape(L, B, R), hasCell ? given.c?.hasShape(L, B, H) == true : given.c == nil {
            current = given
            state = nil  // leave `current` the only reference, so the writes below happen in place
        } else {
            current = RecurrentState(zerosFor: configuration, batch: B)
        }
        current.h.scalars.withUnsafeMutableBufferPointer { h in
            withOptionalMutablePointer(&current.c) { c in copyFinalState(hidden: h.baseAddress!, cell: c) }
        }
        state = current
    }

    /// Copies the cached forward's h_T of every state row into `hidden` (directions x L, B, R) and, for the LSTM when
    /// non-nil, c_T into `cell` (directions x L, B, H).
    func copyFinalState(hidden: UnsafeMutablePointer<Scalar>, cell: UnsafeMutablePointer<Scalar>?) {
        let BR = cachedBatch * configuration.stateSize, BH = cachedBatch * configuration.hiddenSize
        for k in 0..<configuration.stateLayers {
            (hidden + k * BR).update(from: finalHidden(layer: k), count: BR)
            if let cell, configuration.cell.hasCellState {
                (cell + k * BH).update(from: finalCell(layer: k), count: BH)
            }
        }
    }

    // MARK: - Input checks

    private func checkInput(_ input: RecurrentInput<Scalar>) throws -> (Int, Int) {
        switch input {
        case .dense(let x):
            guard x.shape.count == 3, x.shape[2] == configuration.inputSize else {
                throw RecurrentKitError.shapeMismatch(
                    "input", expected: [-1, -1, configuration.inputSize], got: x.shape)
            }
            guard x.shape[0] >= 1, x.shape[1] >= 1 else {
                throw RecurrentKitError("input has shape \(x.shape): T and B must be at least 1")
            }
            return (x.shape[0], x.shape[1])
        case .oneHot(let tokens, let steps, let batch):
            guard steps >= 1 else { throw RecurrentKitError.invalidArgument("steps", steps, "must be at least 1") }
            guard batch >= 1 else { throw RecurrentKitError.invalidArgument("batch", batch, "must be at least 1") }
            guard tokens.count == steps * batch else {
                throw RecurrentKitError(
                    "one-hot input has \(tokens.count) indices, expected steps*batch = \(steps * batch)")
            }
            return (steps, batch)
        }
    }

    private func withInputPointer<R>(
        _ input: RecurrentInput<Scalar>, _ body: (UnsafePointer<Scalar>?, [Int]?) throws -> R
    ) rethrows -> R {
        switch input {
        case .dense(let x): return try x.scalars.withUnsafeBufferPointer { try body($0.baseAddress!, nil) }
        case .oneHot(let tokens, _, _): return try body(nil, tokens)
        }
    }
}
