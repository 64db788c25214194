import _RecurrentKitKernels

/// One weight matrix (rows, cols) in a compact format and its product W x.
struct CompactMatrix {
    let rows: Int, cols: Int
    let bf16: UnsafeMutablePointer<UInt16>?
    let int8: UnsafeMutablePointer<Int8>?
    let scales: UnsafeMutablePointer<Float>?
    let sums: UnsafeMutablePointer<Int32>?

    /// y = W x + beta y (y not read when beta is 0).
    @inline(__always)
    func multiply(_ x: UnsafePointer<Float>, beta: Float, into y: UnsafeMutablePointer<Float>) {
        if let bf16 {
            rk_gemv_bf16(rows, cols, bf16, cols, x, beta, y)
        } else {
            rk_gemv_i8(rows, cols, int8!, cols, scales!, sums!, x, beta, y)
        }
    }
}

/// Batch-1, token-by-token inference of a token model (an optional ``Embedding`` or one-hot input, a
/// ``RecurrentNetwork``, a ``Linear`` head on the last layer) with compact copies of its weight matrices: bfloat16
/// or int8 with a scale per row (``WeightPrecision/bfloat16``, ``WeightPrecision/int8``).
///
/// At batch 1 every token re-reads every weight matrix once, so decoding is limited by how fast the weights stream from
/// cache; shrinking them is the lever. The decoder is a snapshot taken when it is created: compact copies of the weight
/// matrices, Float copies of the biases and layer 0's input table; states and the element-wise math are Float (bf16
/// weights widen exactly to Float inside the matrix-vector kernel; int8 products quantize their input vector, see
/// ``WeightPrecision/int8``). Layer 0's input projection is folded into a Float table (V, G*H) built by
/// ``RecurrentNetwork/inputProjectionTable(embedding:vocabularySize:into:)`` (row v = W_ih x_v + b_ih for the one-hot
/// or embedded token v), the same table Float generation reads, so layer 0 streams one table row and its W_hh per
/// token, and its input part is exact; when the table would be large (a vocabulary much wider than the embedding, see
/// ``RecurrentNetwork/decodesWithInputTable(vocabularySize:embeddingSize:)``) layer 0 keeps a compact W_ih and a Float
/// copy of the embedding instead. Later changes to the layers' parameters are not seen (make a new decoder). The
/// element-wise step is the cells' own (the same code the network's forward runs); only the matrix products read
/// compact weights.
public final class CompactDecoder {
    private let L: Int, H: Int, V: Int, G: Int
    /// Tokens the input accepts: the embedding's vocabulary, or the network's input size for one-hot input.
    public let inputVocabularySize: Int
    /// Logits per token: the head's output size.
    public let outputSize: Int
    private let cell: CellKind
    /// The storage of the weight matrices.
    public let format: WeightPrecision
    /// Per layer k >= 1: W_ih (G*H, H) at index k - 1 (layer 0 reads `inputTable`, or `firstInput` times its
    /// embedding row when the table would be large).
    private let inputWeights: [CompactMatrix]
    /// Layer 0's W_ih (G*H, E) when it does not decode with the table (`RecurrentNetwork.decodesWithInputTable`).
    private let firstInput: CompactMatrix?
    /// The embedding's Float copy (V, E) that `firstInput` multiplies, else nil.
    private let embeddingCopy: UnsafeMutablePointer<Float>?
    private let embeddingSize: Int
    /// Layer 0's input projection of every token, (V, G*H), Float, biases b_ih included.
    private let inputTable: UnsafeMutablePointer<Float>?
    /// Per layer: W_hh (G*H, H).
    private let recurrentWeights: [CompactMatrix]
    /// The head's weight (outputSize, H).
    private let outputWeight: CompactMatrix
    /// The one block holding every compact matrix above (and the int8 scales).
    private let compactWeights: UnsafeMutablePointer<UInt8>
    /// The block holding the Float copies of the biases and the embedding.
    private let floatCopies: UnsafeMutablePointer<Float>
    private let inputBias: [UnsafeMutablePointer<Float>]  // (G*H) per layer, copied
    private let recurrentBias: [UnsafeMutablePointer<Float>]  // (G*H) per layer, copied
    private let outputBias: UnsafeMutablePointer<Float>  // (V), copied
    private let hidden: UnsafeMutablePointer<Float>  // (L, H) h of every layer
    private let cellState: UnsafeMutablePointer<Float>  // (L, H) LSTM c
    private let gates: UnsafeMutablePointer<Float>  // (G*H) input part, then the gates
    private let recurrent: UnsafeMutablePointer<Float>  // (G*H) W_hh h + b_hh (GRU)
    private let logitBuffer: UnsafeMutablePointer<Float>  // (V)
    private let scratch: UnsafeMutablePointer<Float>  // (H) tanh(c) (LSTM) or R_n (GRU)
    // The cells' element-wise step work, one row at a time.
    private let rnnRows = RNNForwardRows<Float>(), lstmRows = LSTMForwardRows<Float>(),
        gruRows = GRUForwardRows<Float>()

    /// Copies the weight matrices to `format` and starts from a zero state.
    /// - Parameters:
    ///   - network: the recurrent layers; with `embedding` nil its input is one-hot over `inputSize` tokens.
    ///   - embedding: token vectors (V, E) with E the network's `inputSize`, or nil.
    ///   - output: the head, (outputSize, H) on the last layer's h.
    ///   - format: bfloat16 (the default) or int8 with a scale per row.
    /// - Throws: for ``WeightPrecision/float32``, when the sizes do not chain, or (int8) a weight is not finite.
    public init(
        network: RecurrentNetwork<Float>, embedding: Embedding<Float>?, output: Linear<Float>,
        format: WeightPrecision = .bfloat16
    ) throws {
        guard format != .float32 else {
            throw RecurrentKitError(
                "a compact decoder stores bfloat16 or int8 weights; float32 decoding reads the network's own weights")
        }
        let configuration = network.configuration
        guard !configuration.bidirectional else {
            throw RecurrentKitError(
                "a bidirectional network reads the whole sequence before its first output; it cannot decode "
                    + "token by token"
            )
        }
        guard configuration.projectionSize == 0 else {
            throw RecurrentKitError(
                "\(format.rawValue) decoding does not cover LSTM projections (proj_size); decode in float32")
        }
        let L = configuration.numLayers, H = configuration.hiddenSize, I = configuration.inputSize,
            O = output.outputSize
        if let embedding, embedding.dimension != I {
            throw RecurrentKitError("the embedding's width \(embedding.dimension) is not the network's input size \(I)")
        }
        guard output.inputSize == H else {
            throw RecurrentKitError("the head reads \(output.inputSize) values but the network's hidden size is \(H)")
        }
        let V = embedding?.vocabularySize ?? I
        let G = configuration.cell.gateCount, GH = G * H
        self.L = L; self.H = H; self.V = V; self.G = G; cell = configuration.cell; self.format = format
        inputVocabularySize = V; outputSize = O
        // All copies in one block: one allocation large enough for huge pages, streamed in order every token.
        let E = embedding?.dimension ?? 0
        let table = network.decodesWithInputTable(vocabularySize: V, embeddingSize: embedding?.dimension)
        embeddingSize = E
        var shapes: [(rows: Int, cols: Int)] = table ? [] : [(GH, E)]
        for k in 1..<max(L, 1) { shapes.append((GH, configuration.layerInputSize(k))) }
        shapes += Array(repeating: (GH, H), count: L) + [(O, H)]
        let elementBytes = format == .bfloat16 ? 2 : 1
        func aligned(_ bytes: Int) -> Int { (bytes + 63) / 64 * 64 }  // keep every matrix 64-byte aligned
        weightBytes = shapes.reduce(table ? 4 * GH : 0) {
            $0 + $1.rows * $1.cols * elementBytes + (format == .int8 ? 8 * $1.rows : 0)
        }
        let block = allocateAligned(
            UInt8.self,
            count: shapes.reduce(0) {
                $0 + aligned($1.rows * $1.cols * elementBytes) + (format == .int8 ? 2 * aligned(4 * $1.rows) : 0)
            })
        compactWeights = block
        var next = UnsafeMutableRawPointer(block)
        var finite = true
        func compact(_ source: UnsafePointer<Float>, rows: Int, cols: Int) -> CompactMatrix {
            let data = next
            next += aligned(rows * cols * elementBytes)
            switch format {
            case .bfloat16, .float32:  // float32 was refused above
                let copy = data.bindMemory(to: UInt16.self, capacity: rows * cols)
                rk_f32_to_bf16(source, copy, rows * cols)
                return CompactMatrix(rows: rows, cols: cols, bf16: copy, int8: nil, scales: nil, sums: nil)
            case .int8:
                let copy = data.bindMemory(to: Int8.self, capacity: rows * cols),
                    scales = next.bindMemory(to: Float.self, capacity: rows)
                let sums = (next + aligned(4 * rows)).bindMemory(to: Int32.self, capacity: rows)
                next += 2 * aligned(4 * rows)
                if rk_quantize_i8_rows(source, copy, scales, sums, rows, cols) != 0 { finite = false }
                return CompactMatrix(rows: rows, cols: cols, bf16: nil, int8: copy, scales: scales, sums: sums)
            }
        }
        firstInput = table ? nil : compact(network.weights.weightIH[0], rows: GH, cols: E)
        inputWeights = (1..<max(L, 1)).map {
            compact(network.weights.weightIH[$0], rows: GH, cols: configuration.layerInputSize($0))
        }
        recurrentWeights = (0..<L).map { compact(network.weights.weightHH[$0], rows: GH, cols: H) }
        outputWeight = compact(output.weightValues, rows: O, cols: H)
        // Float copies of the biases and layer 0's table, so the decoder stays a consistent snapshot.
        let floats = allocateAligned(Float.self, count: 2 * L * GH + O + (table ? V * GH : V * E))
        floatCopies = floats
        for k in 0..<L {
            (floats + k * GH).update(from: network.weights.biasIH[k], count: GH)
            (floats + (L + k) * GH).update(from: network.weights.biasHH[k], count: GH)
        }
        inputBias = (0..<L).map { floats + $0 * GH }
        recurrentBias = (0..<L).map { floats + (L + $0) * GH }
        outputBias = floats + 2 * L * GH
        outputBias.update(from: output.biasValues, count: O)
        if table {
            inputTable = outputBias + O
            embeddingCopy = nil
            try network.inputProjectionTable(
                embedding: embedding.map { UnsafePointer($0.weightValues) }, vocabularySize: V, into: inputTable!)
        } else {
            inputTable = nil
            embeddingCopy = outputBias + O
            embeddingCopy!.update(from: embedding!.weightValues, count: V * E)
        }
        hidden = allocateAligned(Float.self, count: L * H)
        cellState = allocateAligned(Float.self, count: L * H)
        gates = allocateAligned(Float.self, count: GH)
        recurrent = allocateAligned(Float.self, count: GH)
        logitBuffer = allocateAligned(Float.self, count: O)
        scratch = allocateAligned(Float.self, count: H)
        guard finite else {
            throw RecurrentKitError("the model has weights that are not finite; they cannot be quantized to int8")
        }
    }

    deinit {
        freeAligned(compactWeights)
        freeAligned(floatCopies)
        for buffer in [hidden, cellState, gates, recurrent, logitBuffer, scratch] { freeAligned(buffer) }
    }

    /// Bytes each token streams: the compact weight copies (int8 scales and sums included) and, when layer 0 decodes
    /// with its input table, one Float row of it (4 G*H bytes).
    public let weightBytes: Int

    /// Zeros every layer's state.
    public func reset() {
        hidden.update(repeating: 0, count: L * H)
        cellState.update(repeating: 0, count: L * H)
    }

    /// Feeds `tokens` (each in [0, ``inputVocabularySize``)) in order, the state carried over from the previous call
    /// unless `reset`, and returns the logits after the last one: ``outputSize`` values, valid until the next call.
    /// Allocates nothing.
    public func logits(after tokens: [Int], reset: Bool) throws -> UnsafeMutablePointer<Float> {
        guard !tokens.isEmpty else { throw RecurrentKitError("generation needs at least one token") }
        for (i, token) in tokens.enumerated() where token < 0 || token >= V {
            throw RecurrentKitError("token \(token) at position \(i) is outside the vocabulary [0, \(V))")
        }
        if reset { self.reset() }
        for token in tokens { step(token) }
        outputWeight.multiply(hidden + (L - 1) * H, beta: 0, into: logitBuffer)
        addToRows(logitBuffer, rows: 1, row: outputBias, width: outputSize)
        return logitBuffer
    }

    /// One token through every layer: the same equations as ``RecurrentNetwork``'s forward, with compact weights.
    private func step(_ token: Int) {
        let GH = G * H
        for k in 0..<L {
            let h = hidden + k * H, bih = inputBias[k], bhh = recurrentBias[k]
            // Input part W_ih x + b_ih: layer 0's is a row of the table (or its embedding row times W_ih).
            if k == 0 {
                if let inputTable {
                    gates.update(from: inputTable + token * GH, count: GH)
                } else {
                    firstInput!.multiply(embeddingCopy! + token * embeddingSize, beta: 0, into: gates)
                    addToRows(gates, rows: 1, row: bih, width: GH)
                }
            } else {
                inputWeights[k - 1].multiply(hidden + (k - 1) * H, beta: 0, into: gates)
                addToRows(gates, rows: 1, row: bih, width: GH)
            }
            // The element-wise work is the cells' own (Cells/), one row wide; only the products differ (compact
            // weights).
            switch cell {
            case .rnnTanh, .rnnReLU, .rnnLinear:
                addToRows(gates, rows: 1, row: bhh, width: GH)
                recurrentWeights[k].multiply(h, beta: 1, into: gates)
                if cell != .rnnLinear {
                    rnnRows.h = gates; rnnRows.width = H; rnnRows.activation = RNNActivation(cell)
                    rnnForwardRows(rnnRows, 0..<1)
                }
                h.update(from: gates, count: H)
            case .lstm:
                addToRows(gates, rows: 1, row: bhh, width: GH)
                recurrentWeights[k].multiply(h, beta: 1, into: gates)
                let c = cellState + k * H
                lstmRows.gates = gates; lstmRows.c = c; lstmRows.cPrev = c; lstmRows.width = H
                lstmRows.tanhCell = scratch; lstmRows.output = h
                lstmForwardRows(lstmRows, 0..<1)
            case .gru:
                recurrent.update(from: bhh, count: GH)
                recurrentWeights[k].multiply(h, beta: 1, into: recurrent)
                gruRows.gates = gates; gruRows.recurrent = recurrent; gruRows.recurrentNew = scratch
                gruRows.h = h; gruRows.hPrev = h; gruRows.width = H
                gruForwardRows(gruRows, 0..<1)
            }
        }
    }
}
