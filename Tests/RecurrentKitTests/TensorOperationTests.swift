import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// The tensor operations and their adjoints against PyTorch float64 (Scripts/fixtures/composition.py), exactly: they
/// only move values, so outputs and gradients must be bit-identical.
final class TensorOperationTests: XCTestCase {
    private func op(
        _ name: String
    ) throws -> (inputs: [Tensor<Double>], outputs: [Tensor<Double>], dOut: [Tensor<Double>], dIn: [Tensor<Double>]) {
        let ops = try Fixture.load("composition/composition.json")["ops"] as! [String: Any]
        let c = ops[name] as! [String: Any]
        func list(_ key: String) throws -> [Tensor<Double>] { try (c[key] as! [Any]).map { try Fixture.tensor($0) } }
        return (try list("inputs"), try list("outputs"), try list("output_gradients"), try list("input_gradients"))
    }

    /// Checks `forward` against the fixture's outputs and `adjoint(dOut)` against its input gradients, exactly.
    private func check(
        _ name: String, forward: ([Tensor<Double>]) throws -> [Tensor<Double>],
        adjoint: ([Tensor<Double>], [Tensor<Double>]) throws -> [Tensor<Double>], file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let c = try op(name)
        let outputs = try forward(c.inputs)
        XCTAssertEqual(outputs, c.outputs, "\(name) forward", file: file, line: line)
        XCTAssertEqual(try adjoint(c.dOut, c.inputs), c.dIn, "\(name) adjoint", file: file, line: line)
    }

    func testIndexingAndSlicingMatchPyTorch() throws {
        try check(
            "index_last", forward: { [try $0[0][-1]] },
            adjoint: { d, x in [try Tensor.indexAdjoint(d[0], at: -1, shape: x[0].shape)] })
        try check(
            "index_1", forward: { [try $0[0][1]] },
            adjoint: { d, x in [try Tensor.indexAdjoint(d[0], at: 1, shape: x[0].shape)] })
        try check(
            "slice_1_3", forward: { [try $0[0][1..<3]] },
            adjoint: { d, x in
                var g = Tensor<Double>(zeros: x[0].shape)
                for (k, piece) in try d[0].unstacked().enumerated() {
                    g = try g.adding(Tensor.indexAdjoint(piece, at: 1 + k, shape: x[0].shape))
                }
                return [g]
            })
    }

    func testReshapeAndTransposeMatchPyTorch() throws {
        try check(
            "reshape", forward: { [try $0[0].reshaped([6, -1])] }, adjoint: { d, x in [try d[0].reshaped(x[0].shape)] })
        try check(
            "transpose_0_1", forward: { [try $0[0].transposed(0, 1)] }, adjoint: { d, _ in [try d[0].transposed(0, 1)] }
        )
        try check(
            "transpose_0_2", forward: { [try $0[0].transposed(0, -1)] },
            adjoint: { d, _ in [try d[0].transposed(2, 0)] })
        let x = try op("transpose_0_1").inputs[0]
        XCTAssertEqual(try x.converted(from: .timeMajor, to: .batchFirst), try x.transposed(0, 1))
        XCTAssertEqual(try x.converted(from: .batchFirst, to: .batchFirst), x)
    }

    func testJoiningAndSplittingMatchPyTorch() throws {
        try check(
            "cat_axis1", forward: { [try Tensor.concatenated($0, along: 1)] },
            adjoint: { d, x in try d[0].split(sizes: x.map { $0.shape[1] }, along: 1) })
        try check(
            "cat_axis0", forward: { [try Tensor.concatenated($0, along: -2)] },
            adjoint: { d, x in try d[0].split(sizes: x.map { $0.shape[0] }, along: 0) })
        try check(
            "split_axis2", forward: { try $0[0].split(sizes: [1, 3, 1], along: -1) },
            adjoint: { d, _ in [try Tensor.concatenated(d, along: 2)] })
        try check(
            "stack_axis1", forward: { [try Tensor.stacked($0, along: 1)] },
            adjoint: { d, _ in try d[0].unstacked(along: 1) })
        try check(
            "unbind_axis1", forward: { try $0[0].unstacked(along: 1) },
            adjoint: { d, _ in [try Tensor.stacked(d, along: 1)] })
        XCTAssertEqual(
            try Tensor<Double>(zeros: [2, 6]).split(parts: 3, along: 1).map(\.shape), [[2, 2], [2, 2], [2, 2]])
    }

    func testPaddingAndLastValidStepsMatchPyTorch() throws {
        try check(
            "pad_time_major", forward: { [try Tensor.padded($0).batch] },
            adjoint: { d, x in try d[0].unpadded(lengths: x.map { $0.shape[0] }) })
        try check(
            "pad_batch_first", forward: { [try Tensor.padded($0, layout: .batchFirst, padding: -1.5).batch] },
            adjoint: { d, x in try d[0].unpadded(lengths: x.map { $0.shape[0] }, layout: .batchFirst) })
        XCTAssertEqual(try Tensor.padded(try op("pad_time_major").inputs).lengths, [3, 5, 1])
        let lengths = [3, 5, 1, 4]
        for layout in [SequenceLayout.timeMajor, .batchFirst] {
            try check(
                layout == .timeMajor ? "last_valid_time_major" : "last_valid_batch_first",
                forward: { [try $0[0].lastValidSteps(lengths: lengths, layout: layout)] },
                adjoint: { d, x in
                    [try Tensor.lastValidStepsAdjoint(d[0], lengths: lengths, shape: x[0].shape, layout: layout)]
                })
        }
    }

    func testArgmaxMatchesPyTorchIncludingTies() throws {
        let c = try Fixture.load("composition/composition.json")["argmax"] as! [String: Any]
        let logits: Tensor<Double> = try Fixture.tensor(c["input"])
        XCTAssertEqual(try logits.argmax(along: 1), c["axis1"] as! [Int])
        XCTAssertEqual(try logits.argmax(along: -1), c["axis1"] as! [Int])
        XCTAssertEqual(try logits.argmax(along: 0), c["axis0"] as! [Int])
        let nan = try Tensor<Float>(shape: [1, 3], scalars: [1, .nan, 5])
        XCTAssertEqual(try nan.argmax(along: 1), [1], "NaN counts as the largest, as in PyTorch")
    }

    /// The adjoints as finite differences in Double: d/dx of sum(op(x) * dOut).
    func testAdjointsMatchFiniteDifferences() throws {
        var g = SeededGenerator(seed: 5)
        let x = Tensor<Double>(shape: [4, 3, 2]) { g.normal() }
        let lengths = [2, 4, 1]
        let cases: [(String, (Tensor<Double>) throws -> Tensor<Double>, (Tensor<Double>) throws -> Tensor<Double>)] = [
            ("index", { try $0[-2] }, { try Tensor.indexAdjoint($0, at: -2, shape: x.shape) }),
            (
                "lastValidSteps", { try $0.lastValidSteps(lengths: lengths) },
                { try Tensor.lastValidStepsAdjoint($0, lengths: lengths, shape: x.shape) }
            ),
            (
                "concatenated", { try Tensor.concatenated([$0, $0[1..<2]], along: 0) },
                { d in
                    let parts = try d.split(sizes: [4, 1], along: 0)
                    return try parts[0].adding(Tensor.indexAdjoint(try parts[1][0], at: 1, shape: x.shape))
                }
            ),
        ]
        for (name, f, adjoint) in cases {
            let dOut = Tensor<Double>(shape: try f(x).shape) { g.normal() }
            func loss(_ y: Tensor<Double>) throws -> Double {
                zip(try f(y).scalars, dOut.scalars).reduce(0) { $0 + $1.0 * $1.1 }
            }
            var numeric = Tensor<Double>(zeros: x.shape)
            for i in x.scalars.indices {
                var (p, m) = (x, x)
                p.scalars[i] += 1e-6
                m.scalars[i] -= 1e-6
                numeric.scalars[i] = (try loss(p) - loss(m)) / 2e-6
            }
            assertClose(try adjoint(dOut), numeric, tolerance: 1e-9, name)
        }
    }

    func testShapeErrorsAreOneLine() throws {
        let x = Tensor<Float>(zeros: [3, 2])
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message { try x[3] }, "index: index 3 is outside [-3, 3) for shape [3, 2]")
        XCTAssertEqual(message { try x[1..<4] }, "slice 1..<4 is outside the leading axis of shape [3, 2]")
        XCTAssertEqual(message { try x.reshaped([4, -1]) }, "cannot reshape [3, 2] (6 elements) to [4, -1]")
        XCTAssertEqual(
            message { try x.reshaped([-1, -1]) },
            "cannot reshape [3, 2] to [-1, -1]: at most one dimension may be -1, the others >= 0")
        XCTAssertEqual(message { try x.transposed(0, 2) }, "transpose: axis 2 is outside [-2, 2) for shape [3, 2]")
        XCTAssertEqual(
            message { try Tensor.concatenated([x, Tensor(zeros: [3, 3])], along: 0) },
            "concatenated: tensor 1 has shape [3, 3], incompatible with [3, 2] along axis 0")
        XCTAssertEqual(
            message { try x.split(sizes: [1, 1], along: 0) },
            "split: sizes [1, 1] do not add up to dimension 3 of shape [3, 2] along axis 0")
        XCTAssertEqual(
            message { try Tensor.stacked([x, Tensor(zeros: [2, 3])]) },
            "stacked: tensor 1 has shape [2, 3], expected [3, 2]")
        XCTAssertEqual(
            message { try x.lastValidSteps(lengths: [1, 4]) }, "lastValidSteps: length 4 of row 1 is outside [1, 3]")
        XCTAssertEqual(message { try Tensor<Float>.padded([]) }, "padded: no sequences")
        XCTAssertEqual(
            message { try Tensor<Float>(zeros: []).argmax(along: 0) }, "argmax: a tensor of shape [] has no axis")
    }
}

extension Tensor {
    /// Element-wise sum (tests only).
    func adding(_ other: Tensor) throws -> Tensor {
        try other.requireShape(shape, name: "added tensor")
        var out = self
        for i in out.scalars.indices { out.scalars[i] += other.scalars[i] }
        return out
    }
}
