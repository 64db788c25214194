import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// LSTM projections (PyTorch `proj_size`) beyond the fixtures (PyTorchFixtureTests' *_proj3 cases, GradientCheckTests,
/// InterchangeTests' *_proj4 checkpoints): names, shapes, refusals, recompute and the language model around them.
final class ProjectionTests: XCTestCase {
    func testNamesShapesAndRefusals() throws {
        var g = SeededGenerator(seed: 50)
        let lstm = try LSTM<Double>(inputSize: 3, hiddenSize: 6, numLayers: 2, projectionSize: 2, generator: &g)
        // PyTorch's state_dict order: weight_hr last in each layer; W_hh reads P columns, layer 1 reads P inputs.
        XCTAssertEqual(
            lstm.parameters.entries.map(\.name),
            (0..<2).flatMap { k in
                ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"].map { "\($0)_l\(k)" }
            })
        XCTAssertEqual(try lstm.weightHR(layer: 1).shape, [2, 6])
        XCTAssertEqual(try lstm.weightHH(layer: 0).shape, [24, 2])
        XCTAssertEqual(try lstm.weightIH(layer: 1).shape, [24, 2])
        let x = Tensor<Double>(shape: [5, 4, 3]) { g.normal() }
        let record = try lstm(.dense(x), generator: &g)
        XCTAssertEqual(try record.output.shape, [5, 4, 2])
        XCTAssertEqual(try record.finalState.h.shape, [2, 4, 2])
        XCTAssertEqual(try record.finalState.c?.shape, [2, 4, 6])
        // The last output is h_T of the top layer.
        let out = try record.output, h = try record.finalState.h
        XCTAssertEqual(Array(out.scalars[(4 * 4 * 2)...]), Array(h.scalars[(4 * 2)...]))
        // A wrongly shaped h0 (H instead of P) is refused.
        XCTAssertThrowsError(
            try lstm(.dense(x), initialState: RecurrentState(h: Tensor(zeros: [2, 4, 6])), generator: &g))

        for bad in [
            RecurrentConfiguration(cell: .gru, inputSize: 3, hiddenSize: 6, projectionSize: 2),
            RecurrentConfiguration(cell: .lstm, inputSize: 3, hiddenSize: 6, projectionSize: 6),
            RecurrentConfiguration(cell: .lstm, inputSize: 3, hiddenSize: 6, projectionSize: -1),
        ] {
            XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("proj"), "\($0)") }
        }
        XCTAssertThrowsError(try LSTM<Double>(inputSize: 3, hiddenSize: 6, generator: &g).weightHR(layer: 0))
        // Configurations round-trip; files without the field read as no projection.
        let config = RecurrentConfiguration(cell: .lstm, inputSize: 3, hiddenSize: 6, projectionSize: 2)
        XCTAssertEqual(
            try JSONDecoder().decode(RecurrentConfiguration.self, from: try JSONEncoder().encode(config)), config)
        let plain = try JSONEncoder().encode(RecurrentConfiguration(cell: .lstm, inputSize: 3, hiddenSize: 6))
        XCTAssertFalse(String(decoding: plain, as: UTF8.self).contains("projection"))
    }

    func testRecomputeAndLanguageModel() throws {
        var g = SeededGenerator(seed: 51)
        let lstm = try LSTM<Double>(
            inputSize: 3, hiddenSize: 5, numLayers: 2, dropout: 0.2, projectionSize: 3, generator: &g)
        let x = Tensor<Double>(shape: [40, 2, 3]) { g.normal() },
            dOut = Tensor<Double>(shape: [40, 2, 3]) { g.normal() }
        func gradients(_ interval: Int?) throws -> [Double] {
            lstm.recomputeInterval = interval
            lstm.parameters.zeroGradients()
            var masks = SeededGenerator(seed: 7)
            let record = try lstm(.dense(x), training: true, generator: &masks)
            _ = try lstm.backward(record, outputGradient: dOut)
            return Array(UnsafeBufferPointer(start: lstm.parameters.gradients, count: lstm.parameters.count))
        }
        XCTAssertEqual(try gradients(nil), try gradients(16))

        // A language model with a projection: the head reads P; generation carries (L, 1, P) h and (L, 1, H) c.
        let model = try LanguageModel<Float>(
            .init(
                vocabularySize: 7, cell: .lstm, hiddenSize: 8, numLayers: 2, embeddingSize: 4,
                projectionSize: 3), generator: &g)
        XCTAssertEqual(model.output.weight.shape, [7, 3])
        let tokens = [1, 2, 3, 4, 5, 6, 0, 1]
        let whole = try model.logits(inputs: tokens, steps: tokens.count, batch: 1)
        var stepwise: [Float] = []
        for (i, token) in tokens.enumerated() {
            let logits = try model.generationLogits([token], reset: i == 0)
            stepwise += Array(UnsafeBufferPointer(start: logits, count: 7))
        }
        for i in whole.scalars.indices { XCTAssertEqual(whole.scalars[i], stepwise[i], accuracy: 1e-5) }
        XCTAssertThrowsError(
            try CompactDecoder(network: model.recurrent, embedding: model.embedding, output: model.output))
    }
}
