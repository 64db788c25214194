import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Variable-length batches beyond the PyTorch fixtures (PyTorchFixtureTests' *_packed cases) and finite differences
/// (GradientCheckTests): padded positions are inert, packing equals running each row alone, equal lengths change no
/// bit, recompute and one-hot input agree, and bad lengths are refused.
final class VariableLengthTests: XCTestCase {
    let (T, B, I, H) = (7, 4, 3, 5)
    let lengths = [5, 7, 1, 3]

    /// Forward and backward of `network` on x with `lengths`; returns output, final state, input, state and parameter
    /// gradients.
    func run(
        _ network: RecurrentNetwork<Double>, _ x: Tensor<Double>, _ dOut: Tensor<Double>, lengths: [Int]?,
        h0: RecurrentState<Double>? = nil, dFinal: RecurrentState<Double>? = nil
    )
        throws -> (Tensor<Double>, RecurrentState<Double>, Tensor<Double>, RecurrentState<Double>, [Double])
    {
        var g = SeededGenerator(seed: 3)
        network.parameters.zeroGradients()
        let record = try network(.dense(x), initialState: h0, lengths: lengths, generator: &g)
        let (dx, dState) = try network.backward(record, outputGradient: dOut, finalStateGradient: dFinal)
        return (
            try record.output, try record.finalState, dx!, dState,
            Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
        )
    }

    func testPaddedPositionsAreInert() throws {
        for cell in CellKind.allCases {
            for bidirectional in [false, true] {
                var g = SeededGenerator(seed: 40)
                let config = RecurrentConfiguration(
                    cell: cell, inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: bidirectional)
                let network = try RecurrentNetwork<Double>(config, generator: &g)
                let O = config.outputSize, D = config.stateLayers
                let x = Tensor<Double>(shape: [T, B, I]) { g.normal() },
                    dOut = Tensor<Double>(shape: [T, B, O]) { g.normal() }
                let h0 = RecurrentState(
                    h: Tensor<Double>(shape: [D, B, H]) { g.normal() },
                    c: cell.hasCellState ? Tensor(shape: [D, B, H]) { g.normal() } : nil)
                let dFinal = RecurrentState(
                    h: Tensor<Double>(shape: [D, B, H]) { g.normal() },
                    c: cell.hasCellState ? Tensor(shape: [D, B, H]) { g.normal() } : nil)
                let a = try run(network, x, dOut, lengths: lengths, h0: h0, dFinal: dFinal)
                // Other values at padded positions, in the input and in the output gradient: nothing changes, to the
                // bit.
                var x2 = x, dOut2 = dOut
                for t in 0..<T {
                    for b in 0..<B where t >= lengths[b] {
                        for i in 0..<I { x2.scalars[(t * B + b) * I + i] = 1e3 * g.normal() }
                        for j in 0..<O { dOut2.scalars[(t * B + b) * O + j] = 1e3 * g.normal() }
                    }
                }
                let b2 = try run(network, x2, dOut2, lengths: lengths, h0: h0, dFinal: dFinal)
                XCTAssertEqual(a.0, b2.0); XCTAssertEqual(a.1, b2.1); XCTAssertEqual(a.3, b2.3);
                XCTAssertEqual(a.4, b2.4)
                XCTAssertEqual(a.2, b2.2)
                for t in 0..<T {
                    for b in 0..<B where t >= lengths[b] {
                        for j in 0..<O {
                            XCTAssertEqual(a.0.scalars[(t * B + b) * O + j], 0, "\(cell) output at padded (\(t), \(b))")
                        }
                        for i in 0..<I {
                            XCTAssertEqual(
                                a.2.scalars[(t * B + b) * I + i], 0, "\(cell) input gradient at padded (\(t), \(b))")
                        }
                    }
                }
            }
        }
    }

    func testPackingEqualsEachRowAlone() throws {
        for cell in CellKind.allCases {
            for bidirectional in [false, true] {
                var g = SeededGenerator(seed: 41)
                let config = RecurrentConfiguration(
                    cell: cell, inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: bidirectional)
                let network = try RecurrentNetwork<Double>(config, generator: &g)
                let O = config.outputSize, D = config.stateLayers
                let x = Tensor<Double>(shape: [T, B, I]) { g.normal() },
                    dOut = Tensor<Double>(shape: [T, B, O]) { g.normal() }
                let dFinal = RecurrentState(
                    h: Tensor<Double>(shape: [D, B, H]) { g.normal() },
                    c: cell.hasCellState ? Tensor(shape: [D, B, H]) { g.normal() } : nil)
                let packed = try run(network, x, dOut, lengths: lengths, dFinal: dFinal)
                var parameterSum = [Double](repeating: 0, count: network.parameters.count)
                for b in 0..<B {
                    let n = lengths[b]
                    let xb = indexed([n, 1, I]) { x.scalars[($0[0] * B + b) * I + $0[2]] }
                    let db = indexed([n, 1, O]) { dOut.scalars[($0[0] * B + b) * O + $0[2]] }
                    let fb = RecurrentState(
                        h: indexed([D, 1, H]) { dFinal.h.scalars[($0[0] * B + b) * H + $0[2]] },
                        c: dFinal.c.map { c in indexed([D, 1, H]) { c.scalars[($0[0] * B + b) * H + $0[2]] } })
                    let alone = try run(network, xb, db, lengths: nil, dFinal: fb)
                    for t in 0..<n {
                        for j in 0..<O {
                            XCTAssertEqual(
                                packed.0.scalars[(t * B + b) * O + j], alone.0.scalars[t * O + j], accuracy: 1e-13)
                        }
                    }
                    for k in 0..<D {
                        for j in 0..<H {
                            XCTAssertEqual(
                                packed.1.h.scalars[(k * B + b) * H + j], alone.1.h.scalars[k * H + j], accuracy: 1e-13,
                                "\(cell) h_n")
                            if let c = packed.1.c {
                                XCTAssertEqual(
                                    c.scalars[(k * B + b) * H + j], alone.1.c!.scalars[k * H + j], accuracy: 1e-13)
                            }
                            XCTAssertEqual(
                                packed.3.h.scalars[(k * B + b) * H + j], alone.3.h.scalars[k * H + j], accuracy: 1e-13,
                                "\(cell) dh0")
                        }
                    }
                    for t in 0..<n {
                        for i in 0..<I {
                            XCTAssertEqual(
                                packed.2.scalars[(t * B + b) * I + i], alone.2.scalars[t * I + i], accuracy: 1e-13,
                                "\(cell) dx")
                        }
                    }
                    for i in parameterSum.indices { parameterSum[i] += alone.4[i] }
                }
                for i in parameterSum.indices {
                    XCTAssertEqual(packed.4[i], parameterSum[i], accuracy: 1e-12, "\(cell) parameter gradient \(i)")
                }
            }
        }
    }

    func testTruncationActsOnEachRowAsAlone() throws {
        for cell in [CellKind.lstm, .gru, .rnnTanh] {
            for truncation in [BackwardTruncation.fixed(length: 3), .fixed(length: 2)] {
                var g = SeededGenerator(seed: 46)
                let network = try RecurrentNetwork<Double>(
                    .init(cell: cell, inputSize: I, hiddenSize: H, numLayers: 2), generator: &g)
                let x = Tensor<Double>(shape: [T, B, I]) { g.normal() },
                    dOut = Tensor<Double>(shape: [T, B, H]) { g.normal() }
                func run(
                    _ x: Tensor<Double>, _ d: Tensor<Double>, _ lengths: [Int]?
                ) throws -> ([Double], Tensor<Double>) {
                    network.parameters.zeroGradients()
                    var masks = SeededGenerator(seed: 1)
                    let record = try network(.dense(x), lengths: lengths, generator: &masks)
                    let (dx, _) = try network.backward(record, outputGradient: d, truncation: truncation)
                    return (
                        Array(
                            UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count)),
                        dx!
                    )
                }
                let (packed, dxPacked) = try run(x, dOut, lengths)
                var sum = [Double](repeating: 0, count: packed.count)
                for b in 0..<B {
                    let n = lengths[b]
                    let (alone, dx) = try run(
                        indexed([n, 1, I]) { x.scalars[($0[0] * B + b) * I + $0[2]] },
                        indexed([n, 1, H]) { dOut.scalars[($0[0] * B + b) * H + $0[2]] }, nil)
                    for i in sum.indices { sum[i] += alone[i] }
                    for t in 0..<n {
                        for i in 0..<I {
                            XCTAssertEqual(
                                dxPacked.scalars[(t * B + b) * I + i], dx.scalars[t * I + i], accuracy: 1e-13,
                                "\(cell) \(truncation)")
                        }
                    }
                }
                for i in sum.indices {
                    XCTAssertEqual(packed[i], sum[i], accuracy: 1e-12, "\(cell) \(truncation) parameter \(i)")
                }
            }
        }
    }

    func testEqualLengthsRecomputeAndOneHot() throws {
        for cell in [CellKind.lstm, .gru, .rnnTanh] {
            var g = SeededGenerator(seed: 42)
            let network = try RecurrentNetwork<Double>(
                .init(cell: cell, inputSize: I, hiddenSize: H, numLayers: 2, dropout: 0.25), generator: &g)
            // Every row full length: the unpacked path, bit for bit.
            let x = Tensor<Double>(shape: [T, B, I]) { g.normal() },
                dOut = Tensor<Double>(shape: [T, B, H]) { g.normal() }
            let plain = try run(network, x, dOut, lengths: nil),
                full = try run(network, x, dOut, lengths: Array(repeating: T, count: B))
            XCTAssertEqual(plain.0, full.0); XCTAssertEqual(plain.2, full.2); XCTAssertEqual(plain.4, full.4)
            // Memory-efficient BPTT over a long variable-length batch, with dropout: bit-identical gradients.
            let long = Tensor<Double>(shape: [40, B, I]) { g.normal() },
                dLong = Tensor<Double>(shape: [40, B, H]) { g.normal() }
            let longLengths = [40, 17, 33, 1]
            func trained(_ interval: Int?) throws -> ([Double], Tensor<Double>, RecurrentState<Double>) {
                network.recomputeInterval = interval
                network.parameters.zeroGradients()
                var masks = SeededGenerator(seed: 9)
                let record = try network(.dense(long), lengths: longLengths, training: true, generator: &masks)
                let (dx, _) = try network.backward(record, outputGradient: dLong)
                return (
                    Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count)),
                    dx!, try record.finalState
                )
            }
            let kept = try trained(nil), recomputed = try trained(16)
            XCTAssertEqual(kept.0, recomputed.0); XCTAssertEqual(kept.1, recomputed.1);
            XCTAssertEqual(kept.2, recomputed.2)
            network.recomputeInterval = nil
        }
        // One-hot indices equal their dense one-hot rows; padded indices may be anything (e.g. -1).
        var g = SeededGenerator(seed: 43)
        let network = try RecurrentNetwork<Double>(
            .init(cell: .gru, inputSize: 6, hiddenSize: H, numLayers: 2), generator: &g)
        var tokens = (0..<(T * B)).map { _ in Int(g.next() % 6) }
        for t in 0..<T { for b in 0..<B where t >= lengths[b] { tokens[t * B + b] = -1 } }
        let dense = indexed([T, B, 6]) { tokens[$0[0] * B + $0[1]] == $0[2] ? 1 : 0 }
        let dOut = Tensor<Double>(shape: [T, B, H]) { g.normal() }
        network.parameters.zeroGradients()
        let r1 = try network(.oneHot(tokens: tokens, steps: T, batch: B), lengths: lengths, generator: &g)
        let out1 = try r1.output
        _ = try network.backward(r1, outputGradient: dOut)
        let grads1 = Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
        let viaDense = try run(network, dense, dOut, lengths: lengths)
        XCTAssertEqual(out1.scalars.count, viaDense.0.scalars.count)
        for i in out1.scalars.indices { XCTAssertEqual(out1.scalars[i], viaDense.0.scalars[i], accuracy: 1e-14) }
        for i in grads1.indices { XCTAssertEqual(grads1[i], viaDense.4[i], accuracy: 1e-13) }
    }

    func testARefusedForwardLeavesTheLastRecordUsable() throws {
        var g = SeededGenerator(seed: 45)
        let network = try RecurrentNetwork<Double>(
            .init(cell: .lstm, inputSize: 6, hiddenSize: H, numLayers: 2), generator: &g)
        let tokens = (0..<(T * B)).map { _ in Int(g.next() % 6) }
        let dOut = Tensor<Double>(shape: [T, B, H]) { g.normal() }
        func gradients(_ record: RecurrentRecord<Double>) throws -> [Double] {
            network.parameters.zeroGradients()
            _ = try network.backward(record, outputGradient: dOut)
            return Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
        }
        let record = try network(.oneHot(tokens: tokens, steps: T, batch: B), lengths: lengths, generator: &g)
        let expected = try gradients(record)
        // Other lengths with a bad token, and bad lengths: refused before anything changes.
        var bad = tokens
        bad[0] = 99
        XCTAssertThrowsError(
            try network(.oneHot(tokens: bad, steps: T, batch: B), lengths: [1, 2, 3, 4], generator: &g))
        XCTAssertThrowsError(
            try network(.oneHot(tokens: tokens, steps: T, batch: B), lengths: [1, 2, 3, 0], generator: &g))
        XCTAssertEqual(try gradients(record), expected)
    }

    func testMaskedLossesAndRefusals() throws {
        let mask = try sequenceMask(lengths: [2, 1], steps: 3)
        XCTAssertEqual(mask, [1, 1, 1, 0, 0, 0])
        XCTAssertEqual(try sequenceMask(lengths: [2, 1], steps: 3, layout: .batchFirst), [1, 1, 0, 1, 0, 0])
        // A 0/1 mask gives the mean over the valid rows, and zero gradient elsewhere.
        let p = try Tensor<Double>(shape: [3, 2, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
        let y = Tensor<Double>(zeros: [3, 2, 2])
        let (loss, gradient) = try meanSquaredError(predictions: p, targets: y, weights: mask)
        XCTAssertEqual(loss, (1 + 4 + 9 + 16 + 25 + 36) / 6.0, accuracy: 1e-12)
        XCTAssertEqual(gradient.scalars[6...], [0, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try sequenceMask(lengths: [0, 1], steps: 3))

        var g = SeededGenerator(seed: 44)
        let lstm = try LSTM<Float>(inputSize: 2, hiddenSize: 3, generator: &g)
        let x = Tensor<Float>(zeros: [4, 2, 2])
        for bad in [[4], [4, 5], [0, 2], [-1, 3]] {
            XCTAssertThrowsError(try lstm(.dense(x), lengths: bad, generator: &g)) { error in
                XCTAssertTrue("\(error)".contains("length"), "\(error)")
            }
        }
        lstm.hiddenGradientRecorder = HiddenGradientRecorder()
        let record = try lstm(.dense(x), lengths: [4, 2], generator: &g)
        XCTAssertEqual(record.lengths, [4, 2])
        XCTAssertThrowsError(try lstm.backward(record, outputGradient: Tensor(zeros: [4, 2, 3])))
        // A bidirectional stack cannot record either, and says so instead of recording nothing.
        let both = try LSTM<Float>(inputSize: 2, hiddenSize: 3, bidirectional: true, generator: &g)
        let recorder = HiddenGradientRecorder<Float>()
        both.hiddenGradientRecorder = recorder
        let joined = try both(.dense(x), generator: &g)
        XCTAssertThrowsError(try both.backward(joined, outputGradient: Tensor(zeros: [4, 2, 6]))) { error in
            XCTAssertTrue("\(error)".contains("bidirectional"), "\(error)")
        }
        XCTAssertTrue(recorder.gradients.isEmpty)
        XCTAssertTrue((0..<both.parameters.count).allSatisfy { both.parameters.gradients[$0] == 0 })
    }
}

/// A (d0, d1, d2) tensor whose element at [i, j, k] is f([i, j, k]).
private func indexed(_ shape: [Int], _ f: ([Int]) -> Double) -> Tensor<Double> {
    var t = Tensor<Double>(zeros: shape)
    for i in 0..<shape[0] {
        for j in 0..<shape[1] { for k in 0..<shape[2] { t.scalars[(i * shape[1] + j) * shape[2] + k] = f([i, j, k]) } }
    }
    return t
}
