import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Bidirectional stacks through the public API (the numerics are PyTorch's: PyTorchFixtureTests' *_bidirectional cases
/// and GradientCheckTests): shapes, names, records, batch-first, recompute, gathering, and what is refused.
final class BidirectionalTests: XCTestCase {
    func testShapesNamesAndRecords() throws {
        var g = SeededGenerator(seed: 21)
        let lstm = try LSTM<Double>(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, generator: &g)
        XCTAssertEqual(
            lstm.parameters.entries.map(\.name),
            (0..<2).flatMap { k in
                ["", "_reverse"].flatMap { r in
                    ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map { "\($0)_l\(k)\(r)" }
                }
            })
        XCTAssertEqual(try lstm.weightIH(layer: 1, reverse: true).shape, [16, 8])  // layer 1 reads both directions, 2H
        let (T, B) = (5, 2)
        let x = Tensor<Double>(shape: [T, B, 3]) { g.normal() }
        let record = try lstm(.dense(x), generator: &g)
        XCTAssertEqual(try record.output.shape, [T, B, 8])
        XCTAssertEqual(try record.finalState.h.shape, [4, B, 4])
        XCTAssertEqual(try record.finalState.c?.shape, [4, B, 4])
        // The reverse half at step 0 is the reverse direction's final state: it has read the whole sequence.
        let out = try record.output, final = try record.finalState
        for b in 0..<B {
            for j in 0..<4 {
                XCTAssertEqual(out.scalars[(0 * B + b) * 8 + 4 + j], final.h.scalars[(3 * B + b) * 4 + j])
            }
        }
        // The forward half at the last step is the forward direction's final state.
        for b in 0..<B {
            for j in 0..<4 {
                XCTAssertEqual(out.scalars[((T - 1) * B + b) * 8 + j], final.h.scalars[(2 * B + b) * 4 + j])
            }
        }

        // Batch-first gives the transposed results; records and gradients follow the layout.
        let dOut = Tensor<Double>(shape: [T, B, 8]) { g.normal() }
        lstm.parameters.zeroGradients()
        let tm = try lstm(.dense(x), generator: &g)
        let tmOut = try tm.output
        let tmGrad = try lstm.backward(tm, outputGradient: dOut)
        let tmParams = Array(UnsafeBufferPointer(start: lstm.parameters.gradients, count: lstm.parameters.count))
        lstm.parameters.zeroGradients()
        let bf = try lstm(.dense(try x.swappingFirstTwoAxes()), layout: .batchFirst, generator: &g)
        XCTAssertEqual(try bf.output.swappingFirstTwoAxes(), tmOut)
        let bfGrad = try lstm.backward(bf, outputGradient: try dOut.swappingFirstTwoAxes())
        XCTAssertEqual(try bfGrad.inputGradient!.swappingFirstTwoAxes(), tmGrad.inputGradient!)
        XCTAssertEqual(
            Array(UnsafeBufferPointer(start: lstm.parameters.gradients, count: lstm.parameters.count)), tmParams)

        // Memory-efficient BPTT inside each direction: bit-identical gradients.
        lstm.recomputeInterval = 16
        lstm.parameters.zeroGradients()
        let long = Tensor<Double>(shape: [40, B, 3]) { g.normal() },
            dLong = Tensor<Double>(shape: [40, B, 8]) { g.normal() }
        let r1 = try lstm(.dense(long), generator: &g)
        let g1 = try lstm.backward(r1, outputGradient: dLong)
        let p1 = Array(UnsafeBufferPointer(start: lstm.parameters.gradients, count: lstm.parameters.count))
        lstm.recomputeInterval = nil
        lstm.parameters.zeroGradients()
        let r2 = try lstm(.dense(long), generator: &g)
        let g2 = try lstm.backward(r2, outputGradient: dLong)
        XCTAssertEqual(g1.inputGradient, g2.inputGradient)
        XCTAssertEqual(g1.initialStateGradient, g2.initialStateGradient)
        XCTAssertEqual(p1, Array(UnsafeBufferPointer(start: lstm.parameters.gradients, count: lstm.parameters.count)))
    }

    func testOneHotGatheringAndRefusals() throws {
        var g = SeededGenerator(seed: 22)
        let gru = try GRU<Float>(inputSize: 6, hiddenSize: 3, numLayers: 2, bidirectional: true, generator: &g)
        let head = try Linear<Float>(inputSize: 6, outputSize: 2, generator: &g)
        let before = try gru.weightHH(layer: 1, reverse: true).tensor()
        let store = try ParameterStore<Float>(gathering: ["encoder": gru, "head": head])
        XCTAssertEqual(try gru.weightHH(layer: 1, reverse: true).name, "encoder.weight_hh_l1_reverse")
        XCTAssertEqual(try gru.weightHH(layer: 1, reverse: true).tensor(), before)
        // One-hot input equals the dense one-hot product, through both directions.
        let tokens = [0, 5, 2, 2, 4, 1], (T, B) = (3, 2)
        var dense = Tensor<Float>(zeros: [T, B, 6])
        for (i, t) in tokens.enumerated() { dense.scalars[i * 6 + t] = 1 }
        let a = try gru(.oneHot(tokens: tokens, steps: T, batch: B), generator: &g)
        let outA = try a.output
        let b = try gru(.dense(dense), generator: &g)
        let outB = try b.output
        for (x, y) in zip(outA.scalars, outB.scalars) { XCTAssertEqual(x, y, accuracy: 1e-6) }
        store.zeroGradients()
        _ = try gru.backward(b, outputGradient: Tensor(shape: [T, B, 6]) { 1 })
        XCTAssertTrue(UnsafeBufferPointer(start: store.gradients, count: store.count).contains { $0 != 0 })

        XCTAssertThrowsError(
            try gru.backward(b, outputGradient: Tensor(zeros: [T, B, 6]), truncation: .fixed(length: 2))
        ) {
            XCTAssertTrue("\($0)".contains("bidirectional"), "\($0)")
        }
        XCTAssertThrowsError(try gru.weightIH(layer: 0, reverse: true).set(Tensor(zeros: [9, 5])))
        let one = try GRU<Float>(inputSize: 6, hiddenSize: 3, generator: &g)
        XCTAssertThrowsError(try one.weightIH(layer: 0, reverse: true)) {
            XCTAssertTrue("\($0)".contains("one direction"), "\($0)")
        }
        XCTAssertThrowsError(
            try CompactDecoder(
                network: try LSTM<Float>(inputSize: 6, hiddenSize: 3, bidirectional: true, generator: &g),
                embedding: nil, output: try Linear<Float>(inputSize: 3, outputSize: 6, generator: &g))
        ) {
            XCTAssertTrue("\($0)".contains("bidirectional"), "\($0)")
        }
        // Configurations written before the field existed decode as one-direction stacks.
        let old = try JSONDecoder().decode(
            RecurrentConfiguration.self,
            from: Data(#"{"cell":"gru","inputSize":2,"hiddenSize":3,"numLayers":1,"dropout":0}"#.utf8))
        XCTAssertFalse(old.bidirectional)
        XCTAssertTrue(old.bias)
    }
}
