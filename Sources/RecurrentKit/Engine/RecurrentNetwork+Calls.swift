// The network's public calls: the checked pair (a forward returns a record, the backward consumes it) over tensors in
// either layout, and the input-projection table token-by-token decoding reads.

extension RecurrentNetwork {
    /// Runs every layer over the sequence and returns the record that
    /// ``backward(_:outputGradient:finalStateGradient:truncation:)`` consumes. The record stays valid until the next
    /// forward of this network: a stale record, or one made by another network, is refused instead of silently pairing
    /// the backward with another forward.
    /// - Parameters:
    ///   - input: (T, B, I) dense features, or (T, B) one-hot indices; (B, T, I) and (B, T) with `layout: .batchFirst`.
    ///   - layout: ``SequenceLayout/timeMajor`` (default) or ``SequenceLayout/batchFirst`` (PyTorch `batch_first=True`);
    ///     the record's output and the gradients passed to and returned by the backward use the same layout.
    ///   - initialState: h0 (directions x L, B, H) and, for the LSTM, c0 (directions x L, B, H); zeros when nil (never batch-first, as PyTorch).
    ///   - lengths: for a variable-length batch, B lengths in [1, T] in any order (PyTorch `pack_padded_sequence` with
    ///     `enforce_sorted=False`): row b runs its first lengths[b] steps; its output is zero after them, its final state is
    ///     the state at its own last step (the reverse direction starts there), and padded positions take no part in any
    ///     gradient. Nil: every row runs all T steps.
    ///   - training: applies dropout between layers when true and `dropout > 0`; nil (default) follows the network's
    ///     mode, ``isTraining`` (true until ``setTraining(_:)`` turns it off, as PyTorch's `train()`/`eval()`).
    ///   - generator: draws the dropout masks.
    public func callAsFunction(
        _ input: RecurrentInput<Scalar>, layout: SequenceLayout = .timeMajor,
        initialState: RecurrentState<Scalar>? = nil,
        lengths: [Int]? = nil, training: Bool? = nil, generator: inout SeededGenerator
    ) throws -> RecurrentRecord<Scalar> {
        var timeMajor = input
        if layout == .batchFirst {
            switch input {
            case .dense(let x):
                guard x.shape.count == 3 else {
                    throw RecurrentKitError.shapeMismatch(
                        "input", expected: [-1, -1, configuration.inputSize], got: x.shape)
                }
                timeMajor = .dense(try x.swappingFirstTwoAxes())
            case .oneHot(let tokens, let steps, let batch):
                guard tokens.count == steps * batch, steps >= 1, batch >= 1 else {
                    throw RecurrentKitError(
                        "one-hot input has \(tokens.count) indices, expected steps*batch = \(steps) x \(batch)")
                }
                timeMajor = .oneHot(
                    tokens: (0..<(steps * batch)).map { tokens[($0 % batch) * steps + $0 / batch] }, steps: steps,
                    batch: batch)
            }
        }
        try runForward(
            timeMajor, initialState: initialState, lengths: lengths, training: training ?? isTraining,
            generator: &generator)
        return RecurrentRecord(
            network: self, generation: forwardGeneration, steps: cachedSteps, batch: cachedBatch, layout: layout,
            lengths: lengths)
    }

    /// Backpropagates through the forward that made `record`: adds every parameter gradient into `parameters.gradients`
    /// (zero them first, e.g. with ``ParameterStore/zeroGradients()``) and returns the gradients of the inputs.
    /// - Parameters:
    ///   - record: what this network's latest forward returned.
    ///   - outputGradient: dL/dh_t of the last layer for every step, (T, B, directions x H), or (B, T, directions x H) for a batch-first record;
    ///     values at the padded positions of a variable-length batch are ignored.
    ///   - finalStateGradient: dL/dh_T (and dL/dc_T), (directions x L, B, H); zeros when nil.
    ///   - truncation: how far the recurrent gradient travels back in time; full by default.
    /// - Returns: dL/dinput in the record's layout (nil for one-hot input) and dL/dh0 (and dL/dc0), (directions x L, B, H).
    /// - Throws: when `record` comes from another network or a later forward has run since, or on a shape mismatch.
    public func backward(
        _ record: RecurrentRecord<Scalar>, outputGradient: Tensor<Scalar>,
        finalStateGradient: RecurrentState<Scalar>? = nil,
        truncation: BackwardTruncation = .none
    ) throws
        -> (inputGradient: Tensor<Scalar>?, initialStateGradient: RecurrentState<Scalar>)
    {
        try check(record)
        guard record.layout == .batchFirst else {
            return try runBackward(
                outputGradient: outputGradient, finalStateGradient: finalStateGradient, truncation: truncation)
        }
        guard outputGradient.shape.count == 3 else {
            throw RecurrentKitError.shapeMismatch(
                "outputGradient", expected: [record.batch, record.steps, configuration.outputSize],
                got: outputGradient.shape)
        }
        let result = try runBackward(
            outputGradient: try outputGradient.swappingFirstTwoAxes(), finalStateGradient: finalStateGradient,
            truncation: truncation)
        return (try result.inputGradient?.swappingFirstTwoAxes(), result.initialStateGradient)
    }

    // MARK: - Buffers (llm.c style: nothing allocated at a fixed size)

    /// The forward over caller-owned, time-major buffers; allocates nothing once the network's workspaces have grown
    /// to this size. Everything else as ``callAsFunction(_:layout:initialState:lengths:training:generator:)``.
    /// - Parameters:
    ///   - T: steps (>= 1).
    ///   - B: batch rows (>= 1).
    ///   - input: (T, B, I) dense features, or nil with `tokens`.
    ///   - tokens: T*B indices in [0, I), time-major, read as one-hot rows (nil with dense `input`).
    ///   - initialHidden: h0 (directions x L, B, R) or nil for zeros (R = ``RecurrentConfiguration/stateSize``). Copied before any workspace changes, so it may point into
    ///     this network's previous final state.
    ///   - initialCell: c0 (directions x L, B, H) for the LSTM, or nil for zeros (copied like `initialHidden`).
    ///   - lengths: B sequence lengths in [1, T] for a variable-length batch, or nil (see
    ///     ``callAsFunction(_:layout:initialState:lengths:training:generator:)``).
    ///   - inputProjections: instead of `input` or `tokens`, layer 0's projections W_ih x_t + b_ih, (T, B, G*H), e.g.
    ///     rows of ``inputProjectionTable(embedding:vocabularySize:into:)`` (inference only: such a forward has no backward).
    ///   - training: applies dropout between layers when true and `dropout > 0`; nil (default) follows the network's
    ///     mode, ``isTraining`` (true until ``setTraining(_:)`` turns it off, as PyTorch's `train()`/`eval()`).
    ///   - generator: draws the dropout masks.
    /// - Returns: the record of this forward (its output lives in the network's workspace, see
    ///   ``RecurrentRecord/withUnsafeOutput(_:)``).
    @discardableResult
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func forward(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?,
        initialHidden: UnsafePointer<Scalar>? = nil, initialCell: UnsafePointer<Scalar>? = nil, lengths: [Int]? = nil,
        inputProjections: UnsafePointer<Scalar>? = nil,
        training: Bool? = nil, generator: inout SeededGenerator
    ) throws -> RecurrentRecord<Scalar> {
        try forward(
            steps: T, batch: B, input: input, tokens: tokens, h0: initialHidden, c0: initialCell, lengths: lengths,
            inputProjections: inputProjections, training: training ?? isTraining, generator: &generator)
        return RecurrentRecord(
            network: self, generation: forwardGeneration, steps: T, batch: B, layout: .timeMajor, lengths: lengths)
    }

    /// The backward over caller-owned, time-major buffers (allocates nothing): adds every parameter gradient into
    /// `parameters.gradients`, and overwrites the gradient buffers that are non-nil.
    /// - Parameters:
    ///   - record: the forward to backpropagate through (must be this network's latest and time-major).
    ///   - outputGradient: dL/dh_t of the last layer, (T, B, directions x H).
    ///   - finalHiddenGradient: dL/dh_T (directions x L, B, H), or nil for zeros.
    ///   - finalCellGradient: dL/dc_T (directions x L, B, H) for the LSTM, or nil for zeros.
    ///   - inputGradient: receives dL/dinput (T, B, I) when non-nil and the input was dense.
    ///   - initialHiddenGradient: receives dL/dh0 (directions x L, B, H) when non-nil.
    ///   - initialCellGradient: receives dL/dc0 (directions x L, B, H) for the LSTM when non-nil.
    ///   - truncation: how far the recurrent gradient travels back in time; full by default.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func backward(
        _ record: RecurrentRecord<Scalar>, outputGradient: UnsafePointer<Scalar>,
        finalHiddenGradient: UnsafePointer<Scalar>? = nil, finalCellGradient: UnsafePointer<Scalar>? = nil,
        inputGradient: UnsafeMutablePointer<Scalar>? = nil,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>? = nil,
        initialCellGradient: UnsafeMutablePointer<Scalar>? = nil,
        truncation: BackwardTruncation = .none
    ) throws {
        try check(record)
        guard record.layout == .timeMajor else {
            throw RecurrentKitError(
                "the buffer backward takes time-major records; use the tensor backward for batch-first")
        }
        try backward(
            outputGradient: outputGradient, finalHiddenGradient: finalHiddenGradient,
            finalCellGradient: finalCellGradient,
            inputGradient: inputGradient, initialHiddenGradient: initialHiddenGradient,
            initialCellGradient: initialCellGradient,
            truncation: truncation)
    }

    /// Whether token-by-token decoding should read layer 0's input part from
    /// ``inputProjectionTable(embedding:vocabularySize:into:)`` rather than multiply W_ih by the token's vector: always
    /// for one-hot input (`embeddingSize` nil: the table is W_ih transposed, the same size), and for an embedding of
    /// width E when V <= 4 E or the table (V, G*H) of `Scalar` is at most 16 MiB. A word vocabulary much larger than E
    /// would otherwise make a table many times W_ih's size, built at every reset.
    public func decodesWithInputTable(vocabularySize V: Int, embeddingSize E: Int?) -> Bool {
        guard let E else { return true }
        let GH = configuration.cell.gateCount * configuration.hiddenSize
        let (elements, overflow) = V.multipliedReportingOverflow(by: GH)
        return V <= 4 * E || (!overflow && elements <= (16 << 20) / MemoryLayout<Scalar>.stride)
    }

    /// Layer 0's input projection of every token, (V, G*H): row v is W_ih e_v + b_ih for the embedding row e_v
    /// (`embedding`, (V, I)), or W_ih's column v + b_ih for one-hot input (nil). Decoding one token at a time can then
    /// read one row of this table instead of W_ih (pass rows as `inputProjections`); one-hot rows are bit-identical to
    /// the forward's own gather, embedding rows are the same product over V rows at once (last bits may differ).
    /// - Throws: for a bidirectional stack, or when `vocabularySize` does not fit the one-hot input.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func inputProjectionTable(
        embedding: UnsafePointer<Scalar>?, vocabularySize V: Int, into table: UnsafeMutablePointer<Scalar>
    ) throws {
        guard !configuration.bidirectional else {
            throw RecurrentKitError("input projections are not defined for a bidirectional stack")
        }
        let I = configuration.inputSize, GH = configuration.cell.gateCount * configuration.hiddenSize
        guard V >= 1, embedding != nil || V == I else {
            throw RecurrentKitError.invalidArgument("vocabularySize", V, "must be the one-hot width \(I)")
        }
        let w = weights.weightIH[0], b = weights.biasIH[0]
        if let embedding {
            fillRows(table, rows: V, with: b, width: GH)
            Scalar.gemm(
                transA: false, transB: true, m: V, n: GH, k: I, alpha: 1, a: embedding, lda: I, b: w, ldb: I, beta: 1,
                c: table, ldc: GH)
        } else {
            for v in 0..<V { for j in 0..<GH { table[v * GH + j] = w[j * I + v] + b[j] } }
        }
    }

    /// Throws unless `record` is this network's latest forward.
    func check(_ record: RecurrentRecord<Scalar>) throws {
        guard record.network === self else { throw RecurrentKitError("backward got a record made by another network") }
        guard record.generation == forwardGeneration else {
            throw RecurrentKitError(
                "got a stale record: this network has run \(forwardGeneration &- record.generation) forward(s) since; "
                    + "use a record before the next forward"
            )
        }
    }
}
