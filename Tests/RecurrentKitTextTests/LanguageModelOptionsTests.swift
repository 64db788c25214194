import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Language models with PyTorch's recurrent options: bias=False and bidirectional (loaded for logits, refused for
/// next-token use, d2l 9.4); metadata of default models unchanged.
final class LanguageModelOptionsTests: XCTestCase {
    func testMetadataAndLogits() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ c: LanguageModelConfiguration) throws -> String {
            String(decoding: try encoder.encode(c), as: UTF8.self)
        }
        // A default model's metadata is what earlier versions wrote; the options appear only when set.
        XCTAssertEqual(
            try json(.init(vocabularySize: 5, cell: .gru, hiddenSize: 3)),
            #"{"cell":"gru","dropout":0,"hiddenSize":3,"numLayers":1,"vocabularySize":5}"#)
        let options = LanguageModelConfiguration(
            vocabularySize: 5, cell: .lstm, hiddenSize: 3, numLayers: 2, embeddingSize: 4,
            bias: false, bidirectional: true)
        XCTAssertEqual(
            try json(options),
            #"{"bias":false,"bidirectional":true,"cell":"lstm","dropout":0,"embeddingSize":4,"hiddenSize":3,"numLayers":2,"vocabularySize":5}"#
        )
        XCTAssertEqual(
            try JSONDecoder().decode(LanguageModelConfiguration.self, from: Data(try json(options).utf8)), options)
        let old = try JSONDecoder().decode(
            LanguageModelConfiguration.self,
            from: Data(#"{"cell":"gru","dropout":0,"hiddenSize":3,"numLayers":1,"vocabularySize":5}"#.utf8))
        XCTAssertTrue(old.bias)
        XCTAssertFalse(old.bidirectional)

        var g = SeededGenerator(seed: 4)
        let model = try LanguageModel<Float>(options, generator: &g)
        XCTAssertEqual(model.output.inputSize, 6)  // the head reads both directions
        XCTAssertNil(model.parameters.entry(named: "rnn.bias_ih_l0"))
        XCTAssertNotNil(model.parameters.entry(named: "rnn.weight_hh_l1_reverse"))
        // Logits are the head over the stack's joined outputs.
        let tokens = [1, 4, 0, 2, 3, 3], (T, B) = (3, 2)
        let logits = try model.logits(inputs: tokens, steps: T, batch: B)
        XCTAssertEqual(logits.shape, [T, B, 5])
        let record = try model.recurrent(
            .dense(try Tensor(shape: [T, B, 4], scalars: try model.embedding!(tokens).scalars)), generator: &g)
        let manual = try model.output(try record.output)
        for (a, b) in zip(logits.scalars, manual.scalars) { XCTAssertEqual(a, b, accuracy: 1e-6) }

        // Save and load keep the options and the weights; next-token uses are refused with d2l 9.4's reason.
        let loaded = try Checkpoint.parse(
            try Checkpoint(model: model, vocabulary: Vocabulary.raw(from: "abcde")).serialized())
        XCTAssertEqual(loaded.model.configuration, options)
        XCTAssertEqual(try loaded.model.logits(inputs: tokens, steps: T, batch: B), logits)
        for attempt in [
            { _ = try Evaluation.meanCrossEntropy(model: loaded.model, tokens: TokenList(tokens)) },
            {
                _ = try TextGenerator.predict(
                    model: loaded.model, vocabulary: loaded.vocabulary, prefix: "ab", length: 3)
            },
        ] {
            XCTAssertThrowsError(try attempt()) { XCTAssertTrue("\($0)".contains("d2l 9.4"), "\($0)") }
        }

        // Without biases a causal model trains: the loss falls on a tiny repeated text.
        let plain = try LanguageModel<Float>(
            .init(vocabularySize: 5, cell: .gru, hiddenSize: 8, bias: false), generator: &g)
        let text = Array(repeating: [0, 1, 2, 3, 4], count: 8).flatMap { $0 }
        let sgd = try SGD(learningRate: 1)
        var first = 0.0, last = 0.0
        for step in 0..<60 {
            plain.parameters.zeroGradients()
            last = try plain.loss(
                inputs: Array(text.dropLast()), targets: Array(text.dropFirst()), steps: 39, batch: 1, generator: &g)
            if step == 0 { first = last }
            try clipGradientNorm(plain.parameters, maxNorm: 1)
            try sgd.step(plain.parameters)
        }
        XCTAssertLessThan(last, 0.5 * first)
    }
}
