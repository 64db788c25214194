import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitAnalysis
@testable import RecurrentKitText

/// Bad input gets a thrown error naming the argument and the value, never a trap.
final class InputValidationTests: XCTestCase {
    func assertThrows<T>(
        _ expression: @autoclosure () throws -> T, mentions fragments: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            let message = "\(error)"
            for fragment in fragments {
                XCTAssertTrue(
                    message.contains(fragment), "'\(message)' should mention '\(fragment)'", file: file, line: line)
            }
        }
    }

    func testInvalidSizes() {
        var g = SeededGenerator(seed: 0)
        assertThrows(
            try RecurrentNetwork<Double>(.init(cell: .lstm, inputSize: 0, hiddenSize: 5), generator: &g),
            mentions: ["inputSize", "0"])
        assertThrows(
            try RecurrentNetwork<Double>(.init(cell: .gru, inputSize: 3, hiddenSize: -2), generator: &g),
            mentions: ["hiddenSize", "-2"])
        assertThrows(
            try RecurrentNetwork<Double>(
                .init(cell: .rnnTanh, inputSize: 3, hiddenSize: 2, numLayers: 0), generator: &g),
            mentions: ["numLayers", "0"])
        assertThrows(
            try RecurrentNetwork<Float>(
                .init(cell: .rnnTanh, inputSize: 3, hiddenSize: 2, numLayers: 2, dropout: 1), generator: &g),
            mentions: ["dropout", "1"])
        assertThrows(
            try RecurrentNetwork<Float>(
                .init(cell: .rnnTanh, inputSize: 3, hiddenSize: 2, dropout: -0.1), generator: &g),
            mentions: ["dropout", "-0.1"])
        assertThrows(
            try RecurrentNetwork<Float>(
                .init(cell: .rnnTanh, inputSize: 3, hiddenSize: 2, dropout: .nan), generator: &g), mentions: ["dropout"]
        )
        assertThrows(
            try LanguageModel<Float>(.init(vocabularySize: 0, cell: .lstm, hiddenSize: 4)),
            mentions: ["vocabularySize", "0"])
        assertThrows(
            try LanguageModel<Float>(.init(vocabularySize: 5, cell: .lstm, hiddenSize: 4, embeddingSize: 0)),
            mentions: ["embeddingSize", "0"])
        assertThrows(
            try RecurrentNetwork<Float>(.init(cell: .lstm, inputSize: 1 << 30, hiddenSize: 1 << 20), generator: &g),
            mentions: ["too large"])
    }

    func testUnknownNonlinearityAndCell() {
        assertThrows(try CellKind.rnn(nonlinearity: "sigmoid"), mentions: ["nonlinearity", "sigmoid"])
        assertThrows(try CellKind(parsing: "transformer"), mentions: ["cell", "transformer"])
        XCTAssertEqual(try CellKind.rnn(nonlinearity: "relu"), .rnnReLU)
    }

    func testMismatchedShapes() throws {
        var g = SeededGenerator(seed: 0)
        let network = try RecurrentNetwork<Double>(
            .init(cell: .lstm, inputSize: 4, hiddenSize: 5, numLayers: 2), generator: &g)
        assertThrows(
            try network.forwardTensors(.dense(Tensor(zeros: [6, 3, 5])), generator: &g),
            mentions: ["input", "[6, 3, 5]"])
        assertThrows(try network.forwardTensors(.dense(Tensor(zeros: [6, 3])), generator: &g), mentions: ["input"])
        assertThrows(try network.forwardTensors(.dense(Tensor(zeros: [0, 3, 4])), generator: &g), mentions: ["input"])
        assertThrows(
            try network.forwardTensors(
                .dense(Tensor(zeros: [6, 3, 4])), initialState: RecurrentState(h: Tensor(zeros: [1, 3, 5])),
                generator: &g),
            mentions: ["h0", "[1, 3, 5]", "[2, 3, 5]"])
        assertThrows(
            try network.forwardTensors(
                .dense(Tensor(zeros: [6, 3, 4])),
                initialState: RecurrentState(h: Tensor(zeros: [2, 3, 5]), c: Tensor(zeros: [2, 2, 5])), generator: &g),
            mentions: ["c0"])
        assertThrows(
            try network.forwardTensors(.oneHot(tokens: [0, 1, 2], steps: 2, batch: 2), generator: &g),
            mentions: ["3", "4"])
        assertThrows(
            try network.forwardTensors(.oneHot(tokens: [0, 1, 9, 2], steps: 2, batch: 2), generator: &g),
            mentions: ["9", "position 2"])
        // A record pairs a backward with its forward: another network's, or one a later forward made stale, is refused.
        let other = try RecurrentNetwork<Double>(
            .init(cell: .lstm, inputSize: 4, hiddenSize: 5, numLayers: 2), generator: &g)
        let foreign = try other(.dense(Tensor(zeros: [6, 3, 4])), generator: &g)
        assertThrows(
            try network.backward(foreign, outputGradient: Tensor(zeros: [6, 3, 5])), mentions: ["another network"])
        let stale = try network(.dense(Tensor(zeros: [6, 3, 4])), generator: &g)
        _ = try network.forwardTensors(.dense(Tensor(zeros: [6, 3, 4])), generator: &g)
        assertThrows(try network.backward(stale, outputGradient: Tensor(zeros: [6, 3, 5])), mentions: ["stale"])
        assertThrows(
            try network.backwardTensors(outputGradient: Tensor(zeros: [5, 3, 5])),
            mentions: ["outputGradient", "[5, 3, 5]"])
        assertThrows(
            try network.backwardTensors(
                outputGradient: Tensor(zeros: [6, 3, 5]),
                finalStateGradient: RecurrentState(h: Tensor(zeros: [2, 3, 4]))),
            mentions: ["finalStateGradient"])
        assertThrows(try Tensor<Float>(shape: [2, 3], scalars: [1, 2]), mentions: ["[2, 3]", "6", "2"])
        assertThrows(
            try network.parameters.setTensor("weight_hh_l0", Tensor(zeros: [5, 5])),
            mentions: ["weight_hh_l0", "[20, 5]"])
        assertThrows(
            try network.parameters.setTensor("weight_xx_l0", Tensor(zeros: [5, 5])), mentions: ["weight_xx_l0"])
    }

    func testInvalidOptimizerSettings() {
        assertThrows(try SGD(learningRate: -0.1), mentions: ["learning rate", "-0.1"])
        assertThrows(try SGD(learningRate: 0.1, momentum: 1.5), mentions: ["momentum", "1.5"])
        assertThrows(try SGD(learningRate: 0.1, weightDecay: -1), mentions: ["weight decay"])
        assertThrows(try SGD(learningRate: 0.1, nesterov: true), mentions: ["nesterov"])
        assertThrows(try Adam(learningRate: -1), mentions: ["learning rate", "-1"])
        assertThrows(try Adam(beta1: 1), mentions: ["beta1"])
        assertThrows(try Adam(beta2: -0.5), mentions: ["beta2"])
        assertThrows(try Adam(epsilon: 0), mentions: ["epsilon"])
        assertThrows(try Adam.adamW(weightDecay: .infinity), mentions: ["weight decay"])
    }

    func testCrossEntropyRejectsBadTargets() throws {
        let logits = Tensor<Double>(zeros: [2, 3])
        assertThrows(try softmaxCrossEntropy(logits: logits, targets: [0, 3]), mentions: ["target 3", "position 1"])
        assertThrows(try softmaxCrossEntropy(logits: logits, targets: [0]), mentions: ["1 targets", "2 rows"])
        // Uniform logits: loss = log 3, perplexity = 3.
        let (loss, _) = try softmaxCrossEntropy(logits: logits, targets: [0, 2])
        XCTAssertEqual(perplexity(meanCrossEntropy: loss), 3, accuracy: 1e-12)
        // Stable for huge logits.
        let huge = try Tensor<Float>(shape: [1, 2], scalars: [1e30, -1e30])
        let (hugeLoss, gradient) = try softmaxCrossEntropy(logits: huge, targets: [1])
        XCTAssertTrue(hugeLoss.isFinite)
        XCTAssertTrue(gradient.scalars.allSatisfy(\.isFinite))
    }

    func testOneHotEqualsDenseOneHot() throws {
        // The row gather must give exactly what a dense one-hot product gives, forward and backward.
        var g = SeededGenerator(seed: 3)
        let config = RecurrentConfiguration(cell: .gru, inputSize: 7, hiddenSize: 4, numLayers: 2)
        let a = try RecurrentNetwork<Double>(config, generator: &g)
        let b = try RecurrentNetwork<Double>(config, generator: &g)
        try b.parameters.copyValues(from: a.parameters)
        let tokens = (0..<(5 * 3)).map { _ in g.nextInt(below: 7) }
        var dense = Tensor<Double>(zeros: [5, 3, 7])
        for (i, t) in tokens.enumerated() { dense.scalars[i * 7 + t] = 1 }
        let (outA, _) = try a.forwardTensors(.oneHot(tokens: tokens, steps: 5, batch: 3), generator: &g)
        let (outB, _) = try b.forwardTensors(.dense(dense), generator: &g)
        XCTAssertEqual(outA, outB)
        let dOut = Tensor<Double>(shape: [5, 3, 4]) { g.normal() }
        a.parameters.zeroGradients(); b.parameters.zeroGradients()
        _ = try a.backwardTensors(outputGradient: dOut)
        _ = try b.backwardTensors(outputGradient: dOut)
        for e in a.parameters.entries {
            XCTAssertLessThanOrEqual(
                maxDifference(try a.parameters.gradientTensor(e.name), try b.parameters.gradientTensor(e.name)), 1e-14,
                e.name)
        }
    }

    func testBackwardAccumulatesAndZeroingIsSeparate() throws {
        var g = SeededGenerator(seed: 4)
        let network = try RecurrentNetwork<Double>(.init(cell: .lstm, inputSize: 3, hiddenSize: 2), generator: &g)
        let x = Tensor<Double>(shape: [4, 2, 3]) { g.normal() }
        let dOut = Tensor<Double>(shape: [4, 2, 2]) { g.normal() }
        network.parameters.zeroGradients()
        _ = try network.forwardTensors(.dense(x), generator: &g); _ = try network.backwardTensors(outputGradient: dOut)
        let once = try network.parameters.gradientTensor("weight_hh_l0")
        _ = try network.forwardTensors(.dense(x), generator: &g); _ = try network.backwardTensors(outputGradient: dOut)
        let twice = try network.parameters.gradientTensor("weight_hh_l0")
        for i in 0..<once.count { XCTAssertEqual(twice.scalars[i], 2 * once.scalars[i], accuracy: 1e-14) }
        network.parameters.zeroGradients()
        XCTAssertTrue(try network.parameters.gradientTensor("weight_hh_l0").scalars.allSatisfy { $0 == 0 })
    }

    func testInitialisationSchemes() throws {
        var g = SeededGenerator(seed: 5)
        let pt = try RecurrentNetwork<Double>(
            .init(cell: .lstm, inputSize: 3, hiddenSize: 16), initialization: .pytorch, generator: &g)
        let bound = 1 / 4.0
        for e in pt.parameters.entries {
            let v = try pt.parameters.tensor(e.name).scalars
            XCTAssertTrue(v.allSatisfy { abs($0) <= bound }, e.name)
            XCTAssertGreaterThan(v.map(abs).max()!, 0.9 * bound, "\(e.name) should fill U(-1/sqrt(H), 1/sqrt(H))")
        }
        let d2l = try RecurrentNetwork<Double>(
            .init(cell: .rnnTanh, inputSize: 30, hiddenSize: 64), initialization: .d2l, generator: &g)
        let w = try d2l.parameters.tensor("weight_hh_l0").scalars
        let std = (w.map { $0 * $0 }.reduce(0, +) / Double(w.count)).squareRoot()
        XCTAssertEqual(std, 0.01, accuracy: 0.001)
        XCTAssertTrue(try d2l.parameters.tensor("bias_ih_l0").scalars.allSatisfy { $0 == 0 })
        let irnn = try RecurrentNetwork<Double>(
            .init(cell: .rnnReLU, inputSize: 2, hiddenSize: 3), initialization: .identity, generator: &g)
        XCTAssertEqual(try irnn.parameters.tensor("weight_hh_l0").scalars, [1, 0, 0, 0, 1, 0, 0, 0, 1])
    }
}

extension InputValidationTests {
    func testHugeSizesAreRefusedNotTrapped() throws {
        var g = SeededGenerator(seed: 0)
        assertThrows(
            try RecurrentNetwork<Float>(.init(cell: .lstm, inputSize: 4, hiddenSize: 1_048_576), generator: &g),
            mentions: ["too large"])
        assertThrows(
            try RecurrentNetwork<Float>(.init(cell: .lstm, inputSize: 16_000_000, hiddenSize: 65_536), generator: &g),
            mentions: ["too large"])
        assertThrows(
            try LanguageModel<Float>(.init(vocabularySize: 1 << 60, cell: .gru, hiddenSize: 4, embeddingSize: 8)),
            mentions: ["vocabularySize"])
        var adding = AddingProblem.Options()
        adding.hiddenSize = 3_037_000_500
        assertThrows(try AddingProblem.train(adding), mentions: ["too large"])
        adding = AddingProblem.Options()
        adding.length = 100_000
        adding.testSize = 1_000_000
        assertThrows(try AddingProblem.train(adding), mentions: ["too large", "1000000 test sequences"])
        // A length too long for the default 1,000 test sequences names them, not the batch.
        adding = AddingProblem.Options()
        adding.length = 100_000
        assertThrows(
            try AddingProblem.train(adding), mentions: ["length 100000 x 1000 test sequences (testSize) is too large"])
        adding.testSize = 1
        adding.batchSize = 1_000
        assertThrows(try AddingProblem.train(adding), mentions: ["length 100000 x batch 1000 is too large"])
        assertThrows(
            try GradientCheck.run(.init(configuration: .init(cell: .gru, inputSize: 2, hiddenSize: 2), batch: 1 << 40)),
            mentions: ["too large"])
        let model = try LanguageModel<Float>(.init(vocabularySize: 5, cell: .gru, hiddenSize: 4))
        assertThrows(
            try model.loss(inputs: [1], targets: [1], steps: Int.max, batch: 2, generator: &g), mentions: ["steps"])
    }
}
