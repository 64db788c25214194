import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Batch-1 generation reads layer 0's input projection from a per-token table
/// (`RecurrentNetwork.inputProjectionTable`): bit-identical to the forward's own gather for one-hot input, within float
/// rounding of the per-step product for an embedding, and rebuilt at every reset so changed weights are seen.
final class GenerationTableTests: XCTestCase {
    /// Logits of `tokens` fed one at a time through the ordinary forward (`logits` with the state carried).
    func stepwise(_ model: LanguageModel<Float>, _ tokens: [Int]) throws -> [Float] {
        var state: RecurrentState<Float>? = nil, out: [Float] = []
        for token in tokens {
            out += try model.logits(inputs: [token], steps: 1, batch: 1, state: state).scalars
            state = try model.finalState()
        }
        return out
    }

    func generated(_ model: LanguageModel<Float>, _ tokens: [Int]) throws -> [Float] {
        var out: [Float] = []
        for (i, token) in tokens.enumerated() {
            let logits = try model.generationLogits([token], reset: i == 0)
            out += Array(UnsafeBufferPointer(start: logits, count: model.configuration.vocabularySize))
        }
        return out
    }

    func testTableRowsMatchTheForward() throws {
        var g = SeededGenerator(seed: 70)
        let tokens = (0..<30).map { _ in g.nextInt(below: 11) }
        for cell in [CellKind.lstm, .gru, .rnnTanh] {
            // One-hot input: the table row is the forward's gather (W_ih column + b_ih), so every bit agrees.
            let oneHot = try LanguageModel<Float>(
                .init(vocabularySize: 11, cell: cell, hiddenSize: 24, numLayers: 2), generator: &g)
            XCTAssertEqual(try generated(oneHot, tokens), try stepwise(oneHot, tokens), "\(cell) one-hot")
            // Embedding: the same product over V rows at once; float rounding only.
            let embedded = try LanguageModel<Float>(
                .init(vocabularySize: 11, cell: cell, hiddenSize: 24, numLayers: 2, embeddingSize: 9),
                generator: &g)
            let a = try generated(embedded, tokens), b = try stepwise(embedded, tokens)
            let worst = zip(a, b).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-5, "\(cell) embedding")
            print("generation table, \(cell) embedding: worst |logit difference| \(worst)")
        }
    }

    func testLargerEmbeddingModel() throws {
        // Sizes where the product's blocking matters (E and H past one micro-kernel panel).
        var g = SeededGenerator(seed: 72)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: 65, cell: .lstm, hiddenSize: 160, numLayers: 2, embeddingSize: 144), generator: &g)
        let tokens = (0..<40).map { _ in g.nextInt(below: 65) }
        let worst = zip(try generated(model, tokens), try stepwise(model, tokens)).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-5)
        print("generation table, LSTM H160 E144 V65: worst |logit difference| \(worst)")
    }

    func testTableIsRebuiltAtReset() throws {
        var g = SeededGenerator(seed: 71)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: 7, cell: .gru, hiddenSize: 8, embeddingSize: 5), generator: &g)
        let before = try generated(model, [1, 2, 3])
        for i in 0..<model.parameters.count { model.parameters.values[i] *= 1.5 }
        let after = try generated(model, [1, 2, 3])
        XCTAssertNotEqual(before, after)
        XCTAssertEqual(after, try generated(model, [1, 2, 3]))
        let diff = zip(after, try stepwise(model, [1, 2, 3])).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(diff, 1e-5)
        // No backward through precomputed projections, and no mixing them with an input.
        let net = model.recurrent
        var rows = [Float](repeating: 0.1, count: 3 * 8)
        let record = try rows.withUnsafeBufferPointer {
            try net.forward(
                steps: 1, batch: 1, input: nil, tokens: nil, inputProjections: $0.baseAddress!, generator: &g)
        }
        XCTAssertThrowsError(try net.backward(record, outputGradient: Tensor(zeros: [1, 1, 8])))
        XCTAssertThrowsError(
            try rows.withUnsafeMutableBufferPointer { p in
                try net.forward(
                    steps: 1, batch: 1, input: p.baseAddress!, tokens: nil, inputProjections: p.baseAddress!,
                    generator: &g)
            })
    }
    /// A vocabulary much wider than the embedding would make the table many times W_ih's size: decoding then multiplies
    /// W_ih by the embedding row (Float: the ordinary forward, bit for bit; compact: its own W_ih copy).
    func testLargeVocabularyDecodesWithoutTheTable() throws {
        var g = SeededGenerator(seed: 73)
        let V = 20_000
        let model = try LanguageModel<Float>(
            .init(vocabularySize: V, cell: .lstm, hiddenSize: 64, numLayers: 2, embeddingSize: 8), generator: &g)
        let net = model.recurrent
        XCTAssertFalse(net.decodesWithInputTable(vocabularySize: V, embeddingSize: 8))  // 20,000 x 256 floats = 20 MB
        XCTAssertTrue(net.decodesWithInputTable(vocabularySize: 32, embeddingSize: 8))  // V <= 4 E
        XCTAssertTrue(net.decodesWithInputTable(vocabularySize: 16_000, embeddingSize: 8))  // 16 MB: the limit
        XCTAssertTrue(net.decodesWithInputTable(vocabularySize: V, embeddingSize: nil))  // one-hot: W_ih's size
        XCTAssertFalse(net.decodesWithInputTable(vocabularySize: Int.max, embeddingSize: 8))  // no overflow
        let tokens = (0..<12).map { _ in g.nextInt(below: V) }
        XCTAssertEqual(try generated(model, tokens), try stepwise(model, tokens))
        let reference = try generated(model, tokens)
        for (format, bound) in [(WeightPrecision.bfloat16, Float(0.02)), (.int8, 0.05)] {
            let decoder = try CompactDecoder(
                network: net, embedding: model.embedding, output: model.output, format: format)
            let bytes = format == .bfloat16 ? 2 : 1, extra = format == .int8 ? 8 : 0
            // W_ih l0 (no table row), W_hh l0, l1, head
            let matrices = [(256, 8), (256, 64), (256, 64), (256, 64), (V, 64)]
            XCTAssertEqual(
                decoder.weightBytes, matrices.reduce(0) { $0 + $1.0 * $1.1 * bytes + extra * $1.0 }, "\(format)")
            var compact: [Float] = []
            for (i, token) in tokens.enumerated() {
                compact += Array(
                    UnsafeBufferPointer(start: try decoder.logits(after: [token], reset: i == 0), count: V))
            }
            let worst = zip(compact, reference).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThan(worst, 0, "\(format)")
            XCTAssertLessThan(worst, bound, "\(format)")
        }
    }
}
