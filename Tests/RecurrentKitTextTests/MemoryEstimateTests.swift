import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit
@testable import RecurrentKitText

/// Issue #30: the memory estimate of a training run counts every buffer the run allocates. Cheap exact checks of its
/// terms; `Scripts/memory/estimate-vs-peak.sh` compares it with the peak resident memory of real `rnn train` runs.
final class MemoryEstimateTests: XCTestCase {
    /// Options of a small one-hot model whose checkpoint dominates its transients (no training tokens given).
    func options(
        _ cell: CellKind = .lstm, hidden: Int = 64, layers: Int = 2, optimizer: OptimizerKind = .sgd
    ) -> TrainingOptions {
        var o = TrainingOptions()
        o.cell = cell
        o.hiddenSize = hidden
        o.numLayers = layers
        o.optimizer = optimizer
        o.batchSize = 8
        o.numSteps = 20
        o.sampleEvery = 0
        return o
    }

    func estimate(_ o: TrainingOptions, V: Int = 28, T: Int = 20, training: Int = 0, validation: Int = 0) throws -> Int
    {
        try XCTUnwrap(
            o.estimatedMemoryBytes(
                vocabularySize: V, chunkLength: T, trainingTokens: training, validationTokens: validation))
    }

    /// The padded parameter count of `o`'s model (the store's `count`).
    func parameterCount(_ o: TrainingOptions, V: Int = 28) -> Int {
        LanguageModelConfiguration(
            vocabularySize: V, cell: o.cell, hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: o.dropout,
            embeddingSize: o.embeddingSize, bias: o.recurrentBias ?? true,
            projectionSize: o.projectionSize ?? 0
        ).parameterLayout.totalCount
    }

    // MARK: - The recurrent layers' part is exact

    /// Every workspace the network grows in a training forward and backward, as `activationMemoryBytes` reports it.
    func testActivationBytesMatchTheNetworkExactly() throws {
        let cases: [(RecurrentConfiguration, oneHot: Bool, T: Int, B: Int, interval: Int?)] = [
            (RecurrentConfiguration(cell: .rnnTanh, inputSize: 11, hiddenSize: 24), true, 20, 4, nil),
            // T * B < 64: no W_ih^T
            (RecurrentConfiguration(cell: .rnnTanh, inputSize: 11, hiddenSize: 24), true, 3, 5, nil),
            (
                RecurrentConfiguration(cell: .gru, inputSize: 7, hiddenSize: 16, numLayers: 3, dropout: 0.3), false, 18,
                3, nil
            ),
            (
                RecurrentConfiguration(
                    cell: .lstm, inputSize: 9, hiddenSize: 20, numLayers: 2, dropout: 0.2, bias: false,
                    projectionSize: 6), true, 40, 2, 16
            ),
            (RecurrentConfiguration(cell: .lstm, inputSize: 5, hiddenSize: 12, numLayers: 4), false, 50, 3, 32),
            // interval = T
            (RecurrentConfiguration(cell: .rnnReLU, inputSize: 6, hiddenSize: 10, numLayers: 2), false, 16, 2, 16),
        ]
        for (configuration, oneHot, T, B, interval) in cases {
            var g = SeededGenerator(seed: 3)
            let network = try RecurrentNetwork<Float>(configuration, generator: &g)
            network.recomputeInterval = interval
            let I = configuration.inputSize
            let input: RecurrentInput<Float> =
                oneHot
                ? .oneHot(tokens: (0..<(T * B)).map { _ in g.nextInt(below: I) }, steps: T, batch: B)
                : .dense(Tensor(shape: [T, B, I]) { Float(g.normal()) })
            _ = try network.forwardTensors(input, training: true, generator: &g)
            _ = try network.backwardTensors(
                outputGradient: Tensor(shape: [T, B, configuration.outputSize]) { Float(g.normal()) })
            let predicted = try XCTUnwrap(
                configuration.trainingActivationBytes(
                    steps: T, batch: B, oneHotInput: oneHot, recomputeInterval: interval))
            XCTAssertEqual(
                predicted, network.activationMemoryBytes, "\(configuration) T \(T) B \(B) interval \(interval ?? 0)")
            // In whole pages: never less, at most 2 MiB more per workspace (23 for the stack, 8 per layer).
            let resident = try XCTUnwrap(
                configuration.trainingActivationBytes(
                    steps: T, batch: B, oneHotInput: oneHot, recomputeInterval: interval,
                    residentPages: true))
            XCTAssertGreaterThanOrEqual(resident, predicted)
            XCTAssertLessThanOrEqual(resident, predicted + (23 + 8 * configuration.numLayers) * (2 << 20))
        }
    }

    /// The language model trained through `LanguageModelTrainer` grows its recurrent workspaces to exactly the
    /// estimate's.
    func testTrainerGrowsTheRecurrentWorkspacesToTheEstimate() throws {
        for (cell, embedding) in [(CellKind.gru, Int?.none), (.lstm, 6)] {
            var o = options(cell, hidden: 12)
            o.embeddingSize = embedding
            o.dropout = 0.1
            o.maxTokens = 800
            o.epochs = 1
            let trainer = try LanguageModelTrainer(options: o)
            try trainer.train()
            let recurrent = trainer.model.configuration.recurrent
            XCTAssertEqual(
                recurrent.trainingActivationBytes(
                    steps: trainer.chunkLength, batch: o.batchSize, oneHotInput: embedding == nil),
                trainer.model.recurrent.activationMemoryBytes, "\(cell)")
        }
    }

    // MARK: - Terms of the training estimate

    /// Each optimizer buffer: a Float block while training (the parameters' precision), 8 bytes per parameter as
    /// Double when a checkpoint is made, and twice 8 more in the file being saved (its tensors and its bytes).
    func testEachOptimizerBufferCostsItsFloatBlockAndTwentyFourBytesPerParameterAtSaving() throws {
        let sgd = options(optimizer: .sgd)
        let P = parameterCount(sgd)
        let perBuffer = Kernels.residentBytes(ofBlock: 4 * P) + 8 * P + 2 * 8 * P
        var momentum = sgd
        momentum.momentum = 0.9
        var rmspropMomentum = options(optimizer: .rmsprop)
        rmspropMomentum.momentum = 0.5
        let base = try estimate(sgd)
        XCTAssertEqual(try estimate(momentum) - base, perBuffer)
        XCTAssertEqual(try estimate(options(optimizer: .rmsprop)) - base, perBuffer)
        XCTAssertEqual(try estimate(options(optimizer: .adam)) - base, 2 * perBuffer)
        XCTAssertEqual(try estimate(options(optimizer: .adamw)) - base, 2 * perBuffer)
        XCTAssertEqual(try estimate(rmspropMomentum) - base, 2 * perBuffer)
        // Values and gradients alone already bound it from below.
        XCTAssertGreaterThan(base, 2 * 4 * P + 32 << 20)
    }

    /// The text: one byte per token kept below 257 vocabulary entries (two up to 65,536), an epoch's row starts
    /// (8 bytes per T training tokens), and a second epoch's row starts while a checkpoint is made when they outgrow
    /// saving it.
    func testTokensCostTheirWidthAndAnEpochsRowStarts() throws {
        let o = options(optimizer: .adam)
        let T = 20
        let base = try estimate(o, T: T)
        XCTAssertEqual(try estimate(o, T: T, training: 10_000) - base, 1 * 10_000 + 8 * (10_000 / T))
        XCTAssertEqual(try estimate(o, T: T, validation: 1_000) - base, 1 * 1_000)
        XCTAssertEqual(
            try estimate(o, V: 300, T: T, validation: 1_000) - (try estimate(o, V: 300, T: T)), 2 * 1_000)
        // A text large enough that redrawing an epoch's row starts outgrows saving the checkpoint.
        let P = parameterCount(o), tokens = 100_000_000
        let save =
            2 * (4 * P + 16 * P + 4 * o.numLayers * o.batchSize * 2 * o.hiddenSize) + 4 * 4 * o.hiddenSize
            * o.hiddenSize
        let starts = 8 * (tokens / T + 1)
        XCTAssertGreaterThan(starts, save)
        XCTAssertEqual(try estimate(o, T: T, training: tokens) - base, tokens + (starts - 8) + starts - save)
    }

    /// Mixed precision halves the packed W_hh copies but keeps bf16 copies of operands; without validation and
    /// samples, both packed copies are bf16.
    func testBFloat16PacksHalfTheRecurrentWeights() throws {
        var o = options(.rnnTanh, hidden: 2048, layers: 1)
        let float = try estimate(o)
        o.precision = .bfloat16
        let mixed = try estimate(o)
        let R = 2048
        let f32 = Kernels.residentBytes(
            ofBlock: try XCTUnwrap(Kernels.packedOperandBytes(rows: R, columns: R, precision: .float32)))
        let bf16 = Kernels.residentBytes(
            ofBlock: try XCTUnwrap(Kernels.packedOperandBytes(rows: R, columns: R, precision: .bfloat16)))
        XCTAssertEqual(f32, 18 << 20)  // 16 MiB and the 64-byte header: 9 huge pages
        XCTAssertEqual(bf16, 10 << 20)  // 8 MiB and the tag: 5 huge pages
        XCTAssertLessThan(mixed, float)
        XCTAssertGreaterThanOrEqual(mixed, float - 2 * (f32 - bf16))
        // A validation forward in Float packs W_hh for the forward in the Float layout again.
        o.validationFraction = 0.1
        XCTAssertEqual(
            try estimate(o) - mixed, f32 - bf16 + Kernels.residentBytes(ofBlock: 4 * o.numSteps * o.batchSize * 28))
    }

    func testPackedOperandBytesMatchTheKernels() throws {
        for (k, n) in [(1, 1), (7, 33), (512, 512), (513, 1000), (1025, 31), (2048, 8192)] {
            XCTAssertEqual(
                Kernels.packedOperandBytes(rows: k, columns: n, precision: .bfloat16),
                Int(rk_sgemm_bf16_pack_b_size(k, n)), "\(k) x \(n)")
            // Float: at least what `PackedWeight` allocates for either layout on this machine's levels.
            let float = try XCTUnwrap(Kernels.packedOperandBytes(rows: k, columns: n, precision: .float32))
            XCTAssertGreaterThanOrEqual(float, Float.packedSize(k: k, n: n), "\(k) x \(n)")
            XCTAssertLessThanOrEqual(float, 64 + k * (n + 63) * 4)
        }
        XCTAssertEqual(Kernels.residentBytes(ofBlock: (4 << 20) - 1), (4 << 20) - 1)
        XCTAssertEqual(Kernels.residentBytes(ofBlock: (4 << 20) + 1), 6 << 20)
    }

    func testTheEstimateGrowsWithHiddenBatchStepsAndLayers() throws {
        let o = options()
        let base = try estimate(o)
        var wider = o
        wider.hiddenSize *= 2
        var larger = o
        larger.batchSize *= 2
        var deeper = o
        deeper.numLayers += 1
        XCTAssertGreaterThan(try estimate(wider), base)
        XCTAssertGreaterThan(try estimate(larger), base)
        XCTAssertGreaterThan(try estimate(deeper), base)
        XCTAssertGreaterThan(try estimate(o, T: 40), base)
        XCTAssertGreaterThan(try estimate(o, V: 1_000), base)
        // The logits and their gradient: 8 bytes per step, row and token of the vocabulary, at least.
        XCTAssertGreaterThanOrEqual(try estimate(o, V: 10_028) - (try estimate(o, V: 28)), 8 * 20 * 8 * 10_000)
        // Memory-efficient BPTT keeps less at long chunks.
        var recomputing = o
        recomputing.recomputeInterval = 16
        XCTAssertLessThan(try estimate(recomputing, T: 1_000), try estimate(o, T: 1_000))
    }

    /// The estimate of a large model: activations, packed copies and the checkpoint bring it far above the values and
    /// gradients the previous estimate counted (H 8000 measured 1,531 MiB; the old formula said 834 MiB at B 32, T 35).
    func testAnH8000RunCountsItsPackedWeightsAndCheckpoint() throws {
        var o = options(.rnnTanh, hidden: 8000, layers: 1)
        o.batchSize = 8
        o.numSteps = 16
        let P = parameterCount(o)
        let bytes = try estimate(o, T: 16, training: 600)
        // Values, gradients, two packed 8000 x 8000 copies, the file and its bytes: 16 P + 8 H^2 at least.
        XCTAssertGreaterThan(bytes, 16 * P + 8 * 8000 * 8000)
        XCTAssertLessThan(bytes, 1_600 << 20)
    }

    func testNilOnOverflowAndOnInvalidSizes() {
        let o = options()
        XCTAssertNil(o.estimatedMemoryBytes(vocabularySize: 1 << 24, chunkLength: Int.max / 2))
        XCTAssertNil(o.estimatedMemoryBytes(vocabularySize: Int.max, chunkLength: 35))
        XCTAssertNil(o.estimatedMemoryBytes(vocabularySize: 28, chunkLength: 35, trainingTokens: Int.max - 1))
        XCTAssertNil(o.estimatedMemoryBytes(vocabularySize: 0, chunkLength: 35))
        XCTAssertNil(o.estimatedMemoryBytes(vocabularySize: 28, chunkLength: 0))
        XCTAssertNil(o.estimatedMemoryBytes(vocabularySize: 28, chunkLength: 35, trainingTokens: -1))
        var huge = o
        huge.batchSize = Int.max / 2
        XCTAssertNil(huge.estimatedMemoryBytes(vocabularySize: 28, chunkLength: 35))
        huge = o
        huge.precision = .bfloat16
        XCTAssertNil(huge.estimatedMemoryBytes(vocabularySize: 28, chunkLength: Int.max))
        let stack = RecurrentConfiguration(cell: .lstm, inputSize: 1 << 24, hiddenSize: 1 << 16, numLayers: 1024)
        XCTAssertNil(stack.trainingActivationBytes(steps: Int.max, batch: 2, oneHotInput: false))
        XCTAssertNil(stack.trainingActivationBytes(steps: 1, batch: 0, oneHotInput: false))
        XCTAssertNil(
            RecurrentConfiguration(cell: .gru, inputSize: 4, hiddenSize: 4, bidirectional: true)
                .trainingActivationBytes(steps: 4, batch: 4, oneHotInput: false))
        XCTAssertNil(Kernels.packedOperandBytes(rows: Int.max, columns: 2, precision: .float32))
        XCTAssertNil(Kernels.packedOperandBytes(rows: 2, columns: Int.max, precision: .bfloat16))
        XCTAssertNil(Kernels.packedOperandBytes(rows: -1, columns: 2, precision: .bfloat16))
    }
}
