import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// The single-step cells against PyTorch's nn.RNNCell / nn.GRUCell / nn.LSTMCell (Scripts/fixtures/cells.py: unrolled
/// by hand over 3 steps, batch 3, I 4 != H 5, loss on the first and last steps), finite differences, and the
/// PyTorch-named stacks (RNN, GRU, LSTM) against RecurrentNetwork.
final class CellTests: XCTestCase {
    func makeCell(_ kind: String, generator g: inout SeededGenerator) throws -> RecurrentCell<Double> {
        switch kind {
        case "lstm": return try LSTMCell<Double>(inputSize: 4, hiddenSize: 5, generator: &g)
        case "lstm_nobias": return try LSTMCell<Double>(inputSize: 4, hiddenSize: 5, bias: false, generator: &g)
        case "gru_nobias": return try GRUCell<Double>(inputSize: 4, hiddenSize: 5, bias: false, generator: &g)
        case "gru": return try GRUCell<Double>(inputSize: 4, hiddenSize: 5, generator: &g)
        case "rnn_relu": return try RNNCell<Double>(inputSize: 4, hiddenSize: 5, nonlinearity: .relu, generator: &g)
        default: return try RNNCell<Double>(inputSize: 4, hiddenSize: 5, generator: &g)
        }
    }

    /// Runs the user's loop: forward over the steps keeping inputs and states, then backward from the last step.
    func unroll(
        _ cell: RecurrentCell<Double>, x: Tensor<Double>, h0: Tensor<Double>, c0: Tensor<Double>?, u1: Tensor<Double>,
        uT: Tensor<Double>, vT: Tensor<Double>?
    ) throws -> (states: [RecurrentState<Double>], dx: [Double], d0: RecurrentState<Double>) {
        let (T, B, I) = (x.shape[0], x.shape[1], x.shape[2])
        func step(_ t: Int) throws -> Tensor<Double> {
            try Tensor(shape: [B, I], scalars: Array(x.scalars[(t * B * I)..<((t + 1) * B * I)]))
        }
        var states = [RecurrentState(h: h0, c: c0)]
        for t in 0..<T { states.append(try cell(try step(t), state: states[t])) }
        var dState = RecurrentState(h: uT, c: vT)
        var dx = [Double](repeating: 0, count: T * B * I)
        for t in stride(from: T - 1, through: 0, by: -1) {
            if t == 0 {
                dState.h = try Tensor(shape: dState.h.shape, scalars: zip(dState.h.scalars, u1.scalars).map { $0 + $1 })
            }
            let (dxt, dPrev) = try cell.backward(input: try step(t), state: states[t], outputGradient: dState)
            dx.replaceSubrange((t * B * I)..<((t + 1) * B * I), with: dxt.scalars)
            dState = dPrev
        }
        return (states, dx, dState)
    }

    func testCellsMatchPyTorch() throws {
        let fixture = try Fixture.load("cells/cells.json")
        let cases = try XCTUnwrap(fixture["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let kind = c["kind"] as! String
            var g = SeededGenerator(seed: 1)
            let cell = try makeCell(kind, generator: &g)
            let weights = c["weights"] as! [String: Any]
            XCTAssertEqual(Set(cell.parameterDeclarations.entries.map(\.name)), Set(weights.keys), kind)
            for view in [cell.weightIH, cell.weightHH] + [cell.biasIH, cell.biasHH].compactMap({ $0 }) {
                try view.set(try Fixture.tensor(weights[view.name]))
            }
            let lstm = kind.hasPrefix("lstm")
            cell.parameters.zeroGradients()
            let (states, dx, d0) = try unroll(
                cell, x: try Fixture.tensor(c["x"]), h0: try Fixture.tensor(c["h0"]),
                c0: lstm ? try Fixture.tensor(c["c0"]) : nil, u1: try Fixture.tensor(c["u1"]),
                uT: try Fixture.tensor(c["uT"]), vT: lstm ? try Fixture.tensor(c["vT"]) : nil)
            let h: Tensor<Double> = try Fixture.tensor(c["h"])
            assertClose(states.dropFirst().flatMap(\.h.scalars), h.scalars, 1e-12, "\(kind) h")
            if lstm {
                assertClose(
                    states.dropFirst().flatMap { $0.c!.scalars }, try Fixture.tensor(c["c"], as: Double.self).scalars,
                    1e-12, "\(kind) c")
            }
            assertClose(dx, try Fixture.tensor(c["grad_x"], as: Double.self).scalars, 1e-10, "\(kind) dx")
            assertClose(d0.h.scalars, try Fixture.tensor(c["grad_h0"], as: Double.self).scalars, 1e-10, "\(kind) dh0")
            if lstm {
                assertClose(
                    d0.c!.scalars, try Fixture.tensor(c["grad_c0"], as: Double.self).scalars, 1e-10, "\(kind) dc0")
            }
            let grads = c["grads"] as! [String: Any]
            for view in [cell.weightIH, cell.weightHH] + [cell.biasIH, cell.biasHH].compactMap({ $0 }) {
                assertClose(
                    Array(view.gradients), try Fixture.tensor(grads[view.name], as: Double.self).scalars, 1e-10,
                    "\(kind) d\(view.name)")
            }
        }
    }

    func testCellGradientsMatchFiniteDifferences() throws {
        for kind in ["rnn_tanh", "gru", "lstm"] {
            var g = SeededGenerator(seed: 11)
            let cell = try makeCell(kind, generator: &g)
            let lstm = kind == "lstm"
            let x = Tensor<Double>(shape: [3, 2, 4]) { g.normal() }, h0 = Tensor<Double>(shape: [2, 5]) { g.normal() }
            let c0: Tensor<Double>? = lstm ? Tensor(shape: [2, 5]) { g.normal() } : nil
            let u1 = Tensor<Double>(shape: [2, 5]) { g.normal() }, uT = Tensor<Double>(shape: [2, 5]) { g.normal() }
            let vT: Tensor<Double>? = lstm ? Tensor(shape: [2, 5]) { g.normal() } : nil
            func loss() throws -> Double {
                var s = [RecurrentState(h: h0, c: c0)]
                for t in 0..<3 {
                    s.append(
                        try cell(
                            try Tensor(shape: [2, 4], scalars: Array(x.scalars[(t * 8)..<((t + 1) * 8)])), state: s[t]))
                }
                var l =
                    zip(s[1].h.scalars, u1.scalars).reduce(0) { $0 + $1.0 * $1.1 }
                    + zip(s[3].h.scalars, uT.scalars).reduce(0) { $0 + $1.0 * $1.1 }
                if let vT { l += zip(s[3].c!.scalars, vT.scalars).reduce(0) { $0 + $1.0 * $1.1 } }
                return l
            }
            cell.parameters.zeroGradients()
            _ = try unroll(cell, x: x, h0: h0, c0: c0, u1: u1, uT: uT, vT: vT)
            let values = cell.parameters.values, count = cell.parameters.count
            let analytic = Array(UnsafeBufferPointer(start: cell.parameters.gradients, count: count))
            for i in stride(from: 0, to: count, by: 3) {
                let saved = values[i], h = 1e-5
                values[i] = saved + h; let plus = try loss()
                values[i] = saved - h; let minus = try loss()
                values[i] = saved
                XCTAssertEqual(
                    analytic[i], (plus - minus) / (2 * h), accuracy: 1e-7 * max(1, abs(analytic[i])),
                    "\(kind) parameter \(i)")
            }
        }
    }

    func testCellsAndStacksBindLikeLayers() throws {
        var g = SeededGenerator(seed: 3)
        let cell = try LSTMCell<Float>(inputSize: 2, hiddenSize: 3, generator: &g)
        let head = try Linear<Float>(inputSize: 3, outputSize: 1, generator: &g)
        let before = try cell.weightHH.tensor()
        let store = try ParameterStore<Float>(gathering: ["decoder": cell, "head": head])
        XCTAssertEqual(
            store.entries.map(\.name),
            [
                "decoder.weight_ih", "decoder.weight_hh", "decoder.bias_ih", "decoder.bias_hh", "head.weight",
                "head.bias",
            ])
        XCTAssertEqual(try cell.weightHH.tensor(), before)
        XCTAssertEqual(cell.weightHH.shape, [12, 3])
        XCTAssertThrowsError(try cell(Tensor(zeros: [2, 3]))) { XCTAssertTrue("\($0)".contains("cell input"), "\($0)") }
        XCTAssertThrowsError(try cell(Tensor(zeros: [2, 2]), state: RecurrentState(h: Tensor(zeros: [1, 3])))) {
            XCTAssertTrue("\($0)".contains("state.h"), "\($0)")
        }
        XCTAssertThrowsError(try RNNCell<Float>(inputSize: 0, hiddenSize: 3, generator: &g))

        // The PyTorch-named stacks are RecurrentNetworks with PyTorch's arguments and the same initialisation.
        for (cell, made) in [
            (
                CellKind.lstm,
                { (g: inout SeededGenerator) throws -> RecurrentNetwork<Float> in
                    try LSTM<Float>(inputSize: 4, hiddenSize: 6, numLayers: 2, dropout: 0.1, generator: &g)
                }
            ),
            (.gru, { try GRU<Float>(inputSize: 4, hiddenSize: 6, numLayers: 2, dropout: 0.1, generator: &$0) }),
            (
                .rnnReLU,
                {
                    try RNN<Float>(
                        inputSize: 4, hiddenSize: 6, numLayers: 2, nonlinearity: .relu, dropout: 0.1, generator: &$0)
                }
            ),
        ] {
            var a = SeededGenerator(seed: 8), b = SeededGenerator(seed: 8)
            let named = try made(&a)
            let plain = try RecurrentNetwork<Float>(
                .init(cell: cell, inputSize: 4, hiddenSize: 6, numLayers: 2, dropout: 0.1), generator: &b)
            XCTAssertEqual(named.configuration, plain.configuration)
            XCTAssertEqual(named.parameters.entries, plain.parameters.entries)
            XCTAssertEqual(
                Array(UnsafeBufferPointer(start: named.parameters.values, count: named.parameters.count)),
                Array(UnsafeBufferPointer(start: plain.parameters.values, count: plain.parameters.count)))
        }
        XCTAssertThrowsError(try LSTM<Float>(inputSize: 4, hiddenSize: 6, dropout: 1, generator: &g))
    }

    func assertClose(
        _ a: [Double], _ b: [Double], _ tolerance: Double, _ what: String, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): max |diff| \(worst)", file: file, line: line)
    }
}
