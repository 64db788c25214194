import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Full, regular (fixed) and randomized truncation of BPTT, and the closed form of d2l 8.7 eq. (9).
final class BPTTStrategyTests: XCTestCase {
    func gradients(_ network: RecurrentNetwork<Double>) -> [Double] {
        Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
    }

    func testFixedTruncationEqualsChunkedTraining() throws {
        for cell in [CellKind.lstm, .gru, .rnnTanh] {
            var g = SeededGenerator(seed: 21)
            let config = RecurrentConfiguration(cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 2)
            let network = try RecurrentNetwork<Double>(config, generator: &g)
            let x = Tensor<Double>(shape: [6, 2, 3]) { g.normal() }
            let dOut = Tensor<Double>(shape: [6, 2, 4]) { g.normal() }
            let state0 = RecurrentState<Double>(zerosFor: config, batch: 2)
            // One pass over 6 steps, the recurrent gradient cut between steps 2 and 3.
            network.parameters.zeroGradients()
            _ = try network.forwardTensors(.dense(x), initialState: state0, generator: &g)
            let (dx, dState) = try network.backwardTensors(outputGradient: dOut, truncation: .fixed(length: 3))
            let truncated = gradients(network)
            // Two chunks of 3 with the state carried as a value.
            network.parameters.zeroGradients()
            let x1 = try Tensor(shape: [3, 2, 3], scalars: Array(x.scalars[..<18])),
                x2 = try Tensor(shape: [3, 2, 3], scalars: Array(x.scalars[18...]))
            let d1 = try Tensor(shape: [3, 2, 4], scalars: Array(dOut.scalars[..<24])),
                d2 = try Tensor(shape: [3, 2, 4], scalars: Array(dOut.scalars[24...]))
            let (_, mid) = try network.forwardTensors(.dense(x1), initialState: state0, generator: &g)
            let (dx1, dState1) = try network.backwardTensors(outputGradient: d1)
            _ = try network.forwardTensors(.dense(x2), initialState: mid, generator: &g)
            let (dx2, _) = try network.backwardTensors(outputGradient: d2)
            let chunked = gradients(network)
            for i in truncated.indices {
                XCTAssertEqual(truncated[i], chunked[i], accuracy: 1e-12, "\(cell) parameter gradient \(i)")
            }
            // Equal up to summation order (a 6-step pass uses pre-packed weights, 3-step chunks read them in place).
            assertClose(
                dx!, try Tensor(shape: [6, 2, 3], scalars: dx1!.scalars + dx2!.scalars), tolerance: 1e-14,
                "\(cell) input gradient")
            assertClose(dState.h, dState1.h, tolerance: 1e-14, "\(cell) h0 gradient")
            // And it really differs from full BPTT.
            network.parameters.zeroGradients()
            _ = try network.forwardTensors(.dense(x), initialState: state0, generator: &g)
            _ = try network.backwardTensors(outputGradient: dOut)
            XCTAssertGreaterThan(zip(gradients(network), truncated).map { abs($0 - $1) }.max()!, 1e-4)
        }
    }

    func testRandomizedTruncationIsUnbiasedAndFixedIsNot() throws {
        var g = SeededGenerator(seed: 22)
        let config = RecurrentConfiguration(cell: .rnnTanh, inputSize: 2, hiddenSize: 4)
        let network = try RecurrentNetwork<Double>(config, generator: &g)
        let recurrent = try network.weightHH(layer: 0).values  // strong recurrence, so long paths matter
        for i in 0..<16 { recurrent[i] *= 2.5 }
        let T = 10
        let x = Tensor<Double>(shape: [T, 2, 2]) { g.normal() }
        let dOut = Tensor<Double>(shape: [T, 2, 4]) { g.normal() }
        _ = try network.forwardTensors(.dense(x), generator: &g)
        func gradient(_ truncation: BackwardTruncation) throws -> [Double] {
            network.parameters.zeroGradients()
            _ = try network.backwardTensors(outputGradient: dOut, truncation: truncation)
            return gradients(network)
        }
        func distance(_ a: [Double], _ b: [Double]) -> Double {
            zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        }
        let full = try gradient(.none)
        let fixedBias = distance(try gradient(.fixed(length: 3)), full)

        var sum = [Double](repeating: 0, count: full.count)
        var squaredDeviation = 0.0
        var errors: [Int: Double] = [:]
        for n in 1...3200 {
            let sample = try gradient(.randomized(continueProbability: 0.6, seed: UInt64(n)))
            for i in sum.indices { sum[i] += sample[i] }
            squaredDeviation += pow(distance(sample, full), 2)
            if [50, 200, 800, 3200].contains(n) { errors[n] = distance(sum.map { $0 / Double(n) }, full) }
        }
        let sigma = (squaredDeviation / 3200).squareRoot()  // per-sample spread around the full gradient
        for (n, error) in errors.sorted(by: { $0.key < $1.key }) {
            // The error of a mean of n unbiased samples is about sigma / sqrt(n); 4 sigma-widths is a generous bound.
            XCTAssertLessThan(error, 4 * sigma / Double(n).squareRoot(), "n = \(n)")
        }
        XCTAssertLessThan(errors[3200]!, errors[50]! / 2, "the error must shrink as samples are averaged")
        XCTAssertGreaterThan(fixedBias, 8 * sigma / 3200.0.squareRoot(), "fixed truncation stays biased")
        XCTAssertGreaterThan(fixedBias, 5 * errors[3200]!)
        print(
            "randomized truncation: sigma \(sigma), mean error "
                + "\(errors.sorted { $0.key < $1.key }.map { "n=\($0.key): \($0.value)" }), fixed-truncation bias "
                + "\(fixedBias)"
        )
    }

    func testLinearRNNMatchesClosedFormOfEquation9() throws {
        // For h_t = W_hh h_{t-1} + W_hx x_t (no biases, identity activation) and o_t = W_qh h_t:
        // dL/dh_t = sum_{i=t}^{T} (W_hh^T)^{i-t} W_qh^T dL/do_i  (d2l 8.7 eq. (9), indices from t).
        var g = SeededGenerator(seed: 23)
        let (T, I, H, V) = (6, 3, 4, 5)
        let config = RecurrentConfiguration(cell: .rnnLinear, inputSize: I, hiddenSize: H)
        let network = try RecurrentNetwork<Double>(config, generator: &g)
        try network.parameters.setTensor("bias_ih_l0", Tensor(zeros: [H]))
        try network.parameters.setTensor("bias_hh_l0", Tensor(zeros: [H]))
        let whh = try network.parameters.tensor("weight_hh_l0").scalars  // (H, H)
        let wqh = (0..<(V * H)).map { _ in g.normal() }  // (V, H)
        let dO = (0..<(T * V)).map { _ in g.normal() }  // dL/do_t, (T, V)
        // dOut_t = W_qh^T dL/do_t
        var dOut = Tensor<Double>(zeros: [T, 1, H])
        for t in 0..<T {
            for j in 0..<H { dOut.scalars[t * H + j] = (0..<V).reduce(0) { $0 + wqh[$1 * H + j] * dO[t * V + $1] } }
        }
        let recorder = HiddenGradientRecorder<Double>()
        network.hiddenGradientRecorder = recorder
        _ = try network.forwardTensors(.dense(Tensor(shape: [T, 1, I]) { g.normal() }), generator: &g)
        _ = try network.backwardTensors(outputGradient: dOut)
        let recorded = recorder.gradients[0]
        func applyTranspose(_ v: [Double]) -> [Double] {
            (0..<H).map { j in (0..<H).reduce(0) { $0 + whh[$1 * H + j] * v[$1] } }
        }
        for t in 0..<T {
            var expected = [Double](repeating: 0, count: H)
            for i in t..<T {
                var term = Array(dOut.scalars[(i * H)..<((i + 1) * H)])
                for _ in 0..<(i - t) { term = applyTranspose(term) }
                for j in 0..<H { expected[j] += term[j] }
            }
            for j in 0..<H { XCTAssertEqual(recorded[t * H + j], expected[j], accuracy: 1e-12, "t = \(t)") }
        }
        XCTAssertEqual(recorder.norms[0].count, T)
    }

    func testTruncationArgumentsAreValidated() throws {
        var g = SeededGenerator(seed: 24)
        let network = try RecurrentNetwork<Double>(.init(cell: .gru, inputSize: 2, hiddenSize: 3), generator: &g)
        _ = try network.forwardTensors(.dense(Tensor(zeros: [4, 1, 2])), generator: &g)
        XCTAssertThrowsError(
            try network.backwardTensors(outputGradient: Tensor(zeros: [4, 1, 3]), truncation: .fixed(length: 0)))
        XCTAssertThrowsError(
            try network.backwardTensors(
                outputGradient: Tensor(zeros: [4, 1, 3]), truncation: .randomized(continueProbability: 0, seed: 1)))
        XCTAssertThrowsError(
            try network.backwardTensors(
                outputGradient: Tensor(zeros: [4, 1, 3]), truncation: .randomized(continueProbability: 1.5, seed: 1)))
    }
}
