// What a network of a configuration holds while it trains, computed from the sizes alone (before anything is
// allocated): the workspaces of OneDirectionStack.swift and the packed copies of W_hh, so a trainer can estimate a
// run's memory and refuse hopeless sizes.

extension RecurrentConfiguration {
    /// Bytes of the forward caches and backward scratch a Float network of this configuration holds after a forward in
    /// training mode and its backward over (T, B) batches of equal-length rows: exactly what
    /// `RecurrentNetwork.activationMemoryBytes` then reports (the workspaces only grow, so smaller batches later do not
    /// change it), or with `residentPages` what they occupy in memory (``Kernels/residentBytes(ofBlock:)`` of each).
    ///
    /// With S the steps kept per segment (T, or `recomputeInterval` when it is below T), R the state width
    /// (``stateSize``), G*H the gate rows and In_k each layer's input width, the elements are, per layer: the gates
    /// (S, B, G*H), the states (S+1, B, R), the layer's input (S, B, In_k) above layer 0, and by cell the LSTM's c
    /// (S+1, B, H) and tanh c (S, B, H), the GRU's W_hn h + b_hn (S, B, H), a projection's o * tanh c (S, B, H), and
    /// the dropout mask (S, B, R) below the last layer; for the stack: layer 0's dense input (T, B, I) or, with
    /// one-hot input, W_ih^T and the scatter of its gradient (I, G*H) each, the backward's gradients (S, B, G*H) (twice
    /// for the GRU) and (S, B, H), with recomputation the last layer's output (T, B, R) and the segment states, and the
    /// (L, B, H) states and per-row scratch. Every workspace holds at least one element.
    /// - Parameters:
    ///   - T: steps per batch (>= 1).
    ///   - B: rows per batch (>= 1).
    ///   - oneHotInput: whether layer 0 reads token indices (one-hot rows of width ``inputSize``) instead of dense
    ///     (T, B, ``inputSize``) features.
    ///   - recomputeInterval: `RecurrentNetwork.recomputeInterval` (a positive multiple of 16), or nil to keep every
    ///     activation.
    ///   - residentPages: count each workspace in the pages it occupies (false: its capacity, as the network reports).
    /// - Returns: the bytes, or nil for a bidirectional stack (not modelled here), a size below 1, or sizes whose
    ///   product overflows `Int`.
    public func trainingActivationBytes(
        steps T: Int, batch B: Int, oneHotInput: Bool, recomputeInterval: Int? = nil,
        residentPages: Bool = false
    ) -> Int? {
        guard !bidirectional, T >= 1, B >= 1, inputSize >= 1, hiddenSize >= 1, numLayers >= 1, projectionSize >= 0,
            let TB = checkedProduct(T, B)
        else { return nil }
        if let interval = recomputeInterval, interval < 1 { return nil }
        let L = numLayers, H = hiddenSize, R = stateSize, I = inputSize
        let isLSTM = cell == .lstm, isGRU = cell == .gru, projects = R != H
        let segmentSteps = recomputeInterval.map { $0 < T ? $0 : T } ?? T
        let recomputes = segmentSteps < T
        let segments = (T - 1) / segmentSteps + 1
        guard let GH = checkedProduct(cell.gateCount, H) else { return nil }
        /// The bytes of a workspace of `factors` elements (nil on overflow); an unused one holds one element.
        func workspace(_ used: Bool, _ factors: Int...) -> Int? {
            var count = 1
            for f in factors where used {
                let (p, overflow) = count.multipliedReportingOverflow(by: f)
                if overflow { return nil }
                count = p
            }
            guard let bytes = checkedProduct(max(count, 1), MemoryLayout<Float>.stride) else { return nil }
            return residentPages ? Kernels.residentBytes(ofBlock: bytes) : bytes
        }
        let dropsOut = dropout > 0
        // One layer's cache (LayerCache): input, gates, hidden, cell, tanhCell, recurrentNew, dropoutMask, unprojected.
        func layer(_ k: Int) -> Int? {
            checkedSum(
                workspace(k > 0, segmentSteps, B, layerInputSize(k)), workspace(true, segmentSteps, B, GH),
                workspace(true, segmentSteps + 1, B, R), workspace(isLSTM, segmentSteps + 1, B, H),
                workspace(isLSTM, segmentSteps, B, H), workspace(isGRU, segmentSteps, B, H),
                workspace(dropsOut && k < L - 1, segmentSteps, B, R), workspace(projects, segmentSteps, B, H))
        }
        // Layer 0, the middle layers (all alike: input and dropout mask), the last layer (no dropout mask).
        let layers = checkedSum(layer(0), L > 2 ? checkedProduct(layer(1), L - 2) : 0, L > 1 ? layer(L - 1) : 0)
        // The stack's workspaces in the order of `OneDirectionStack.activationMemoryBytes`.
        let stack = checkedSum(
            workspace(!oneHotInput, T, B, I),  // inputCopy
            workspace(recomputes, T, B, R),  // outputSequence
            workspace(recomputes, segments, 2, L, B, H),  // stateCheckpoints
            workspace(recomputes, 2, L, B, H),  // finalStates
            workspace(true, 2, L, B, H),  // stagedStates
            workspace(true, 2, L, B, H),  // carriedGradients
            checkedProduct(5, workspace(false)),  // variable-length batches only: one element each
            workspace(true, segmentSteps, B, GH),  // gradProjected
            workspace(isGRU, segmentSteps, B, GH),  // gradRecurrent
            workspace(true, segmentSteps, B, H),  // gradOutput
            // gradHidden, gradHiddenNext, gradCell
            workspace(true, B, H), workspace(true, B, H), workspace(true, B, H),
            workspace(true, B, GH),  // stepScratch
            workspace(projects, 2, B, H), workspace(projects, B, H),  // projectionScratch, zeroRows
            workspace(oneHotInput && TB >= 64, I, GH),  // oneHotWeightT (a forward of 64 tokens or more)
            workspace(oneHotInput, I, GH),  // oneHotScratch
            workspace(true, GH))  // columnSumScratch
        return checkedSum(stack, layers)
    }

    /// Resident bytes (``Kernels/residentBytes(ofBlock:)``) of the other buffers a Float network of this configuration
    /// keeps while it trains on sequences of at least 4 steps: per layer the copies of `weight_hh_l{k}` packed for the
    /// recurrent products of the forward (R, G*H) and of the backward (G*H, R)
    /// (``Kernels/packedOperandBytes(rows:columns:precision:)``): 4 bytes per weight with Float products, 2 with
    /// bfloat16 products (`Kernels.productPrecision`; the buffer keeps the larger layout once both precisions have used
    /// it); and without biases the zeros read as biases and their gradient scratch, (4, L, G*H).
    /// - Parameters:
    ///   - forward: the precision of the products of every forward that ran (`.float32` as soon as one ran in Float,
    ///     e.g. a validation forward).
    ///   - backward: the precision of the backward's products.
    /// - Returns: the bytes, or nil for a bidirectional stack, a size below 1, or sizes that overflow `Int`.
    public func trainingWeightCopyBytes(
        forward: ProductPrecision = .float32, backward: ProductPrecision = .float32
    ) -> Int? {
        guard !bidirectional, hiddenSize >= 1, numLayers >= 1, projectionSize >= 0 else { return nil }
        let R = stateSize
        guard let GH = checkedProduct(cell.gateCount, hiddenSize),
            let forwardCopy = Kernels.packedOperandBytes(rows: R, columns: GH, precision: forward),
            let backwardCopy = Kernels.packedOperandBytes(rows: GH, columns: R, precision: backward),
            let perLayer = checkedSum(
                Kernels.residentBytes(ofBlock: forwardCopy), Kernels.residentBytes(ofBlock: backwardCopy)),
            let packed = checkedProduct(perLayer, numLayers)
        else { return nil }
        return checkedSum(
            packed,
            bias ? 0 : checkedProduct(4, numLayers, GH, MemoryLayout<Float>.stride).map(Kernels.residentBytes(ofBlock:))
        )
    }
}

extension Kernels {
    /// Bytes a (k, n) operand of a Float matrix product takes once packed for the micro-kernels, as a
    /// recurrent layer's packed W_hh and the bfloat16 products' per-thread copies hold it: with `.float32`, a 64-byte
    /// header and k rows of n values padded to 64 columns (an upper bound for every instruction-set level), 4 bytes
    /// each; with `.bfloat16`, pairs of k (in blocks of 512) of n values padded to 32 columns, 4 bytes per pair, and
    /// 64 tag bytes (about half).
    /// - Parameters:
    ///   - k: rows of the operand (the products' inner dimension), >= 0.
    ///   - n: columns, >= 0.
    ///   - precision: the products' precision.
    /// - Returns: the bytes, or nil for a negative size or one that overflows `Int`.
    public static func packedOperandBytes(rows k: Int, columns n: Int, precision: ProductPrecision) -> Int? {
        guard k >= 0, n >= 0, k <= Int.max - 511, n <= Int.max - 63 else { return nil }
        switch precision {
        case .float32:
            return checkedSum(checkedProduct(k, (n + 63) / 64 * 64, MemoryLayout<Float>.stride), 64)
        case .bfloat16:
            let blocks = max((k + 511) / 512, 1), last = k - (blocks - 1) * 512
            return checkedSum(checkedProduct((blocks - 1) * 256 + (last + 1) / 2, (n + 31) / 32 * 32, 4), 64)
        }
    }

    /// The memory a block of `bytes` from the kernels' allocator occupies once written: blocks of 4 MiB and more are
    /// 2 MiB aligned and advised onto transparent huge pages, so they count in whole 2 MiB pages (where Linux backs
    /// them with huge pages: an upper bound elsewhere); smaller blocks count their bytes.
    /// - Parameter bytes: the block's size, >= 0.
    /// - Returns: the resident bytes, at least `bytes`.
    public static func residentBytes(ofBlock bytes: Int) -> Int {
        let page = 2 << 20
        guard bytes >= 4 << 20, bytes <= Int.max - page else { return bytes }
        return (bytes + page - 1) / page * page
    }
}

/// The product of `factors`, nil when one is nil, negative or the product overflows `Int`.
func checkedProduct(_ factors: Int?...) -> Int? {
    var result = 1
    for f in factors {
        guard let f, f >= 0 else { return nil }
        let (p, overflow) = result.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        result = p
    }
    return result
}

/// The sum of `terms`, nil when one is nil, negative or the sum overflows `Int`.
func checkedSum(_ terms: Int?...) -> Int? {
    var result = 0
    for t in terms {
        guard let t, t >= 0 else { return nil }
        let (s, overflow) = result.addingReportingOverflow(t)
        if overflow { return nil }
        result = s
    }
    return result
}
