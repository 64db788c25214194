// One direction's backward: every layer last first over the cached forward (recomputed segments, truncation, the
// d2l 8.7 gradient-norm recording when an analysis attached a recorder), adding the parameter gradients.

import _RecurrentKitKernels

extension OneDirectionStack {
    /// The layer loop's backward, after the network checked that a forward it can differentiate ran. Specialized, as
    /// `forwardLayers`. `recorder` (analysis only) receives dL/dh_t of every layer and step.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    func backwardLayers(
        steps T: Int, batch B: Int, outputGradient: UnsafePointer<Scalar>, finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?, inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?, initialCellGradient: UnsafeMutablePointer<Scalar>?,
        truncation: BackwardTruncation, recorder: HiddenGradientRecorder<Scalar>?
    ) throws {
        let L = configuration.numLayers, H = configuration.hiddenSize, G = configuration.cell.gateCount,
            R = configuration.stateSize
        let GH = G * H, cells = L * B * R
        switch truncation {
        case .none: truncationGenerators = []
        case .fixed(let length):
            guard length >= 1 else {
                throw RecurrentKitError.invalidArgument("truncation length", length, "must be at least 1")
            }
        case .randomized(let p, let seed):
            guard p > 0, p <= 1 else {
                throw RecurrentKitError.invalidArgument("continue probability", p, "must be in (0, 1]")
            }
            // One stream per layer, each drawn backwards in time, so segment order does not change the draws.
            truncationGenerators = (0..<L).map { SeededGenerator(seed: seed ^ (UInt64($0) &* 0x9E37_79B9_7F4A_7C15)) }
        }
        self.truncation = truncation
        if usesPackedWeights && !packedBackwardReady {
            for k in 0..<L { packedBackward[k].pack(transB: false, k: GH, n: R, b: weightHH[k], ldb: R) }
            packedBackwardReady = true
        }
        if let recorder {
            guard packing == nil else {
                throw RecurrentKitError("hidden-gradient recording is not available for a variable-length batch")
            }
            recorder.begin(layers: L, steps: T, batch: B, stateSize: R)
        }
        hiddenGradientRecorder = recorder
        defer { hiddenGradientRecorder = nil }
        wantsInitialHiddenGradient = initialHiddenGradient != nil
        defer { wantsInitialHiddenGradient = true }
        let isGRU = configuration.cell == .gru, isLSTM = configuration.cell == .lstm
        let segmentList = segments(steps: T)
        let segmentSteps = segmentList[0].count
        let dProjected = gradProjected.reserve(segmentSteps * B * GH)
        let dRecurrent = isGRU ? gradRecurrent.reserve(segmentSteps * B * GH) : dProjected
        let dLayerOutput = gradOutput.reserve(segmentSteps * B * H)
        gradHidden.reserve(B * H); gradHiddenNext.reserve(B * H); gradCell.reserve(B * H)
        if R != H { projectionScratch.reserve(2 * B * H); zeroRows.reserve(B * H).update(repeating: 0, count: B * H) }
        // dL/dh (L, B, R) then dL/dc (L, B, H) per layer at the end of the segment being processed.
        let carried = carriedGradients.reserve(2 * L * B * H)
        if let g = finalHiddenGradient {
            carried.update(from: g, count: L * B * R)
        } else {
            carried.update(repeating: 0, count: L * B * R)
        }
        if isLSTM, let g = finalCellGradient {
            (carried + cells).update(from: g, count: L * B * H)
        } else {
            (carried + cells).update(repeating: 0, count: L * B * H)
        }
        // A variable-length batch works on sorted rows: the output gradient's valid positions packed, the final-state
        // gradients permuted (each waits in the carried gradient until backward reaches its row's last step).
        var outputSource = outputGradient
        if let packing {
            let sorted = stagedStates.reserve(2 * L * B * H)  // free after the forward
            sorted.update(from: carried, count: cells + L * B * H)
            packing.permuteRows(sorted, into: carried, layers: L, width: R, toSorted: true)
            packing.permuteRows(sorted + cells, into: carried + cells, layers: L, width: H, toSorted: true)
            let packedOutput = packedGradient.reserve(packing.validRows * R)
            packing.pack(outputGradient, into: packedOutput, width: R)
            outputSource = UnsafePointer(packedOutput)
            if inputGradient != nil && cachedTokens == nil {
                packedInputGradient.reserve(packing.validRows * configuration.inputSize)
            }
        }

        if cachedTokens != nil {
            let I = configuration.inputSize
            oneHotScratch.reserve(I * GH).update(repeating: 0, count: I * GH)
        }
        for index in segmentList.indices.reversed() {
            let segment = segmentList[index]
            let first = segment.start, n = segment.count
            if index != heldSegment {
                recomputeSegment(index, first: first, steps: n, batch: B)
                heldSegment = index
            }
            let steps = StepRows(first: first, count: n, batch: B, packing: packing)
            dLayerOutput.update(from: outputSource + absoluteRow(first, batch: B) * R, count: steps.total * R)
            for k in stride(from: L - 1, through: 0, by: -1) {
                gradHidden.pointer.update(from: carried + k * B * R, count: B * R)
                if isLSTM { gradCell.pointer.update(from: carried + cells + k * B * H, count: B * H) }
                switch configuration.cell {
                case .rnnTanh, .rnnReLU, .rnnLinear:
                    rnnBackward(layer: k, steps, dOutput: dLayerOutput, dPre: dProjected)
                case .lstm: lstmBackward(layer: k, steps, dOutput: dLayerOutput, dPre: dProjected)
                case .gru:
                    gruBackward(layer: k, steps, dOutput: dLayerOutput, dProjected: dProjected, dRecurrent: dRecurrent)
                }
                (carried + k * B * R).update(from: gradHidden.pointer, count: B * R)
                if isLSTM { (carried + cells + k * B * H).update(from: gradCell.pointer, count: B * H) }
                accumulateWeightGradients(k, steps, dProjected: dProjected, dRecurrent: dRecurrent)
                // dL/dinput (rows, In) = dProjected x W_ih, per time block; for k > 0 the layer below's output
                // gradient.
                if k == 0 && (cachedTokens != nil || inputGradient == nil) { continue }
                let inSize = configuration.layerInputSize(k)
                let firstLayerTarget = packing != nil ? packedInputGradient.pointer : inputGradient
                for block in timeBlocks(first: first, steps: n) {
                    let local = steps.offset(block.start - first), rows = steps.offset(block.end - first) - local
                    let target =
                        k == 0
                        ? firstLayerTarget! + absoluteRow(block.start, batch: B) * inSize
                        : dLayerOutput + local * inSize
                    Scalar.gemm(
                        transA: false, transB: false, m: rows, n: inSize, k: GH,
                        alpha: 1, a: dProjected + local * GH, lda: GH, b: weightIH[k], ldb: inSize,
                        beta: 0, c: target, ldc: inSize)
                }
                if k > 0 && layers[k - 1].droppedOut {
                    let mask = layers[k - 1].dropoutMask.pointer
                    for i in 0..<(steps.total * R) { dLayerOutput[i] *= mask[i] }
                }
            }
        }
        if let packing {
            if let g = initialHiddenGradient {
                packing.permuteRows(carried, into: g, layers: L, width: R, toSorted: false)
            }
            if isLSTM, let g = initialCellGradient {
                packing.permuteRows(carried + cells, into: g, layers: L, width: H, toSorted: false)
            }
            if cachedTokens == nil, let dx = inputGradient {
                packing.unpack(packedInputGradient.pointer, into: dx, width: configuration.inputSize)
            }
        } else {
            if let g = initialHiddenGradient { g.update(from: carried, count: L * B * R) }
            if isLSTM, let g = initialCellGradient { g.update(from: carried + cells, count: L * B * H) }
        }
        if cachedTokens != nil {
            let I = configuration.inputSize, dw = gradWeightIH[0], dwT = oneHotScratch.pointer
            for j in 0..<GH { for v in 0..<I { dw[j * I + v] += dwT[v * GH + j] } }
        }
    }

    /// Recomputes every layer's activations of segment `index` from its state checkpoint (same calls as the forward,
    /// so the same bits).
    func recomputeSegment(_ index: Int, first: Int, steps n: Int, batch B: Int) {
        let steps = StepRows(first: first, count: n, batch: B, packing: packing)
        let L = configuration.numLayers, H = configuration.hiddenSize, R = configuration.stateSize
        let slot = stateCheckpoints.pointer + index * 2 * L * B * H
        for k in 0..<L {
            layers[k].hidden.pointer.update(from: slot + k * B * R, count: B * R)
            if configuration.cell == .lstm {
                layers[k].cell.pointer.update(from: slot + L * B * R + k * B * H, count: B * H)
            }
            layerForward(k, steps)
        }
    }

    /// Adds layer k's weight and bias gradients for steps [first, first + n), one product per time block, latest
    /// block first (the order is the same whether the sequence is one segment or many).
    func accumulateWeightGradients(
        _ k: Int, _ steps: StepRows,
        dProjected: UnsafeMutablePointer<Scalar>, dRecurrent: UnsafeMutablePointer<Scalar>
    ) {
        let H = configuration.hiddenSize, GH = configuration.cell.gateCount * H, R = configuration.stateSize
        let first = steps.first, B = steps.batch
        let cache = layers[k]
        let inSize = configuration.layerInputSize(k)
        let sums = columnSumScratch.reserve(GH)
        for block in timeBlocks(first: first, steps: steps.count).reversed() {
            let local = steps.offset(block.start - first), rows = steps.offset(block.end - first) - local
            let dP = dProjected + local * GH, dR = dRecurrent + local * GH
            // dW_hh += dRec^T (G*H, rows) x [h_{t-1}] (rows, H). With equal lengths the h_{t-1} rows are contiguous in
            // the state cache; a variable-length batch gathers step t's first B_t rows of h_{t-1}.
            var hPrev = UnsafePointer(cache.hidden.pointer + local * R)
            if packing != nil {
                let gathered = gatheredHidden.reserve(rows * R)
                for t in (block.start - first)..<(block.end - first) {
                    (gathered + (steps.offset(t) - local) * R).update(
                        from: cache.hidden.pointer + steps.previous(t) * R, count: steps.rows(t) * R)
                }
                hPrev = UnsafePointer(gathered)
            }
            let oneHot = k == 0 && cachedTokens != nil
            // The layer's input rows of this block (dense input; none for a one-hot layer 0).
            let x: UnsafeMutablePointer<Scalar>? =
                oneHot
                ? nil
                : k == 0
                    ? inputCopy.pointer + absoluteRow(block.start, batch: B) * inSize
                    : cache.input.pointer + local * inSize
            if dR == dP, let x {
                // RNN and LSTM: dW_ih and dW_hh share dGates^T, packed once for both (the same sums as two products).
                accumulateProductPair(
                    dP, rows: rows, width: GH, x, inSize, into: gradWeightIH[k], hPrev, R, into: gradWeightHH[k])
            } else {
                Scalar.gemm(
                    transA: true, transB: false, m: GH, n: R, k: rows,
                    alpha: 1, a: dR, lda: GH, b: hPrev, ldb: R,
                    beta: 1, c: gradWeightHH[k], ldc: R)
                if let x {
                    Scalar.gemm(
                        transA: true, transB: false, m: GH, n: inSize, k: rows,
                        alpha: 1, a: dP, lda: GH, b: x, ldb: inSize,
                        beta: 1, c: gradWeightIH[k], ldc: inSize)
                }
            }
            if dR == dP {
                // RNN and LSTM: both biases receive the same column sums; compute them once.
                sums.update(repeating: 0, count: GH)
                addColumnSums(of: dP, rows: rows, width: GH, into: sums)
                for j in 0..<GH { gradBiasHH[k][j] += sums[j]; gradBiasIH[k][j] += sums[j] }
            } else {
                addColumnSums(of: dR, rows: rows, width: GH, into: gradBiasHH[k])
                addColumnSums(of: dP, rows: rows, width: GH, into: gradBiasIH[k])
            }
            if oneHot, let tokens = cachedTokens {
                // One-hot input: dW_ih[:, token] += dProjected row (a scatter, the transpose of the forward gather),
                // accumulated in a contiguous (I, G*H) buffer (zeroed by backward, added transposed at its end).
                let dwT = oneHotScratch.pointer
                for row in 0..<rows {
                    let target = dwT + tokens[absoluteRow(block.start, batch: B) + row] * GH, d = dP + row * GH
                    for j in 0..<GH { target[j] += d[j] }
                }
            }
        }
    }

    // MARK: - Recurrent products

    /// Whether step t of `steps` is the sequence's first and the forward got no h0: its W_hh h0 adds exact zeros, so
    /// the cells skip it (only an exactly zero pre-activation can keep the sign -0 that adding the product's +0 would
    /// make +0; sigmoid and tanh give the same values either way).
    @inline(__always)
    func startsFromZeroState(_ steps: StepRows, _ t: Int) -> Bool { zeroInitialHidden && steps.first + t == 0 }

    /// Whether step t's dh_{t-1} = dGates W_hh only feeds dL/dh0 and the backward was not asked for it, so the cells
    /// skip the product.
    @inline(__always)
    func feedsUnwantedInitialGradient(_ steps: StepRows, _ t: Int) -> Bool {
        !wantsInitialHiddenGradient && steps.first + t == 0
    }

    /// out (B, G*H) = h (B, R) W_hh^T + beta * out, from the packed weight when this forward packed it.
    @inline(__always)
    func recurrentProduct(
        layer k: Int, _ h: UnsafePointer<Scalar>, batch B: Int, beta: Scalar, into out: UnsafeMutablePointer<Scalar>
    ) {
        let R = configuration.stateSize, GH = configuration.cell.gateCount * configuration.hiddenSize
        if usesPackedWeights {
            packedForward[k].multiply(h, m: B, lda: R, beta: beta, into: out, ldc: GH)
        } else {
            Scalar.gemm(
                transA: false, transB: true, m: B, n: GH, k: R, alpha: 1, a: h, lda: R, b: weightHH[k], ldb: R,
                beta: beta, c: out, ldc: GH)
        }
    }

    /// dh (B, R) = dGates (B, G*H) W_hh + beta * dh: the hidden slice of the gradient, to step t-1.
    @inline(__always)
    func recurrentGradientProduct(
        layer k: Int, _ dGates: UnsafePointer<Scalar>, batch B: Int, beta: Scalar, into dh: UnsafeMutablePointer<Scalar>
    ) {
        let R = configuration.stateSize, GH = configuration.cell.gateCount * configuration.hiddenSize
        if usesPackedWeights {
            packedBackward[k].multiply(dGates, m: B, lda: GH, beta: beta, into: dh, ldc: R)
        } else {
            Scalar.gemm(
                transA: false, transB: false, m: B, n: R, k: GH, alpha: 1, a: dGates, lda: GH, b: weightHH[k], ldb: R,
                beta: beta, c: dh, ldc: R)
        }
    }

    // MARK: - Truncation and recording

    /// Applies the truncation rule to the recurrent gradient that step t sends to step t-1 (dh, and dc for the LSTM).
    @inline(__always)
    func truncateRecurrentGradient(
        layer k: Int, step t: Int, rows: Int, _ dh: UnsafeMutablePointer<Scalar>, _ dc: UnsafeMutablePointer<Scalar>?
    ) {
        let hCount = rows * configuration.stateSize, cCount = rows * configuration.hiddenSize
        switch truncation {
        case .none: return
        case .fixed(let length):
            guard t > 0, t % length == 0 else { return }  // t = 0 feeds h0, whose gradient the first chunk keeps
            dh.update(repeating: 0, count: hCount)
            dc?.update(repeating: 0, count: cCount)
        case .randomized(let p, _):
            let keep = truncationGenerators[k].nextUnit() < p
            let weight: Scalar = keep ? Scalar(1 / p) : 0
            if keep && p == 1 { return }
            for i in 0..<hCount { dh[i] *= weight }
            if let dc { for i in 0..<cCount { dc[i] *= weight } }
        }
    }

    /// Hands dL/dh_t = dOut_t + dh_recurrent of `rows` rows for layer k at step t to an attached recorder.
    @inline(__always)
    func recordHiddenGradient(
        layer k: Int, step t: Int, rows: Int, _ dh: UnsafePointer<Scalar>, _ dOut: UnsafePointer<Scalar>
    ) {
        hiddenGradientRecorder?.record(layer: k, step: t, rows: rows, dh, dOut)
    }
}
