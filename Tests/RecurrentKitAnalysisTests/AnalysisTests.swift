import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitAnalysis
@testable import RecurrentKitText

/// Gradient-flow analysis and the adding problem (reduced, fast versions of the README's experiments).
final class AnalysisTests: XCTestCase {
    func testSpectralRadiusAndSingularValue() {
        XCTAssertEqual(GradientFlow.spectralRadius([2, 0, 0, -3], size: 2), 3, accuracy: 1e-6)
        // A rotation scaled by 0.8 has complex eigenvalues of modulus 0.8.
        let c = 0.8 * cos(0.3), s = 0.8 * sin(0.3)
        XCTAssertEqual(GradientFlow.spectralRadius([c, -s, s, c], size: 2), 0.8, accuracy: 1e-6)
        // Nilpotent-ish: radius 0.5 but singular value 10.
        XCTAssertEqual(GradientFlow.largestSingularValue([0.5, 10, 0, 0.5], size: 2), 10.0249, accuracy: 1e-3)
    }

    func testVanishingAndExplodingGradients() throws {
        let vocabulary = try PreparedCorpus.prepare(text: EmbeddedCorpus.timeMachine.text, mode: .d2l, maxTokens: 100)
            .vocabulary
        let tokens = Array(
            try vocabulary.encode(TextPreparation.d2lNormalize(EmbeddedCorpus.timeMachine.text)).prefix(61))
        func norms(_ cell: CellKind, radius: Double) throws -> [Double] {
            var g = SeededGenerator(seed: 1)
            let model = try LanguageModel<Float>(
                .init(vocabularySize: vocabulary.count, cell: cell, hiddenSize: 16), generator: &g)
            try GradientFlow.setRecurrentSpectralRadius(model, radius: radius)
            let report = try GradientFlow.analyze(model: model, tokens: tokens)
            XCTAssertEqual(report.spectralRadius[0][0], radius, accuracy: 1e-3)
            return report.hiddenGradientNorms[0]
        }
        let vanishing = try norms(.rnnTanh, radius: 0.5)
        XCTAssertLessThan(
            vanishing.first! / vanishing.last!, 1e-8, "60 steps at radius 0.5 (<= 0.5^60 ~ 1e-18) must vanish")
        let exploding = try norms(.rnnLinear, radius: 1.2)
        XCTAssertGreaterThan(exploding.first! / exploding.last!, 100, "a linear RNN with radius 1.2 grows ~1.2^60")
    }

    func testAddingProblemLSTMBeatsTheBaseline() throws {
        var o = AddingProblem.Options()
        o.length = 10
        o.cell = .lstm
        o.hiddenSize = 16
        o.updates = 300
        o.batchSize = 32
        o.learningRate = 1e-2
        o.testSize = 200
        o.evaluateEvery = 100
        let results = try AddingProblem.train(o)
        XCTAssertEqual(results.map(\.update), [100, 200, 300])
        XCTAssertLessThan(
            results.last!.testMSE, AddingProblem.baselineMSE / 4, "an LSTM learns the T=10 adding problem quickly")
        var g = SeededGenerator(seed: 0)
        let (inputs, targets) = try AddingProblem.batch(length: 8, batch: 3, generator: &g)
        for b in 0..<3 {
            let markers = (0..<8).filter { inputs.scalars[($0 * 3 + b) * 2 + 1] == 1 }
            XCTAssertEqual(markers.count, 2)
            XCTAssertTrue(markers[0] < 4 && markers[1] >= 4)
            XCTAssertEqual(targets[b], markers.reduce(0) { $0 + inputs.scalars[($1 * 3 + b) * 2] }, accuracy: 1e-6)
        }
        XCTAssertThrowsError(try AddingProblem.batch(length: 1, batch: 3, generator: &g))
    }
}
