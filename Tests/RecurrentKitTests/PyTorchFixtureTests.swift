import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Forward and backward of every cell against PyTorch float64 (Scripts/fixtures/generate.py):
/// outputs, final states, every parameter gradient, input gradients and h0/c0 gradients.
final class PyTorchFixtureTests: XCTestCase {
    static let cases: [String] = {
        var names: [String] = []
        for cell in ["rnn_tanh", "rnn_relu", "gru", "lstm"] {
            for layers in [1, 2] {
                for loss in ["all_steps", "last_step"] { names.append("\(cell)_l\(layers)_\(loss)") }
            }
            names.append("\(cell)_l2_truncated")
            names.append("\(cell)_l2_truncated_nobias")  // PyTorch bias=False
            for layers in [1, 2] {
                for loss in ["all_steps", "last_step"] { names.append("\(cell)_l\(layers)_\(loss)_bidirectional") }
            }
            // Variable-length batches (pack_padded_sequence, lengths [6, 1, 4]), alone, bidirectional and batch-first.
            for layers in [1, 2] {
                for loss in ["all_steps", "last_step"] { names.append("\(cell)_l\(layers)_\(loss)_packed") }
            }
            for loss in ["all_steps", "last_step"] { names.append("\(cell)_l2_\(loss)_bidirectional_packed") }
            names.append("\(cell)_l2_all_steps_packed_batchfirst")
            names.append("\(cell)_l2_all_steps_batchfirst")
        }
        // LSTM projection (proj_size 3, H 5): alone, bidirectional, bidirectional + packed, truncated.
        for layers in [1, 2] {
            for loss in ["all_steps", "last_step"] { names.append("lstm_l\(layers)_\(loss)_proj3") }
        }
        names += [
            "lstm_l2_all_steps_bidirectional_proj3", "lstm_l2_all_steps_bidirectional_packed_proj3",
            "lstm_l2_last_step_bidirectional_packed_proj3", "lstm_l2_truncated_proj3",
        ]
        return names
    }()

    /// Runs one fixture in precision `Scalar`; returns the worst difference seen.
    @discardableResult
    func check<Scalar: RecurrentScalar>(_ name: String, as: Scalar.Type, tolerance: Double) throws -> Double {
        let fixture = try Fixture.load("recurrent/\(name).json")
        let cell = try CellKind(parsing: fixture["cell"] as! String)
        let config = RecurrentConfiguration(
            cell: cell, inputSize: fixture["input_size"] as! Int,
            hiddenSize: fixture["hidden_size"] as! Int, numLayers: fixture["num_layers"] as! Int,
            bias: fixture["bias"] as? Bool ?? true, bidirectional: fixture["bidirectional"] as? Bool ?? false,
            projectionSize: fixture["proj_size"] as? Int ?? 0)
        var generator = SeededGenerator(seed: 1)
        let network = try RecurrentNetwork<Scalar>(config, generator: &generator)
        let parameters = fixture["parameters"] as! [String: Any]
        XCTAssertEqual(Set(parameters.keys), Set(network.parameters.entries.map(\.name)), "\(name): parameter names")
        for (key, value) in parameters { try network.parameters.setTensor(key, try Fixture.tensor(value)) }
        network.parameters.zeroGradients()

        let h0: Tensor<Scalar> = try Fixture.tensor(fixture["h0"])
        let c0: Tensor<Scalar>? = cell.hasCellState ? try Fixture.tensor(fixture["c0"]) : nil
        var state = RecurrentState(h: h0, c: c0)
        var worst = 0.0
        func compare<A: RecurrentScalar, B: RecurrentScalar>(_ a: Tensor<A>, _ b: Tensor<B>, _ what: String) {
            assertClose(a, b, tolerance: tolerance, "\(name) [\(Scalar.self)] \(what)")
            worst = max(worst, maxDifference(a, b))
        }
        var initialGradient: RecurrentState<Scalar>? = nil
        let chunks = fixture["chunks"] as! [[String: Any]]
        let lengths = fixture["lengths"] as? [Int]
        let layout: SequenceLayout = fixture["batch_first"] as? Bool == true ? .batchFirst : .timeMajor
        for (index, chunk) in chunks.enumerated() {
            let x: Tensor<Scalar> = try Fixture.tensor(chunk["input"])
            let record = try network(
                .dense(x), layout: layout, initialState: state, lengths: lengths, generator: &generator)
            let (out, final) = (try record.output, try record.finalState)
            compare(out, try Fixture.tensor(chunk["output"], as: Double.self), "chunk \(index) output")
            compare(final.h, try Fixture.tensor(chunk["h_n"], as: Double.self), "chunk \(index) h_n")
            if cell.hasCellState {
                compare(final.c!, try Fixture.tensor(chunk["c_n"], as: Double.self), "chunk \(index) c_n")
            }
            let dFinal = RecurrentState<Scalar>(
                h: try Fixture.tensor(chunk["d_h_n"]),
                c: cell.hasCellState ? try Fixture.tensor(chunk["d_c_n"]) : nil)
            let (dx, dState) = try network.backward(
                record, outputGradient: try Fixture.tensor(chunk["d_output"]), finalStateGradient: dFinal)
            compare(dx!, try Fixture.tensor(chunk["grad_input"], as: Double.self), "chunk \(index) grad_input")
            if index == 0 { initialGradient = dState }
            state = final  // carried as a value: the gradient path is cut, as with detach()
        }
        compare(initialGradient!.h, try Fixture.tensor(fixture["grad_h0"], as: Double.self), "grad_h0")
        if cell.hasCellState {
            compare(initialGradient!.c!, try Fixture.tensor(fixture["grad_c0"], as: Double.self), "grad_c0")
        }
        for (key, value) in fixture["grads"] as! [String: Any] {
            compare(
                try network.parameters.gradientTensor(key), try Fixture.tensor(value, as: Double.self), "grad \(key)")
        }
        return worst
    }

    func testAllCasesInDouble() throws {
        var report: [String] = []
        for name in Self.cases { report.append("\(name): \(try check(name, as: Double.self, tolerance: 1e-10))") }
        print("PyTorch fixtures, Double, worst |diff| per case:\n" + report.joined(separator: "\n"))
    }

    func testAllCasesInFloat() throws {
        var report: [String] = []
        for name in Self.cases { report.append("\(name): \(try check(name, as: Float.self, tolerance: 1e-5))") }
        print("PyTorch fixtures, Float, worst |diff| per case:\n" + report.joined(separator: "\n"))
    }

    func testTruncationReallyCutsTheGradient() throws {
        // Running the truncated fixture as one 6-step sequence (no cut) must NOT match its gradients.
        let fixture = try Fixture.load("recurrent/lstm_l2_truncated.json")
        let grads = fixture["grads"] as! [String: Any]
        let expected: Tensor<Double> = try Fixture.tensor(grads["weight_hh_l0"])
        let config = RecurrentConfiguration(cell: .lstm, inputSize: 4, hiddenSize: 5, numLayers: 2)
        var generator = SeededGenerator(seed: 1)
        let network = try RecurrentNetwork<Double>(config, generator: &generator)
        for (key, value) in fixture["parameters"] as! [String: Any] {
            try network.parameters.setTensor(key, try Fixture.tensor(value))
        }
        network.parameters.zeroGradients()
        let chunks = fixture["chunks"] as! [[String: Any]]
        let x1: Tensor<Double> = try Fixture.tensor(chunks[0]["input"]),
            x2: Tensor<Double> = try Fixture.tensor(chunks[1]["input"])
        let d1: Tensor<Double> = try Fixture.tensor(chunks[0]["d_output"]),
            d2: Tensor<Double> = try Fixture.tensor(chunks[1]["d_output"])
        let x = try Tensor(shape: [6, 3, 4], scalars: x1.scalars + x2.scalars)
        _ = try network.forwardTensors(
            .dense(x),
            initialState: RecurrentState(h: try Fixture.tensor(fixture["h0"]), c: try Fixture.tensor(fixture["c0"])),
            generator: &generator)
        _ = try network.backwardTensors(
            outputGradient: try Tensor(shape: [6, 3, 5], scalars: d1.scalars + d2.scalars),
            finalStateGradient: RecurrentState(
                h: try Fixture.tensor(chunks[1]["d_h_n"]), c: try Fixture.tensor(chunks[1]["d_c_n"])))
        XCTAssertGreaterThan(maxDifference(try network.parameters.gradientTensor("weight_hh_l0"), expected), 1e-3)
    }
}
