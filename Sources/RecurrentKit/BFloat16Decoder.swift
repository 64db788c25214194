import _RecurrentKitKernels

/// Batch-1, token-by-token inference of a token model (an optional ``Embedding`` or one-hot input, a
/// ``RecurrentNetwork``, a ``Linear`` head on the last layer) with bfloat16 copies of its weight matrices.
///
/// At batch 1 every token re-reads every weight matrix once, so decoding is limited by how fast the weights stream
/// from cache; halving their size is the lever. The decoder is a snapshot taken when it is created: bf16 copies of the
/// weight matrices, Float copies of the biases and the embedding; states and all arithmetic are Float. Later changes
/// to the layers' parameters are not seen (make a new decoder). The element-wise step is the cells' own (the same
/// code the network's forward runs); only the matrix products read bf16 weights.
public final class BFloat16Decoder {
    private let L: Int, H: Int, V: Int, G: Int
    /// Tokens the input accepts: the embedding's vocabulary, or the network's input size for one-hot input.
    public let inputVocabularySize: Int
    /// Logits per token: the head's output size.
    public let outputSize: Int
    private let cell: CellKind
    /// Per layer: W_ih (G*H, In) in bf16; for one-hot input layer 0 holds W_ih^T (V, G*H) so a token is one row.
    private let inputWeights: [UnsafeMutablePointer<UInt16>]
    /// Per layer: W_hh (G*H, H) in bf16.
    private let recurrentWeights: [UnsafeMutablePointer<UInt16>]
    /// The head's weight (outputSize, H) in bf16.
    private let outputWeight: UnsafeMutablePointer<UInt16>
    /// The one block holding every bf16 matrix above.
    private let compactWeights: UnsafeMutablePointer<UInt16>
    /// The block holding the Float copies of the biases and the embedding.
    private let floatCopies: UnsafeMutablePointer<Float>
    private let inputBias: [UnsafeMutablePointer<Float>]      // (G*H) per layer, copied
    private let recurrentBias: [UnsafeMutablePointer<Float>]  // (G*H) per layer, copied
    private let outputBias: UnsafeMutablePointer<Float>       // (V), copied
    private let embedding: UnsafeMutablePointer<Float>?       // (V, E), Float, copied
    private let embeddingSize: Int
    private let hidden: UnsafeMutablePointer<Float>           // (L, H) h of every layer
    private let cellState: UnsafeMutablePointer<Float>        // (L, H) LSTM c
    private let gates: UnsafeMutablePointer<Float>            // (G*H) input part, then the gates
    private let recurrent: UnsafeMutablePointer<Float>        // (G*H) W_hh h + b_hh (GRU)
    private let logitBuffer: UnsafeMutablePointer<Float>      // (V)
    private let scratch: UnsafeMutablePointer<Float>          // (H) tanh(c) (LSTM) or R_n (GRU)
    // The cells' element-wise step work, one row at a time.
    private let rnnRows = RNNForwardRows<Float>(), lstmRows = LSTMForwardRows<Float>(), gruRows = GRUForwardRows<Float>()

    /// Copies the weight matrices to bfloat16 (round to nearest even) and starts from a zero state.
    /// - Parameters:
    ///   - network: the recurrent layers; with `embedding` nil its input is one-hot over `inputSize` tokens.
    ///   - embedding: token vectors (V, E) with E the network's `inputSize`, or nil.
    ///   - output: the head, (outputSize, H) on the last layer's h.
    /// - Throws: when the sizes do not chain.
    public init(network: RecurrentNetwork<Float>, embedding: Embedding<Float>?, output: Linear<Float>) throws {
        let configuration = network.configuration
        guard !configuration.bidirectional else {
            throw RecurrentKitError("a bidirectional network reads the whole sequence before its first output; it cannot decode token by token")
        }
        guard configuration.projectionSize == 0 else { throw RecurrentKitError("bf16 decoding does not cover LSTM projections (proj_size); decode in float32") }
        let L = configuration.numLayers, H = configuration.hiddenSize, I = configuration.inputSize, O = output.outputSize
        if let embedding, embedding.dimension != I {
            throw RecurrentKitError("the embedding's width \(embedding.dimension) is not the network's input size \(I)")
        }
        guard output.inputSize == H else { throw RecurrentKitError("the head reads \(output.inputSize) values but the network's hidden size is \(H)") }
        let V = embedding?.vocabularySize ?? I
        let G = configuration.cell.gateCount, GH = G * H
        self.L = L; self.H = H; self.V = V; self.G = G; cell = configuration.cell
        inputVocabularySize = V; outputSize = O
        embeddingSize = embedding?.dimension ?? 0
        // All copies in one block: one allocation large enough for huge pages, streamed in order every token.
        var sizes: [Int] = []
        for k in 0..<L { sizes.append(GH * (k == 0 ? I : H)) }
        sizes += Array(repeating: GH * H, count: L) + [O * H]
        weightBytes = 2 * sizes.reduce(0, +)
        let block = allocateAligned(UInt16.self, count: sizes.reduce(0) { $0 + ($1 + 31) / 32 * 32 })
        compactWeights = block
        var next = block
        func compact(_ source: UnsafePointer<Float>, count: Int) -> UnsafeMutablePointer<UInt16> {
            let copy = next
            rk_f32_to_bf16(source, copy, count)
            next += (count + 31) / 32 * 32 // keep every matrix 64-byte aligned
            return copy
        }
        var inputs: [UnsafeMutablePointer<UInt16>] = []
        for k in 0..<L {
            let w = network.weightIH[k]
            if k == 0 && embedding == nil {
                let transposed = allocateAligned(Float.self, count: V * GH)
                for j in 0..<GH { for v in 0..<V { transposed[v * GH + j] = w[j * V + v] } }
                inputs.append(compact(transposed, count: V * GH))
                freeAligned(transposed)
            } else {
                inputs.append(compact(w, count: GH * configuration.layerInputSize(k)))
            }
        }
        inputWeights = inputs
        recurrentWeights = (0..<L).map { compact(network.weightHH[$0], count: GH * H) }
        outputWeight = compact(output.weightValues, count: O * H)
        // Float copies of the biases and the embedding, so the decoder stays a consistent snapshot.
        let E = embedding?.dimension ?? 0
        let floats = allocateAligned(Float.self, count: 2 * L * GH + O + V * E)
        floatCopies = floats
        for k in 0..<L {
            (floats + k * GH).update(from: network.biasIH[k], count: GH)
            (floats + (L + k) * GH).update(from: network.biasHH[k], count: GH)
        }
        inputBias = (0..<L).map { floats + $0 * GH }
        recurrentBias = (0..<L).map { floats + (L + $0) * GH }
        outputBias = floats + 2 * L * GH
        outputBias.update(from: output.biasValues, count: O)
        if let embedding {
            self.embedding = outputBias + O
            self.embedding!.update(from: embedding.weightValues, count: V * E)
        } else {
            self.embedding = nil
        }
        hidden = allocateAligned(Float.self, count: L * H)
        cellState = allocateAligned(Float.self, count: L * H)
        gates = allocateAligned(Float.self, count: GH)
        recurrent = allocateAligned(Float.self, count: GH)
        logitBuffer = allocateAligned(Float.self, count: O)
        scratch = allocateAligned(Float.self, count: H)
    }

    deinit {
        freeAligned(compactWeights)
        freeAligned(floatCopies)
        for buffer in [hidden, cellState, gates, recurrent, logitBuffer, scratch] { freeAligned(buffer) }
    }

    /// Bytes of the bfloat16 weight copies (what each token streams).
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
        rk_gemv_bf16(outputSize, H, outputWeight, H, hidden + (L - 1) * H, 0, logitBuffer)
        for j in 0..<outputSize { logitBuffer[j] += outputBias[j] }
        return logitBuffer
    }

    /// One token through every layer: the same equations as ``RecurrentNetwork``'s forward, with bf16 weights.
    private func step(_ token: Int) {
        let GH = G * H
        for k in 0..<L {
            let h = hidden + k * H, bih = inputBias[k], bhh = recurrentBias[k]
            // Input part W_ih x + b_ih.
            if k == 0 && embedding == nil {
                rk_bf16_to_f32(inputWeights[0] + token * GH, gates, GH)
            } else {
                let x = k == 0 ? UnsafePointer(embedding! + token * embeddingSize) : UnsafePointer(hidden + (k - 1) * H)
                rk_gemv_bf16(GH, k == 0 ? embeddingSize : H, inputWeights[k], k == 0 ? embeddingSize : H, x, 0, gates)
            }
            for j in 0..<GH { gates[j] += bih[j] }
            // The element-wise work is the cells' own (Cells/), one row wide; only the products differ (bf16 weights).
            switch cell {
            case .rnnTanh, .rnnReLU, .rnnLinear:
                for j in 0..<GH { gates[j] += bhh[j] }
                rk_gemv_bf16(GH, H, recurrentWeights[k], H, h, 1, gates)
                if cell != .rnnLinear {
                    rnnRows.h = gates; rnnRows.width = H; rnnRows.activation = RNNActivation(cell)
                    rnnForwardRows(rnnRows, 0..<1)
                }
                h.update(from: gates, count: H)
            case .lstm:
                for j in 0..<GH { gates[j] += bhh[j] }
                rk_gemv_bf16(GH, H, recurrentWeights[k], H, h, 1, gates)
                let c = cellState + k * H
                lstmRows.gates = gates; lstmRows.c = c; lstmRows.cPrev = c; lstmRows.width = H
                lstmForwardRows(lstmRows, 0..<1)
                lstmOutput(gates: gates, cell: c, tanhCell: scratch, hidden: h, batch: 1, width: H)
            case .gru:
                recurrent.update(from: bhh, count: GH)
                rk_gemv_bf16(GH, H, recurrentWeights[k], H, h, 1, recurrent)
                gruRows.gates = gates; gruRows.recurrent = recurrent; gruRows.recurrentNew = scratch
                gruRows.h = h; gruRows.hPrev = h; gruRows.width = H
                gruForwardRows(gruRows, 0..<1)
            }
        }
    }
}
