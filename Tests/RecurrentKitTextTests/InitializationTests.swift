import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Orthogonal recurrent weights and the LSTM forget-gate bias.
final class InitializationTests: XCTestCase {
    func testOrthogonalGateBlocksAndForgetBias() throws {
        var g = SeededGenerator(seed: 12)
        let lstm = try LSTM<Double>(
            inputSize: 3, hiddenSize: 7, numLayers: 2, initialization: .orthogonal, generator: &g)
        let H = 7
        for k in 0..<2 {
            let w = try lstm.weightHH(layer: k).tensor().scalars
            for gate in 0..<4 {  // Q^T Q = I for every H x H block
                for a in 0..<H {
                    for b in 0..<H {
                        let dot = (0..<H).reduce(0.0) {
                            $0 + w[gate * H * H + $1 * H + a] * w[gate * H * H + $1 * H + b]
                        }
                        XCTAssertEqual(
                            dot, a == b ? 1 : 0, accuracy: 1e-12, "layer \(k) gate \(gate) columns \(a), \(b)")
                    }
                }
            }
            // W_ih stays PyTorch's U(+-1/sqrt(H)).
            XCTAssertTrue(
                try lstm.weightIH(layer: k).tensor().scalars.allSatisfy { abs($0) <= 1 / Double(H).squareRoot() })
        }
        let a = try LSTM<Double>(inputSize: 3, hiddenSize: 7, initialization: .orthogonal, generator: &g)
        // a fresh draw each time
        XCTAssertNotEqual(try a.weightHH(layer: 0).tensor(), try lstm.weightHH(layer: 0).tensor())

        try lstm.setForgetGateBias(1)
        for k in 0..<2 {
            let ih = try lstm.biasIH(layer: k).tensor().scalars, hh = try lstm.biasHH(layer: k).tensor().scalars
            for j in H..<(2 * H) { XCTAssertEqual(ih[j] + hh[j], 1) }
            XCTAssertTrue(ih[0..<H].allSatisfy { $0 != 1 })  // other gates untouched
        }
        XCTAssertThrowsError(try GRU<Double>(inputSize: 3, hiddenSize: 7, generator: &g).setForgetGateBias(1))
        XCTAssertThrowsError(
            try LSTM<Double>(inputSize: 3, hiddenSize: 7, bias: false, generator: &g).setForgetGateBias(1))

        var o = TrainingOptions()
        o.forgetGateBias = 1
        // the default cell is an RNN
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("lstm"), "\($0)") }
        o.cell = .lstm
        o.hiddenSize = 8
        o.maxTokens = 2000
        o.epochs = 1
        o.sampleEvery = 0
        let trainer = try LanguageModelTrainer(options: o)
        XCTAssertEqual(try trainer.model.recurrent.biasIH(layer: 0).tensor().scalars[8], 1)
    }
}
