import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Free-form models on a Tape: two inputs, a residual, a GRU encoder and an LSTMCell decoder loop, against the same
/// model in PyTorch float64 (Scripts/fixtures/composition.py, `FreeForm`) and against finite differences; stale and
/// foreign values.
final class TapeTests: XCTestCase {
    /// The layers of `FreeForm`, gathered under PyTorch's names.
    private final class FreeForm<Scalar: RecurrentScalar> {
        let encoder: GRU<Scalar>, proj: Linear<Scalar>, cell: LSTMCell<Scalar>, head: Linear<Scalar>
        let parameters: ParameterStore<Scalar>

        init(seed: UInt64) throws {
            var g = SeededGenerator(seed: seed)
            encoder = try GRU(inputSize: 3, hiddenSize: 5, generator: &g)
            proj = try Linear(inputSize: 7, outputSize: 5, generator: &g)
            cell = try LSTMCell(inputSize: 4, hiddenSize: 5, generator: &g)
            head = try Linear(inputSize: 5, outputSize: 4, generator: &g)
            parameters = try ParameterStore(gathering: ["encoder": encoder, "proj": proj, "cell": cell, "head": head])
        }

        /// The forward of the PyTorch module, each layer through the tape.
        func forward(
            _ tape: Tape, x: Traced<SequenceBatch<Scalar>>, z: Traced<Tensor<Scalar>>, steps: Int = 3
        ) throws -> Traced<Tensor<Scalar>> {
            let h = try tape(FinalHiddenState<Scalar>(), try tape(encoder, x))  // (B, 5)
            let u = try tape.adding(
                try tape(Tanh<Scalar>(), try tape(proj, try tape.concatenated([h, z], along: 1))), h)
            var state = try tape.cellState(h: u, c: tape.input(Tensor<Scalar>(zeros: u.value.shape)))
            var y = tape.input(Tensor<Scalar>(zeros: [z.value.shape[0], 4]))
            var outputs: [Traced<Tensor<Scalar>>] = []
            for _ in 0..<steps {
                state = try tape(cell, y, state: state)
                y = try tape(head, try tape.hidden(state))
                outputs.append(y)
            }
            return try tape.concatenated(
                try outputs.map { y in
                    try tape.map(y, { try $0.reshaped([1] + $0.shape) }, adjoint: { try $0.reshaped(y.value.shape) })
                },
                along: 0)  // (steps, B, 4)
        }
    }

    private func fixture() throws -> [String: Any] {
        (try Fixture.load("composition/composition.json")["models"] as! [String: Any])["free_form"] as! [String: Any]
    }

    func testFreeFormModelMatchesPyTorch() throws {
        let c = try fixture()
        func run<Scalar: RecurrentScalar>(_: Scalar.Type, tolerance: Double) throws {
            let model = try FreeForm<Scalar>(seed: 1)
            let stateDict = c["state_dict"] as! [String: Any]
            XCTAssertEqual(Set(stateDict.keys), Set(model.parameters.entries.map(\.name)))
            for (name, value) in stateDict { try model.parameters.setTensor(name, try Fixture.tensor(value)) }
            let inputs = c["inputs"] as! [String: Any]
            let tape = Tape()
            let x = tape.input(SequenceBatch<Scalar>(try Fixture.tensor(inputs["x"])))
            let z = tape.input(try Fixture.tensor(inputs["z"], as: Scalar.self))
            let y = try model.forward(tape, x: x, z: z)
            assertClose(
                y.value, try Fixture.tensor(c["output"], as: Double.self), tolerance: tolerance,
                "output [\(Scalar.self)]")
            let (loss, dy) = try meanSquaredError(predictions: y.value, targets: try Fixture.tensor(c["targets"]))
            XCTAssertEqual(loss, c["loss"] as! Double, accuracy: tolerance)
            model.parameters.zeroGradients()
            try tape.backward(y, gradient: dy)
            for (name, value) in c["gradients"] as! [String: Any] {
                assertClose(
                    try model.parameters.gradientTensor(name), try Fixture.tensor(value, as: Double.self),
                    tolerance: tolerance, "d\(name) [\(Scalar.self)]")
            }
            let expected = c["input_gradients"] as! [String: Any]
            assertClose(
                try XCTUnwrap(tape.gradient(of: x)?.input), try Fixture.tensor(expected["x"], as: Double.self),
                tolerance: tolerance, "dx")
            assertClose(
                try XCTUnwrap(tape.gradient(of: z)), try Fixture.tensor(expected["z"], as: Double.self),
                tolerance: tolerance, "dz")
            XCTAssertEqual(tape.recordCount, 23, "a variable number of records: the decoder loop adds 5 per step")
        }
        try run(Double.self, tolerance: 1e-10)
        try run(Float.self, tolerance: 1e-5)
    }

    /// Central differences over every parameter and both inputs, with a longer decoder loop (5 steps).
    func testFreeFormModelMatchesFiniteDifferences() throws {
        let model = try FreeForm<Double>(seed: 3)
        var g = SeededGenerator(seed: 8)
        let x0 = Tensor<Double>(shape: [4, 2, 3]) { g.normal() }, z0 = Tensor<Double>(shape: [2, 2]) { g.normal() }
        let target = Tensor<Double>(shape: [5, 2, 4]) { g.normal() }
        let tape = Tape()
        func loss(_ x: Tensor<Double>, _ z: Tensor<Double>) throws -> Double {
            tape.reset()
            let y = try model.forward(tape, x: tape.input(SequenceBatch(x)), z: tape.input(z), steps: 5)
            return try meanSquaredError(predictions: y.value, targets: target).loss
        }
        tape.reset()
        let x = tape.input(SequenceBatch(x0)), z = tape.input(z0)
        let y = try model.forward(tape, x: x, z: z, steps: 5)
        model.parameters.zeroGradients()
        try tape.backward(y, gradient: try meanSquaredError(predictions: y.value, targets: target).gradient)
        let (dx, dz) = (try XCTUnwrap(tape.gradient(of: x)?.input), try XCTUnwrap(tape.gradient(of: z)))
        let p = model.parameters
        for i in 0..<p.count {
            let saved = p.values[i]
            p.values[i] = saved + 1e-6
            let plus = try loss(x0, z0)
            p.values[i] = saved - 1e-6
            let minus = try loss(x0, z0)
            p.values[i] = saved
            XCTAssertEqual(p.gradients[i], (plus - minus) / 2e-6, accuracy: 1e-8, "parameter \(i)")
        }
        for (value, gradient, isX) in [(x0, dx, true), (z0, dz, false)] {
            for i in value.scalars.indices {
                var (a, b) = (value, value)
                a.scalars[i] += 1e-6
                b.scalars[i] -= 1e-6
                let numeric = isX ? (try loss(a, z0) - loss(b, z0)) / 2e-6 : (try loss(x0, a) - loss(x0, b)) / 2e-6
                XCTAssertEqual(gradient.scalars[i], numeric, accuracy: 1e-8, "\(isX ? "x" : "z")[\(i)]")
            }
        }
    }

    func testStaleForeignAndUnreachedValues() throws {
        var g = SeededGenerator(seed: 1)
        let linear = try Linear<Float>(inputSize: 2, outputSize: 2, generator: &g)
        let tape = Tape(), other = Tape()
        let a = tape.input(Tensor<Float>(zeros: [1, 2]))
        let unused = try tape(linear, a)  // never reaches the loss: its backward is not run
        let b = try tape(linear, a)
        linear.parameters.zeroGradients()
        try tape.backward(b, gradient: try Tensor(shape: [1, 2], scalars: [1, 1]))
        XCTAssertNil(tape.gradient(of: unused))
        XCTAssertEqual(try linear.bias!.gradientTensor(), try Tensor(shape: [2], scalars: [1, 1]), "one use, not two")
        XCTAssertThrowsError(try tape(linear, b)) {
            XCTAssertEqual("\($0)", "a value from an earlier pass was given to the tape; a pass ends with its backward")
        }
        XCTAssertThrowsError(try other(linear, a)) {
            XCTAssertEqual("\($0)", "a value from another tape was given to this tape")
        }
        let fresh = tape.input(Tensor<Float>(zeros: [1, 2]))  // a new pass starts after a backward
        XCTAssertEqual(tape.recordCount, 0)
        XCTAssertNoThrow(try tape(linear, fresh))
    }
}
