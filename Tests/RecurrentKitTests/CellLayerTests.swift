import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// The single-step cells as `Layer`s (input `CellInput`, output `RecurrentState`): the PyTorch float64 fixture of
/// CellTests (Scripts/fixtures/cells.py: nn.RNNCell / nn.GRUCell / nn.LSTMCell unrolled by hand over 3 steps, loss on
/// the first and last steps) replayed through `forward(_:generator:)` and `backward(_:outputGradient:)`, a decoder loop
/// that applies the same cell (and head) several times in one pass against finite differences, and a cell in
/// `Sequential`.
final class CellLayerTests: XCTestCase {
    private func makeCell(
        _ kind: String, inputSize I: Int = 4, hiddenSize H: Int = 5, generator g: inout SeededGenerator
    ) throws -> RecurrentCell<Double> {
        switch kind {
        case "lstm": return try LSTMCell<Double>(inputSize: I, hiddenSize: H, generator: &g)
        case "lstm_nobias": return try LSTMCell<Double>(inputSize: I, hiddenSize: H, bias: false, generator: &g)
        case "gru": return try GRUCell<Double>(inputSize: I, hiddenSize: H, generator: &g)
        case "gru_nobias": return try GRUCell<Double>(inputSize: I, hiddenSize: H, bias: false, generator: &g)
        case "rnn_relu": return try RNNCell<Double>(inputSize: I, hiddenSize: H, nonlinearity: .relu, generator: &g)
        default: return try RNNCell<Double>(inputSize: I, hiddenSize: H, generator: &g)
        }
    }

    /// a + b elementwise; nil is zero.
    private func sum(_ a: Tensor<Double>?, _ b: Tensor<Double>?) -> Tensor<Double>? {
        guard let a else { return b }
        guard let b else { return a }
        return try! Tensor(shape: a.shape, scalars: zip(a.scalars, b.scalars).map { $0 + $1 })
    }

    /// a + b for state gradients; a nil state (or `c`) is zero.
    private func sum(_ a: RecurrentState<Double>?, _ b: RecurrentState<Double>?) -> RecurrentState<Double>? {
        guard let a else { return b }
        guard let b else { return a }
        return RecurrentState(h: sum(a.h, b.h)!, c: sum(a.c, b.c))
    }

    /// Step t of x (T, B, I): (B, I).
    private func step(_ x: Tensor<Double>, _ t: Int) throws -> Tensor<Double> {
        let (B, I) = (x.shape[1], x.shape[2])
        return try Tensor(shape: [B, I], scalars: Array(x.scalars[(t * B * I)..<((t + 1) * B * I)]))
    }

    /// The fixture's loop through the Layer API only: T forwards of the same layer, each from the state the previous
    /// one returned, then T backwards in reverse, the output gradient of step t being the loss's (`lossGradients[t]`,
    /// nil: none) plus the state gradient that step t + 1 returned.
    private func unroll<L: Layer>(
        _ layer: L, x: Tensor<Double>, initial: RecurrentState<Double>?, lossGradients: [RecurrentState<Double>?]
    ) throws
        -> (states: [RecurrentState<Double>], dx: [Double], dInitial: RecurrentState<Double>)
    where L.Input == CellInput<Double>, L.Output == RecurrentState<Double> {
        let T = x.shape[0]
        var g = SeededGenerator(seed: 0)
        var state = initial, states: [RecurrentState<Double>] = [], records: [L.Record] = []
        for t in 0..<T {
            let (next, record) = try layer.forward(CellInput(try step(x, t), state: state), generator: &g)
            states.append(next)
            records.append(record)
            state = next
        }
        var dState: RecurrentState<Double>? = nil, dx: [[Double]] = Array(repeating: [], count: T)
        for t in stride(from: T - 1, through: 0, by: -1) {
            let outputGradient = try XCTUnwrap(sum(lossGradients[t], dState), "step \(t) has no gradient")
            let dInput = try layer.backward(records[t], outputGradient: outputGradient)
            dx[t] = dInput.x.scalars
            dState = dInput.state
        }
        return (states, dx.flatMap { $0 }, dState!)
    }

    func assertClose(
        _ a: [Double], _ b: [Double], _ tolerance: Double, _ what: String, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): max |diff| \(worst)", file: file, line: line)
    }

    /// Replays one fixture case through `layer` (a cell, or a model holding one) and checks states and gradients at
    /// CellTests' tolerances; `gradient(name)` reads dL/d`name` (PyTorch's name in the cell) from the layer's store.
    private func checkFixtureCase<L: Layer>(
        _ c: [String: Any], _ layer: L, gradient: (String) throws -> Tensor<Double>, file: StaticString = #filePath,
        line: UInt = #line
    ) throws where L.Input == CellInput<Double>, L.Output == RecurrentState<Double> {
        let kind = c["kind"] as! String, lstm = kind.hasPrefix("lstm")
        let T = 3
        var lossGradients = [RecurrentState<Double>?](repeating: nil, count: T)
        lossGradients[0] = RecurrentState(h: try Fixture.tensor(c["u1"]))
        lossGradients[T - 1] = sum(
            lossGradients[T - 1],
            RecurrentState(h: try Fixture.tensor(c["uT"]), c: lstm ? try Fixture.tensor(c["vT"]) : nil)
        )
        let initial = RecurrentState<Double>(
            h: try Fixture.tensor(c["h0"]), c: lstm ? try Fixture.tensor(c["c0"]) : nil)
        let (states, dx, d0) = try unroll(
            layer, x: try Fixture.tensor(c["x"]), initial: initial, lossGradients: lossGradients)
        assertClose(
            states.flatMap(\.h.scalars), try Fixture.tensor(c["h"], as: Double.self).scalars, 1e-12, "\(kind) h",
            file: file, line: line)
        if lstm {
            assertClose(
                states.flatMap { $0.c!.scalars }, try Fixture.tensor(c["c"], as: Double.self).scalars, 1e-12,
                "\(kind) c", file: file, line: line)
        } else {
            XCTAssertTrue(states.allSatisfy { $0.c == nil }, "\(kind): no c", file: file, line: line)
        }
        assertClose(
            dx, try Fixture.tensor(c["grad_x"], as: Double.self).scalars, 1e-10, "\(kind) dx", file: file, line: line)
        assertClose(
            d0.h.scalars, try Fixture.tensor(c["grad_h0"], as: Double.self).scalars, 1e-10, "\(kind) dh0", file: file,
            line: line)
        if lstm {
            assertClose(
                try XCTUnwrap(d0.c).scalars, try Fixture.tensor(c["grad_c0"], as: Double.self).scalars, 1e-10,
                "\(kind) dc0", file: file, line: line)
        } else {
            XCTAssertNil(d0.c, "\(kind): no dc0", file: file, line: line)
        }
        for (name, value) in c["grads"] as! [String: Any] {
            assertClose(
                try gradient(name).scalars, try Fixture.tensor(value, as: Double.self).scalars, 1e-10,
                "\(kind) d\(name)", file: file, line: line)
        }
    }

    func testCellLayersMatchPyTorch() throws {
        let cases = try XCTUnwrap(try Fixture.load("cells/cells.json")["cases"] as? [[String: Any]])
        XCTAssertEqual(
            cases.map { $0["kind"] as! String }, ["rnn_tanh", "rnn_relu", "gru", "lstm", "gru_nobias", "lstm_nobias"])
        for c in cases {
            let kind = c["kind"] as! String
            var g = SeededGenerator(seed: 1)
            let cell = try makeCell(kind, generator: &g)
            let weights = c["weights"] as! [String: Any]
            XCTAssertEqual(
                cell.parameterDeclarations.entries.map(\.name), weights.keys.sorted { order($0) < order($1) },
                "\(kind): nn.*Cell's state_dict names")
            for (name, value) in weights { try cell.parameters.setTensor(name, try Fixture.tensor(value)) }
            cell.parameters.zeroGradients()
            try checkFixtureCase(c, cell) { try cell.parameters.gradientTensor($0) }
        }
    }

    private func order(_ name: String) -> Int {
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].firstIndex(of: name) ?? 99
    }

    /// A decoder that feeds its own output back: x_{t+1} = head(h_t), the same cell and head applied T = 3 times in one
    /// pass, each application's record kept and backpropagated last first; L = sum_t u_t . h_t (+ v . c_T). Every
    /// parameter, x_0 and the initial state against central differences, from a given state and from a nil one (the
    /// nil state's gradient is the zero state's). B 3, I 2 != H 4.
    func testDecoderLoopMatchesFiniteDifferences() throws {
        let (T, B, I, H) = (3, 3, 2, 4)
        for kind in ["rnn_tanh", "gru", "lstm"] {
            for givenState in [true, false] {
                var g = SeededGenerator(seed: 21)
                let cell = try makeCell(kind, inputSize: I, hiddenSize: H, generator: &g)
                let head = try Linear<Double>(inputSize: H, outputSize: I, generator: &g)
                let store = try ParameterStore<Double>(gathering: ["cell": cell, "head": head])
                let lstm = kind == "lstm", what = "\(kind), \(givenState ? "given" : "nil") state"
                let x0 = Tensor<Double>(shape: [B, I]) { g.normal() }
                let initial: RecurrentState<Double>? =
                    givenState
                    ? RecurrentState(
                        h: Tensor(shape: [B, H]) { g.normal() }, c: lstm ? Tensor(shape: [B, H]) { g.normal() } : nil)
                    : nil
                let u = (0..<T).map { _ in Tensor<Double>(shape: [B, H]) { g.normal() } }
                let v: Tensor<Double>? = lstm ? Tensor(shape: [B, H]) { g.normal() } : nil

                func loss(x0: Tensor<Double>, initial: RecurrentState<Double>?) throws -> Double {
                    var (x, state, total) = (x0, initial, 0.0)
                    for t in 0..<T {
                        var generator = SeededGenerator(seed: 0)
                        let next = try cell.forward(CellInput(x, state: state), generator: &generator).output
                        total += zip(next.h.scalars, u[t].scalars).reduce(0) { $0 + $1.0 * $1.1 }
                        if t == T - 1, let v { total += zip(next.c!.scalars, v.scalars).reduce(0) { $0 + $1.0 * $1.1 } }
                        x = try head.forward(next.h, generator: &generator).output
                        state = next
                    }
                    return total
                }

                // Forward, keeping every record; then backward last step first.
                var generator = SeededGenerator(seed: 0)
                var x = x0, state = initial
                var cellRecords: [CellInput<Double>] = [], headRecords: [Tensor<Double>] = []
                for _ in 0..<T {
                    let (next, record) = try cell.forward(CellInput(x, state: state), generator: &generator)
                    cellRecords.append(record)
                    let (y, headRecord) = try head.forward(next.h, generator: &generator)
                    headRecords.append(headRecord)
                    (x, state) = (y, next)
                }
                store.zeroGradients()
                var dState: RecurrentState<Double>? = nil, dx: Tensor<Double>? = nil  // from step t + 1
                for t in stride(from: T - 1, through: 0, by: -1) {
                    var dh = sum(u[t], dState?.h)!
                    if t < T - 1 { dh = sum(dh, try head.backward(headRecords[t], outputGradient: try XCTUnwrap(dx)))! }
                    let dc = t == T - 1 ? v : dState?.c
                    let dInput = try cell.backward(cellRecords[t], outputGradient: RecurrentState(h: dh, c: dc))
                    (dx, dState) = (dInput.x, dInput.state)
                }
                let analytic = Array(UnsafeBufferPointer(start: store.gradients, count: store.count))
                XCTAssertTrue(analytic.contains { $0 != 0 }, what)

                let e = 1e-6
                func check(_ analytic: Double, _ plus: Double, _ minus: Double, _ label: String) {
                    XCTAssertEqual(
                        analytic, (plus - minus) / (2 * e), accuracy: 1e-7 * max(1, abs(analytic)), "\(what): \(label)")
                }
                for i in 0..<store.count {
                    let saved = store.values[i]
                    store.values[i] = saved + e; let plus = try loss(x0: x0, initial: initial)
                    store.values[i] = saved - e; let minus = try loss(x0: x0, initial: initial)
                    store.values[i] = saved
                    check(analytic[i], plus, minus, "parameter \(i)")
                }
                var xp = x0
                for i in x0.scalars.indices {
                    xp.scalars[i] = x0.scalars[i] + e; let plus = try loss(x0: xp, initial: initial)
                    xp.scalars[i] = x0.scalars[i] - e; let minus = try loss(x0: xp, initial: initial)
                    xp.scalars[i] = x0.scalars[i]
                    check(dx!.scalars[i], plus, minus, "dx0[\(i)]")
                }
                // dL/dh0 (and dc0) at the given state, or at zeros for a nil one.
                let d0 = try XCTUnwrap(dState)
                XCTAssertEqual(d0.h.shape, [B, H])
                XCTAssertEqual(d0.c?.shape, lstm ? [B, H] : nil, what)
                let base = initial ?? RecurrentState(h: Tensor(zeros: [B, H]), c: lstm ? Tensor(zeros: [B, H]) : nil)
                for i in 0..<(B * H) {
                    var s = base
                    s.h.scalars[i] += e; let plus = try loss(x0: x0, initial: s)
                    s.h.scalars[i] -= 2 * e; let minus = try loss(x0: x0, initial: s)
                    check(d0.h.scalars[i], plus, minus, "dh0[\(i)]")
                    guard lstm else { continue }
                    s = base
                    s.c!.scalars[i] += e; let plusC = try loss(x0: x0, initial: s)
                    s.c!.scalars[i] -= 2 * e; let minusC = try loss(x0: x0, initial: s)
                    check(d0.c!.scalars[i], plusC, minusC, "dc0[\(i)]")
                }
            }
        }
    }

    /// A record stays valid after later forwards of the same cell (the backward recomputes its step), and a nil `c`
    /// output gradient is zero.
    func testRecordsAreIndependentAndNilCellGradientIsZero() throws {
        var g = SeededGenerator(seed: 5)
        let cell = try LSTMCell<Double>(inputSize: 3, hiddenSize: 2, generator: &g)
        let first = CellInput(Tensor<Double>(shape: [2, 3]) { g.normal() })
        let dOut = RecurrentState<Double>(h: Tensor(shape: [2, 2]) { g.normal() })
        let (out, record) = try cell.forward(first, generator: &g)
        XCTAssertEqual(record, first)
        XCTAssertEqual(out, try cell(first.x))
        cell.parameters.zeroGradients()
        let before = try cell.backward(record, outputGradient: dOut)
        let gradientsBefore = Array(UnsafeBufferPointer(start: cell.parameters.gradients, count: cell.parameters.count))
        let second = CellInput(Tensor<Double>(shape: [2, 3]) { g.normal() }, state: out)
        let other = CellInput(Tensor<Double>(shape: [1, 3]) { g.normal() })  // another batch size
        _ = try cell.forward(second, generator: &g)
        _ = try cell.forward(other, generator: &g)
        cell.parameters.zeroGradients()
        let after = try cell.backward(record, outputGradient: dOut)
        XCTAssertEqual(after, before)
        XCTAssertEqual(
            Array(UnsafeBufferPointer(start: cell.parameters.gradients, count: cell.parameters.count)), gradientsBefore)
        cell.parameters.zeroGradients()
        XCTAssertEqual(
            try cell.backward(record, outputGradient: RecurrentState(h: dOut.h, c: Tensor(zeros: [2, 2]))), before,
            "nil dc' is zero")
        XCTAssertThrowsError(try cell.backward(record, outputGradient: RecurrentState(h: Tensor(zeros: [2, 3])))) {
            XCTAssertTrue("\($0)".contains("outputGradient.h"), "\($0)")
        }
        XCTAssertThrowsError(try cell.forward(CellInput(Tensor(zeros: [2, 2])), generator: &g)) {
            XCTAssertTrue("\($0)".contains("cell input"), "\($0)")
        }
    }

    /// `Sequential { ("cell", LSTMCell) }` has PyTorch's names for an nn.LSTMCell attribute `cell` (no `_l0`), loads
    /// the fixture's weights by them and replays its loop through the model's Layer API; a one-step `Pass` works too.
    func testCellInSequentialHasPyTorchNamesAndMatchesPyTorch() throws {
        let cases = try XCTUnwrap(try Fixture.load("cells/cells.json")["cases"] as? [[String: Any]])
        for kind in ["lstm", "gru", "rnn_relu"] {
            let c = try XCTUnwrap(cases.first { $0["kind"] as? String == kind })
            var g = SeededGenerator(seed: 1)
            let model = try Sequential { ("cell", try makeCell(kind, generator: &g)) }
            let suffixes = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
            XCTAssertEqual(model.parameters.entries.map(\.name), suffixes.map { "cell.\($0)" }, kind)
            XCTAssertEqual(model.parameterDeclarations.entries.map(\.name), suffixes.map { "cell.\($0)" }, kind)
            let G = kind == "lstm" ? 4 : kind == "gru" ? 3 : 1
            XCTAssertEqual(model.parameters.entries.map(\.shape), [[G * 5, 4], [G * 5, 5], [G * 5], [G * 5]], kind)
            for (name, value) in c["weights"] as! [String: Any] {
                try model.parameters.setTensor("cell.\(name)", try Fixture.tensor(value))
            }
            model.parameters.zeroGradients()
            try checkFixtureCase(c, model) { try model.parameters.gradientTensor("cell.\($0)") }
        }

        var g = SeededGenerator(seed: 6)
        let model = try Sequential { ("cell", try LSTMCell<Double>(inputSize: 3, hiddenSize: 2, generator: &g)) }
        let input = CellInput(
            Tensor<Double>(shape: [2, 3]) { g.normal() },
            state: RecurrentState(h: Tensor(shape: [2, 2]) { g.normal() }))
        let pass = try model.forward(input)
        XCTAssertNotNil(pass.output.c)
        model.parameters.zeroGradients()
        let dInput = try pass.backward(RecurrentState(h: Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])))
        let gradients = Array(UnsafeBufferPointer(start: model.parameters.gradients, count: model.parameters.count))
        model.parameters.zeroGradients()
        XCTAssertEqual(
            try model.body.layer.backward(
                input, outputGradient: RecurrentState(h: Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))), dInput)
        XCTAssertEqual(
            Array(UnsafeBufferPointer(start: model.parameters.gradients, count: model.parameters.count)), gradients)
    }
}
