// One direction's forward: every layer over the time steps (packed rows, dropout between layers, recompute
// segments), caching what the backward needs.

import _RecurrentKitKernels

extension OneDirectionStack {
    /// The layer loop's forward, after the network checked its arguments and `forward` configured the packing of a
    /// variable-length batch (`packed`). Specialized: it is reached through a method of the stack's base class, whose
    /// generic entry would otherwise run the whole layer loop unspecialized (60% slower, measured).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    func forwardLayers(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?, h0: UnsafePointer<Scalar>?,
        c0: UnsafePointer<Scalar>?, packed: Bool, inputProjections: UnsafePointer<Scalar>?, training: Bool,
        recomputeInterval: Int?, dropoutShard: BatchShard?, generator: inout SeededGenerator
    ) {
        let L = configuration.numLayers, H = configuration.hiddenSize, G = configuration.cell.gateCount,
            R = configuration.stateSize
        let GH = G * H, I = configuration.inputSize
        let isLSTM = configuration.cell == .lstm
        let willRecompute = recomputeInterval.map { $0 < T } ?? false
        let segmentSteps = willRecompute ? recomputeInterval! : T
        let dropsOut = training && configuration.dropout > 0
        // Reserve every buffer first: initial states may alias last call's final states, so copy them in before
        // anything moves.
        for k in 0..<L {
            let cache = layers[k]
            if k > 0 { cache.input.reserve(segmentSteps * B * configuration.layerInputSize(k)) }
            cache.gates.reserve(segmentSteps * B * GH)
            if isLSTM { cache.tanhCell.reserve(segmentSteps * B * H) }
            if configuration.cell == .gru { cache.recurrentNew.reserve(segmentSteps * B * H) }
            if k < L - 1 && dropsOut { cache.dropoutMask.reserve(segmentSteps * B * R) }
            if R != H { cache.unprojected.reserve(segmentSteps * B * H) }
        }
        packing = packed ? packingStorage : nil
        // Layer 0 reads the dense input (T, B, I) or, with `inputProjections`, its precomputed projections (T, B, G*H).
        cachedProjected = inputProjections != nil
        let firstWidth = cachedProjected ? GH : I
        if let first = inputProjections ?? input {
            if let packing {
                packing.pack(first, into: inputCopy.reserve(packing.validRows * firstWidth), width: firstWidth)
            } else {
                inputCopy.reserve(T * B * firstWidth).update(from: first, count: T * B * firstWidth)
            }
        }
        stepScratch.reserve(B * GH)
        // h0 (L, B, R) then c0 (L, B, H); every state buffer of the stack has this layout.
        let cells = L * B * R
        stagedStates.reserve(2 * L * B * H)
        zeroInitialHidden = h0 == nil
        if let h0 {
            stagedStates.pointer.update(from: h0, count: L * B * R)
        } else {
            stagedStates.pointer.update(repeating: 0, count: L * B * R)
        }
        if isLSTM {
            if let c0 {
                (stagedStates.pointer + cells).update(from: c0, count: L * B * H)
            } else {
                (stagedStates.pointer + cells).update(repeating: 0, count: L * B * H)
            }
        }
        for k in 0..<L {
            let cache = layers[k]
            cache.hidden.reserve((segmentSteps + 1) * B * R)
            if isLSTM { cache.cell.reserve((segmentSteps + 1) * B * H) }
            if let packing {  // the sorted rows' initial states
                packing.permuteRows(
                    stagedStates.pointer + k * B * R, into: cache.hidden.pointer, layers: 1, width: R, toSorted: true)
                if isLSTM {
                    packing.permuteRows(
                        stagedStates.pointer + cells + k * B * H, into: cache.cell.pointer, layers: 1, width: H,
                        toSorted: true)
                }
            } else {
                cache.hidden.pointer.update(from: stagedStates.pointer + k * B * R, count: B * R)
                if isLSTM { cache.cell.pointer.update(from: stagedStates.pointer + cells + k * B * H, count: B * H) }
            }
        }
        if let packing, let tokens {
            var packedTokens: [Int] = []
            packing.pack(tokens: tokens, into: &packedTokens)
            cachedTokens = packedTokens
        } else {
            cachedTokens = tokens
        }
        cachedSteps = T
        cachedBatch = B
        self.dropoutShard = dropoutShard
        cachedTraining = training
        recomputes = willRecompute
        cachedSegmentSteps = segmentSteps
        // One seed per forward; each (layer, time block) mask draws from its own stream, so a recomputed segment
        // gets the same masks.
        dropoutSeed = dropsOut && L > 1 ? generator.next() : 0
        usesPackedWeights = T >= Self.packingMinimumSteps
        packedBackwardReady = false
        if usesPackedWeights {
            for k in 0..<L { packedForward[k].pack(transB: true, k: R, n: GH, b: weightHH[k], ldb: R) }
        }
        if let tokens = cachedTokens, tokens.count >= 64 {
            // W_ih^T (I, G*H), transposed once per forward so each gathered row is contiguous.
            let w = weightIH[0], wT = oneHotWeightT.reserve(I * GH)
            for j in 0..<GH { for v in 0..<I { wT[v * GH + j] = w[j * I + v] } }
        }

        let segmentList = segments(steps: T)
        heldSegment = segmentList.count - 1
        if recomputes {
            stateCheckpoints.reserve(segmentList.count * 2 * L * B * H)
            outputSequence.reserve(T * B * R)
        }
        if recomputes || packed { finalStates.reserve(2 * L * B * H) }
        if packed { sortedFinalStates.reserve(2 * L * B * H) }
        for (index, segment) in segmentList.enumerated() {
            let steps = StepRows(first: segment.start, count: segment.count, batch: B, packing: packing)
            for k in 0..<L {
                let cache = layers[k]
                if index > 0 {
                    // Carry the state from the end of the previous segment (same buffer, earlier slot).
                    let previous = StepRows(
                        first: segmentList[index - 1].start, count: segmentList[index - 1].count, batch: B,
                        packing: packing)
                    let last = previous.count - 1, rows = previous.rows(last)
                    cache.hidden.pointer.update(from: cache.hidden.pointer + previous.output(last) * R, count: rows * R)
                    if isLSTM {
                        cache.cell.pointer.update(from: cache.cell.pointer + previous.output(last) * H, count: rows * H)
                    }
                }
                if recomputes {
                    let slot = stateCheckpoints.pointer + index * 2 * L * B * H
                    (slot + k * B * R).update(from: cache.hidden.pointer, count: B * R)
                    if isLSTM { (slot + cells + k * B * H).update(from: cache.cell.pointer, count: B * H) }
                }
                layerForward(k, steps)
                if packed { keepFinishedRows(layer: k, steps) }
            }
            if recomputes {
                (outputSequence.pointer + absoluteRow(segment.start, batch: B) * R)
                    .update(from: layers[L - 1].hidden.pointer + B * R, count: steps.total * R)
            }
        }
        if let packing {
            packing.permuteRows(
                sortedFinalStates.pointer, into: finalStates.pointer, layers: L, width: R, toSorted: false)
            if isLSTM {
                packing.permuteRows(
                    sortedFinalStates.pointer + cells, into: finalStates.pointer + cells, layers: L, width: H,
                    toSorted: false)
            }
            packing.unpack(
                recomputes ? outputSequence.pointer : layers[L - 1].hidden.pointer + B * R,
                into: paddedOutput.reserve(T * B * R), width: R)
        } else if recomputes {
            let n = segmentList.last!.count
            for k in 0..<L {
                (finalStates.pointer + k * B * R).update(from: layers[k].hidden.pointer + n * B * R, count: B * R)
                if isLSTM {
                    (finalStates.pointer + cells + k * B * H).update(
                        from: layers[k].cell.pointer + n * B * H, count: B * H)
                }
            }
        }
    }

    /// Forward of layer `k` over absolute steps [first, first + n); its `hidden` (and `cell`) slot 0 already holds the
    /// state at `first`, and for k > 0 its `input` holds the layer below's (dropped-out) output for these steps.
    func layerForward(_ k: Int, _ steps: StepRows) {
        let L = configuration.numLayers, H = configuration.hiddenSize, GH = configuration.cell.gateCount * H,
            R = configuration.stateSize
        let first = steps.first, n = steps.count, B = steps.batch
        let cache = layers[k]
        let inSize = configuration.layerInputSize(k)
        // 1. Input projection, one product per time block: (rows, In) x W_ih^T + b_ih -> (rows, G*H).
        for block in timeBlocks(first: first, steps: n) {
            let local = steps.offset(block.start - first), rows = steps.offset(block.end - first) - local
            let projected = cache.gates.pointer + local * GH
            let tokenBase = absoluteRow(block.start, batch: B)
            if k == 0, let tokens = cachedTokens {
                // One-hot input: a row gather (exact). Few rows (generation) gather in place.
                let b = biasIH[0]
                if tokens.count < 64 {
                    let w = weightIH[0]
                    for row in 0..<rows {
                        let token = tokens[tokenBase + row], out = projected + row * GH
                        for j in 0..<GH { out[j] = w[j * inSize + token] + b[j] }
                    }
                } else {
                    let wT = oneHotWeightT.pointer
                    for row in 0..<rows {
                        let source = wT + tokens[tokenBase + row] * GH, out = projected + row * GH
                        for j in 0..<GH { out[j] = source[j] + b[j] }
                    }
                }
            } else if k == 0 && cachedProjected {
                projected.update(from: inputCopy.pointer + tokenBase * GH, count: rows * GH)
            } else {
                let x = k == 0 ? inputCopy.pointer + tokenBase * inSize : cache.input.pointer + local * inSize
                fillRows(projected, rows: rows, with: biasIH[k], width: GH)
                Scalar.gemm(
                    transA: false, transB: true, m: rows, n: GH, k: inSize,
                    alpha: 1, a: x, lda: inSize, b: weightIH[k], ldb: inSize,
                    beta: 1, c: projected, ldc: GH)
            }
            // The LSTM's b_hh joins the gates before W_hh h_{t-1} (the cell adds that product onto them): here, while
            // the block is in cache and split over the pool, rather than step by step on the caller.
            if configuration.cell == .lstm { addToRows(projected, rows: rows, row: biasHH[k], width: GH) }
        }
        // 2. The recurrence, one step at a time.
        switch configuration.cell {
        case .rnnTanh, .rnnReLU, .rnnLinear: rnnForward(layer: k, steps)
        case .lstm: lstmForward(layer: k, steps)
        case .gru: gruForward(layer: k, steps)
        }
        // 3. Dropout on this layer's output feeds the next layer.
        guard k < L - 1 else { cache.droppedOut = false; return }
        let next = layers[k + 1].input.pointer
        let out = cache.hidden.pointer + B * R
        let p = configuration.dropout
        cache.droppedOut = cachedTraining && p > 0
        guard cache.droppedOut else { next.update(from: out, count: steps.total * R); return }
        let mask = cache.dropoutMask.pointer
        let keepScale = Scalar(1 / (1 - p))
        for block in timeBlocks(first: first, steps: n) {
            var blockGenerator = SeededGenerator(
                seed: dropoutSeed ^ (UInt64(k) &* 0x9E37_79B9_7F4A_7C15)
                    ^ (UInt64(block.start) &* 0xD1B5_4A32_D192_ED03))
            if let shard = dropoutShard, !shard.isWholeBatch {
                // The block's whole (steps, global batch, R) mask in the stream's order; this shard's rows kept.
                let G = shard.globalBatch, lo = shard.rows.lowerBound, hi = shard.rows.upperBound
                var i = steps.offset(block.start - first) * R
                for _ in block.start..<block.end {
                    for row in 0..<G {
                        guard row >= lo && row < hi else { for _ in 0..<R { _ = blockGenerator.nextUnit() }; continue }
                        for _ in 0..<R {
                            mask[i] = blockGenerator.nextUnit() < p ? 0 : keepScale
                            next[i] = out[i] * mask[i]
                            i += 1
                        }
                    }
                }
                continue
            }
            for i in (steps.offset(block.start - first) * R)..<(steps.offset(block.end - first) * R) {
                mask[i] = blockGenerator.nextUnit() < p ? 0 : keepScale
                next[i] = out[i] * mask[i]
            }
        }
    }

    /// With a variable-length batch: copies the states of the rows whose last step is in `steps` (sorted rows
    /// [B_{t+1}, B_t) end at step t) into `sortedFinalStates`.
    func keepFinishedRows(layer k: Int, _ steps: StepRows) {
        let L = configuration.numLayers, H = configuration.hiddenSize, B = steps.batch, R = configuration.stateSize
        for t in 0..<steps.count {
            let ending = steps.rows(t), continuing = packing!.batchSizes[steps.first + t + 1]
            guard ending > continuing else { continue }
            let rows = ending - continuing, row = steps.output(t) + continuing
            (sortedFinalStates.pointer + (k * B + continuing) * R).update(
                from: layers[k].hidden.pointer + row * R, count: rows * R)
            guard configuration.cell == .lstm else { continue }
            (sortedFinalStates.pointer + L * B * R + (k * B + continuing) * H).update(
                from: layers[k].cell.pointer + row * H, count: rows * H)
        }
    }
}
