import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Models gathered from layers: hierarchical names in order, values kept, layers rebound; typed views.
final class ParameterGatheringTests: XCTestCase {
    func testGatheringNamesKeepsValuesAndRebinds() throws {
        var g = SeededGenerator(seed: 5)
        let embed = try Embedding<Double>(vocabularySize: 7, dimension: 3, generator: &g)
        let rnn = try RecurrentNetwork<Double>(
            .init(cell: .lstm, inputSize: 3, hiddenSize: 4, numLayers: 2), generator: &g)
        let head = try Linear<Double>(inputSize: 4, outputSize: 5, generator: &g)
        let before = (try embed.weight.tensor(), try rnn.weightHH(layer: 1).tensor(), try head.bias!.tensor())
        let store = try ParameterStore<Double>(gathering: ["encoder.embed": embed, "rnn": rnn, "head": head])
        XCTAssertEqual(
            store.entries.map(\.name),
            ["encoder.embed.weight"]
                + (0..<2).flatMap { k in
                    ["weight_ih_l\(k)", "weight_hh_l\(k)", "bias_ih_l\(k)", "bias_hh_l\(k)"].map { "rnn." + $0 }
                }
                + ["head.weight", "head.bias"])
        XCTAssertTrue(rnn.parameters === store && head.parameters === store && embed.parameters === store)
        XCTAssertEqual(rnn.parameterPrefix, "rnn.")
        XCTAssertEqual(try embed.weight.tensor(), before.0)
        XCTAssertEqual(try rnn.weightHH(layer: 1).tensor(), before.1)
        XCTAssertEqual(try head.bias!.tensor(), before.2)
        XCTAssertEqual(try rnn.weightHH(layer: 1).name, "rnn.weight_hh_l1")
        XCTAssertEqual(try rnn.weightIH(layer: 1).shape, [16, 4])
        XCTAssertTrue(UnsafeBufferPointer(start: store.gradients, count: store.count).allSatisfy { $0 == 0 })

        // Forward/backward write into the gathered store: the same gradients as a model bound by prefix.
        let tokens = [1, 5, 0, 6, 2, 3], (T, B) = (3, 2)
        func gradients(
            _ e: Embedding<Double>, _ r: RecurrentNetwork<Double>, _ h: Linear<Double>, _ s: ParameterStore<Double>
        ) throws -> [Double] {
            s.zeroGradients()
            var gen = SeededGenerator(seed: 1)
            let x = try e(tokens)  // (T*B, E)
            let record = try r(.dense(try Tensor(shape: [T, B, 3], scalars: x.scalars)), generator: &gen)
            let y = try h(try record.output)
            let (_, dy) = try softmaxCrossEntropy(
                logits: try Tensor(shape: [T * B, 5], scalars: y.scalars), targets: [0, 1, 2, 3, 4, 0])
            let dh = try h.backward(
                input: try record.output, outputGradient: try Tensor(shape: [T, B, 5], scalars: dy.scalars))
            let dx = try r.backward(record, outputGradient: dh).inputGradient!
            try e.backward(tokens: tokens, outputGradient: try Tensor(shape: [T * B, 3], scalars: dx.scalars))
            return Array(UnsafeBufferPointer(start: s.gradients, count: s.count))
        }
        var layout = ParameterLayout()
        Embedding<Double>.declareParameters(prefix: "encoder.embed.", vocabularySize: 7, dimension: 3, into: &layout)
        rnn.configuration.declareParameters(prefix: "rnn.", into: &layout)
        Linear<Double>.declareParameters(prefix: "head.", inputSize: 4, outputSize: 5, into: &layout)
        let manual = ParameterStore<Double>(layout: layout)
        try manual.copyValues(from: store)
        let viaPrefix = try gradients(
            try Embedding(prefix: "encoder.embed.", vocabularySize: 7, dimension: 3, store: manual),
            try RecurrentNetwork(rnn.configuration, parameters: manual, prefix: "rnn."),
            try Linear(prefix: "head.", inputSize: 4, outputSize: 5, store: manual), manual)
        let gathered = try gradients(embed, rnn, head, store)
        XCTAssertEqual(gathered, viaPrefix)
        XCTAssertTrue(gathered.contains { $0 != 0 })

        // Gathering again (into a larger model) moves the layers and makes their records stale.
        var gen = SeededGenerator(seed: 2)
        let record = try rnn(.dense(Tensor(zeros: [2, 1, 3])), generator: &gen)
        let outer = try ParameterStore<Double>(gathering: ["model.rnn": rnn])
        XCTAssertEqual(try rnn.weightHH(layer: 1).tensor(), before.1)
        XCTAssertEqual(try rnn.weightHH(layer: 0).name, "model.rnn.weight_hh_l0")
        XCTAssertTrue(rnn.parameters === outer)
        XCTAssertThrowsError(try record.output) { XCTAssertTrue("\($0)".contains("stale"), "\($0)") }
    }

    func testBadGatheringAndViewsAreRefused() throws {
        var g = SeededGenerator(seed: 6)
        let head = try Linear<Float>(inputSize: 2, outputSize: 3, generator: &g)
        let other = try Linear<Float>(inputSize: 2, outputSize: 3, generator: &g)
        func refused(_ layers: KeyValuePairs<String, any ParameterizedLayer<Float>>, _ fragment: String) {
            XCTAssertThrowsError(try ParameterStore<Float>(gathering: layers)) {
                XCTAssertTrue("\($0)".contains(fragment), "\($0)")
            }
        }
        refused(["a": head, "a": other], "used twice")
        refused(["a": head, "b": head], "another name")
        for name in ["", ".a", "a.", "a..b", "a b", "a/b", "é"] { refused([name: head], "layer name") }
        XCTAssertThrowsError(try Linear<Float>(inputSize: 0, outputSize: 3, generator: &g))
        XCTAssertThrowsError(try Embedding<Float>(vocabularySize: 3, dimension: 0, generator: &g))
        let rnn = try RecurrentNetwork<Float>(.init(cell: .gru, inputSize: 2, hiddenSize: 3), generator: &g)
        XCTAssertThrowsError(try rnn.weightIH(layer: 1)) { XCTAssertTrue("\($0)".contains("layer"), "\($0)") }
        XCTAssertThrowsError(try rnn.biasHH(layer: -1))
        XCTAssertThrowsError(try head.weight.set(Tensor(zeros: [2, 3]))) {
            XCTAssertTrue("\($0)".contains("weight"), "\($0)")
        }
        try head.weight.set(Tensor(shape: [3, 2]) { 0.5 })
        XCTAssertEqual(try head.weight.tensor().scalars, Array(repeating: 0.5, count: 6))
        XCTAssertEqual(head.bias!.gradients.count, 3)

        // Without a bias (PyTorch bias=False): no tensor, y = x W^T, and the weight gradient is unchanged.
        let plain = try Linear<Double>(inputSize: 2, outputSize: 3, bias: false, generator: &g)
        XCTAssertNil(plain.bias)
        XCTAssertEqual(plain.parameterDeclarations.entries.map(\.name), ["weight"])
        let x = Tensor<Double>(shape: [4, 2]) { g.normal() }, dy = Tensor<Double>(shape: [4, 3]) { g.normal() }
        let y = try plain(x), w = try plain.weight.tensor()
        for r in 0..<4 {
            for o in 0..<3 {
                XCTAssertEqual(
                    y.scalars[r * 3 + o],
                    w.scalars[o * 2] * x.scalars[r * 2] + w.scalars[o * 2 + 1] * x.scalars[r * 2 + 1], accuracy: 1e-12)
            }
        }
        plain.parameters.zeroGradients()
        _ = try plain.backward(input: x, outputGradient: dy)
        for o in 0..<3 {
            for i in 0..<2 {
                XCTAssertEqual(
                    plain.weight.gradients[o * 2 + i],
                    (0..<4).reduce(0.0) { $0 + dy.scalars[$1 * 3 + o] * x.scalars[$1 * 2 + i] }, accuracy: 1e-12)
            }
        }
        let gathered = try ParameterStore<Double>(gathering: ["proj": plain])
        XCTAssertEqual(gathered.entries.map(\.name), ["proj.weight"])
    }
}
