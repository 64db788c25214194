import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit
@testable import RecurrentKitText

/// Memory-efficient BPTT (`recomputeInterval`): the same bits as keeping every activation, for far less memory.
final class RecomputeTests: XCTestCase {
    struct Pass<Scalar: RecurrentScalar> {
        var output: [Scalar], finalH: [Scalar], finalC: [Scalar]?
        var gradients: [Scalar], inputGradient: [Scalar]?, h0Gradient: [Scalar], c0Gradient: [Scalar]?
        var hiddenGradients: [[Scalar]]
    }

    /// One forward and backward of a fresh copy of the same network (seed 5), with `interval` (nil keeps everything).
    func run<Scalar: RecurrentScalar>(
        _ type: Scalar.Type, cell: CellKind, interval: Int?, steps T: Int, batch B: Int = 3,
        layers L: Int = 2, dropout: Double = 0.3, oneHot: Bool = false,
        truncation: BackwardTruncation = .none
    ) throws -> Pass<Scalar> {
        var g = SeededGenerator(seed: 5)
        let I = 5, H = 7
        let config = RecurrentConfiguration(cell: cell, inputSize: I, hiddenSize: H, numLayers: L, dropout: dropout)
        let network = try RecurrentNetwork<Scalar>(config, generator: &g)
        network.recomputeInterval = interval
        let recorder = HiddenGradientRecorder<Scalar>()
        network.hiddenGradientRecorder = recorder
        let input: RecurrentInput<Scalar> =
            oneHot
            ? .oneHot(tokens: (0..<(T * B)).map { _ in g.nextInt(below: I) }, steps: T, batch: B)
            : .dense(Tensor(shape: [T, B, I]) { Scalar(g.normal()) })
        let h0 = Tensor<Scalar>(shape: [L, B, H]) { Scalar(0.5 * g.normal()) }
        let c0: Tensor<Scalar>? = cell.hasCellState ? Tensor(shape: [L, B, H]) { Scalar(0.5 * g.normal()) } : nil
        let dOut = Tensor<Scalar>(shape: [T, B, H]) { Scalar(g.normal()) }
        let dhn = Tensor<Scalar>(shape: [L, B, H]) { Scalar(g.normal()) }
        let dcn: Tensor<Scalar>? = cell.hasCellState ? Tensor(shape: [L, B, H]) { Scalar(g.normal()) } : nil
        network.parameters.zeroGradients()
        let (output, final) = try network.forwardTensors(
            input, initialState: RecurrentState(h: h0, c: c0), training: true, generator: &g)
        let (dx, dState) = try network.backwardTensors(
            outputGradient: dOut, finalStateGradient: RecurrentState(h: dhn, c: dcn),
            truncation: truncation)
        // The final state read after backward (the trainer carries it) is the forward's.
        XCTAssertEqual(try network.finalState(), final)
        XCTAssertEqual(try network.outputTensor(), output)
        return Pass(
            output: output.scalars, finalH: final.h.scalars, finalC: final.c?.scalars,
            gradients: Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count)),
            inputGradient: dx?.scalars, h0Gradient: dState.h.scalars, c0Gradient: dState.c?.scalars,
            hiddenGradients: recorder.gradients)
    }

    func assertBitIdentical<Scalar: RecurrentScalar>(_ a: Pass<Scalar>, _ b: Pass<Scalar>, _ label: String) {
        XCTAssertEqual(a.output, b.output, "\(label): outputs")
        XCTAssertEqual(a.finalH, b.finalH, "\(label): final h")
        XCTAssertEqual(a.finalC, b.finalC, "\(label): final c")
        XCTAssertEqual(a.gradients, b.gradients, "\(label): parameter gradients")
        XCTAssertEqual(a.inputGradient, b.inputGradient, "\(label): input gradient")
        XCTAssertEqual(a.h0Gradient, b.h0Gradient, "\(label): h0 gradient")
        XCTAssertEqual(a.c0Gradient, b.c0Gradient, "\(label): c0 gradient")
        XCTAssertEqual(a.hiddenGradients, b.hiddenGradients, "\(label): recorded dL/dh_t")
        XCTAssertTrue(a.gradients.contains { $0 != 0 }, "\(label): gradients are not all zero")
    }

    func testRecomputedGradientsAreBitIdenticalForEveryCell() throws {
        // T = 71 is not a multiple of any interval: the last segment is short.
        for cell in [CellKind.rnnTanh, .rnnReLU, .gru, .lstm] {
            let reference = try run(Float.self, cell: cell, interval: nil, steps: 71)
            for interval in [16, 32, 48, 64] {
                assertBitIdentical(
                    reference, try run(Float.self, cell: cell, interval: interval, steps: 71),
                    "\(cell) Float, interval \(interval)")
            }
            let referenceDouble = try run(Double.self, cell: cell, interval: nil, steps: 40, layers: 3)
            assertBitIdentical(
                referenceDouble, try run(Double.self, cell: cell, interval: 16, steps: 40, layers: 3),
                "\(cell) Double, 3 layers")
        }
    }

    func testRecomputeWithOneHotInputAndTruncation() throws {
        for cell in [CellKind.gru, .lstm] {
            for truncation in [BackwardTruncation.fixed(length: 10), .randomized(continueProbability: 0.8, seed: 3)] {
                let reference = try run(
                    Float.self, cell: cell, interval: nil, steps: 50, oneHot: true, truncation: truncation)
                let recomputed = try run(
                    Float.self, cell: cell, interval: 16, steps: 50, oneHot: true, truncation: truncation)
                assertBitIdentical(reference, recomputed, "\(cell) one-hot, \(truncation)")
                XCTAssertNil(recomputed.inputGradient)
            }
        }
    }

    func testIntervalAtLeastTIsOneSegment() throws {
        let reference = try run(Double.self, cell: .lstm, interval: nil, steps: 20, batch: 1, layers: 1, dropout: 0)
        assertBitIdentical(
            reference, try run(Double.self, cell: .lstm, interval: 32, steps: 20, batch: 1, layers: 1, dropout: 0),
            "interval > T")
    }

    func testLanguageModelLossAndGradientsUnchanged() throws {
        func lossAndGradients(_ interval: Int?) throws -> (Double, [Float]) {
            var g = SeededGenerator(seed: 8)
            let model = try LanguageModel<Float>(
                LanguageModelConfiguration(vocabularySize: 11, cell: .lstm, hiddenSize: 9, numLayers: 2, dropout: 0.2),
                generator: &g)
            model.recurrent.recomputeInterval = interval
            let T = 60, B = 4
            let inputs = (0..<(T * B)).map { _ in g.nextInt(below: 11) },
                targets = (0..<(T * B)).map { _ in g.nextInt(below: 11) }
            model.parameters.zeroGradients()
            let loss = try model.loss(
                inputs: inputs, targets: targets, steps: T, batch: B, training: true, generator: &g)
            return (loss, Array(UnsafeBufferPointer(start: model.parameters.gradients, count: model.parameters.count)))
        }
        let (loss, gradients) = try lossAndGradients(nil)
        let (recomputedLoss, recomputedGradients) = try lossAndGradients(16)
        XCTAssertEqual(loss, recomputedLoss)
        XCTAssertEqual(gradients, recomputedGradients)
    }

    func testActivationMemoryFallsAtLeastFivefoldAtThousandSteps() throws {
        func bytes(_ cell: CellKind, _ interval: Int?) throws -> Int {
            var g = SeededGenerator(seed: 9)
            let config = RecurrentConfiguration(cell: cell, inputSize: 32, hiddenSize: 64, numLayers: 2)
            let network = try RecurrentNetwork<Float>(config, generator: &g)
            network.recomputeInterval = interval
            let T = 1000, B = 4
            _ = try network.forwardTensors(
                .dense(Tensor(shape: [T, B, 32]) { Float(g.normal()) }), training: true, generator: &g)
            _ = try network.backwardTensors(outputGradient: Tensor(shape: [T, B, 64]) { Float(g.normal()) })
            return network.activationMemoryBytes
        }
        // A vanilla RNN keeps only h per step, so the layer input and the returned outputs (kept whole in both modes)
        // bound its saving at (7H + I) / (H + I) = 5x here; gated cells keep far more per step.
        for (cell, minimum) in [(CellKind.lstm, 5.0), (.gru, 5.0), (.rnnTanh, 3.5)] {
            let full = try bytes(cell, nil), recomputed = try bytes(cell, 32)
            let ratio = Double(full) / Double(recomputed)
            print(
                "\(cell) T=1000 activation memory: \(full) bytes kept, \(recomputed) with recomputeInterval 32 "
                    + "(\(String(format: "%.1f", ratio))x less)"
            )
            XCTAssertGreaterThanOrEqual(ratio, minimum, "\(cell)")
        }
    }

    func testTrainingWithRecomputationGivesTheSameRun() throws {
        func history(_ interval: Int?) throws -> ([EpochReport], [Float]) {
            var o = TrainingOptions()
            o.maxTokens = 3000
            o.cell = .lstm
            o.hiddenSize = 16
            o.numLayers = 2
            o.dropout = 0.1
            o.bptt = .full  // chunks of (N - 1) / (B + 1) = 90 steps
            o.epochs = 2
            o.sampleEvery = 0
            o.recomputeInterval = interval
            let trainer = try LanguageModelTrainer(options: o)
            try trainer.train()
            let p = trainer.model.parameters
            return (trainer.history, Array(UnsafeBufferPointer(start: p.values, count: p.count)))
        }
        let (reference, weights) = try history(nil)
        let (recomputed, recomputedWeights) = try history(32)
        XCTAssertEqual(reference.map(\.trainPerplexity), recomputed.map(\.trainPerplexity))
        XCTAssertEqual(weights, recomputedWeights)
        var bad = TrainingOptions()
        bad.recomputeInterval = 20
        XCTAssertThrowsError(try bad.validate())
        // Switched on halfway through, after a save and resume: the same run.
        var o = TrainingOptions()
        o.maxTokens = 3000; o.cell = .lstm; o.hiddenSize = 16; o.numLayers = 2; o.dropout = 0.1
        o.bptt = .full; o.epochs = 2; o.sampleEvery = 0
        let first = try LanguageModelTrainer(options: o)
        _ = try first.train(shouldStop: { first.step >= 1 })
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try first.checkpoint().serialized()))
        try resumed.setRecomputeInterval(32)
        XCTAssertThrowsError(try resumed.setRecomputeInterval(8))
        XCTAssertEqual(resumed.options.recomputeInterval, 32)
        try resumed.train()
        let p = resumed.model.parameters
        XCTAssertEqual(Array(UnsafeBufferPointer(start: p.values, count: p.count)), weights)
    }

    func testBackwardTwiceAndIntervalChangedAfterForward() throws {
        for cell in [CellKind.lstm, .gru] {
            var g = SeededGenerator(seed: 15)
            let config = RecurrentConfiguration(cell: cell, inputSize: 3, hiddenSize: 5, numLayers: 2, dropout: 0.2)
            let network = try RecurrentNetwork<Float>(config, generator: &g)
            network.recomputeInterval = 16
            let x = Tensor<Float>(shape: [64, 2, 3]) { Float(g.normal()) },
                dOut = Tensor<Float>(shape: [64, 2, 5]) { Float(g.normal()) }
            _ = try network.forwardTensors(.dense(x), training: true, generator: &g)
            network.parameters.zeroGradients()
            let first = try network.backwardTensors(outputGradient: dOut)
            let once = Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
            // The caches now hold segment 0; a second backward must recompute the others, and the interval set after
            // the forward must not change which segments exist.
            network.recomputeInterval = 32
            network.parameters.zeroGradients()
            let second = try network.backwardTensors(outputGradient: dOut)
            XCTAssertEqual(
                Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count)), once,
                "\(cell)")
            XCTAssertEqual(first.inputGradient, second.inputGradient, "\(cell)")
            network.recomputeInterval = nil
            _ = try network.backwardTensors(outputGradient: dOut)
        }
        // The carried state of a cell without c has no c, even when the storage passed in had one.
        var g = SeededGenerator(seed: 16)
        let rnn = try RecurrentNetwork<Float>(
            RecurrentConfiguration(cell: .gru, inputSize: 2, hiddenSize: 3), generator: &g)
        _ = try rnn.forwardTensors(.dense(Tensor(shape: [4, 1, 2]) { 0.5 }), generator: &g)
        var state: RecurrentState<Float>? = RecurrentState(h: Tensor(zeros: [1, 1, 3]), c: Tensor(zeros: [1, 1, 3]))
        try rnn.copyFinalState(into: &state)
        XCTAssertEqual(state, try rnn.finalState())
    }

    func testInvalidIntervalIsAClearError() throws {
        var g = SeededGenerator(seed: 1)
        let network = try RecurrentNetwork<Float>(
            RecurrentConfiguration(cell: .gru, inputSize: 2, hiddenSize: 3), generator: &g)
        for interval in [0, -16, 10] {
            network.recomputeInterval = interval
            XCTAssertThrowsError(try network.forwardTensors(.dense(Tensor(shape: [40, 1, 2]) { 0.1 }), generator: &g)) {
                error in
                XCTAssertTrue("\(error)".contains("multiple of 16"), "\(error)")
            }
        }
    }
}

/// Element-wise step work is split over the kernel pool for large steps; the bits must not depend on the thread count.
final class ThreadCountTests: XCTestCase {
    func testGradientsAreIdenticalForOneAndTwoThreads() throws {
        let saved = rk_threads()
        defer { rk_set_threads(saved) }
        for (cell, hidden) in [(CellKind.rnnTanh, 512), (.gru, 176), (.lstm, 128)] {
            func run(threads: Int32) throws -> ([Float], [Float]) {
                rk_set_threads(threads)
                var g = SeededGenerator(seed: 17)
                let config = RecurrentConfiguration(cell: cell, inputSize: 8, hiddenSize: hidden, numLayers: 2)
                let network = try RecurrentNetwork<Float>(config, generator: &g)
                let x = Tensor<Float>(shape: [5, 32, 8]) { Float(g.normal()) }
                let dOut = Tensor<Float>(shape: [5, 32, hidden]) { Float(g.normal()) }
                network.parameters.zeroGradients()
                let (output, _) = try network.forwardTensors(.dense(x), generator: &g)
                _ = try network.backwardTensors(outputGradient: dOut)
                return (
                    output.scalars,
                    Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
                )
            }
            let one = try run(threads: 1), two = try run(threads: 2)
            XCTAssertEqual(one.0, two.0, "\(cell) outputs")
            XCTAssertEqual(one.1, two.1, "\(cell) gradients")
        }
    }
}
