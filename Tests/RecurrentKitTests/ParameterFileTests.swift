import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Any model's parameters and optimizer state save and load, so a user's own model resumes exactly.
final class ParameterFileTests: XCTestCase {
    /// An LSTM + Linear model in one store, as in Examples/SequenceRegression.
    func model(seed: UInt64) throws -> (ParameterStore<Float>, RecurrentNetwork<Float>, Linear<Float>) {
        var g = SeededGenerator(seed: seed)
        let config = RecurrentConfiguration(cell: .lstm, inputSize: 2, hiddenSize: 6, numLayers: 2)
        var layout = ParameterLayout()
        config.declareParameters(prefix: "lstm.", into: &layout)
        Linear<Float>.declareParameters(prefix: "head.", inputSize: 6, outputSize: 1, into: &layout)
        let store = ParameterStore<Float>(layout: layout)
        let lstm = try RecurrentNetwork(config, parameters: store, prefix: "lstm.")
        let head = try Linear(prefix: "head.", inputSize: 6, outputSize: 1, store: store)
        lstm.initialize(.pytorch, generator: &g)
        head.initialize(.pytorch, generator: &g)
        return (store, lstm, head)
    }

    func update(_ m: (ParameterStore<Float>, RecurrentNetwork<Float>, Linear<Float>), _ adam: Adam, step: Int) throws {
        var g = SeededGenerator(seed: UInt64(100 + step))
        let x = Tensor<Float>(shape: [5, 3, 2]) { Float(g.normal()) },
            y = Tensor<Float>(shape: [15, 1]) { Float(g.normal()) }
        m.0.zeroGradients()
        let (out, _) = try m.1.forwardTensors(.dense(x), generator: &g)
        let flat = try Tensor(shape: [15, 6], scalars: out.scalars)
        let (_, d) = try meanSquaredError(predictions: try m.2(flat), targets: y)
        let dOut = try m.2.backward(input: flat, outputGradient: d)
        _ = try m.1.backwardTensors(outputGradient: try Tensor(shape: [5, 3, 6], scalars: dOut.scalars))
        try adam.step(m.0)
    }

    func testSaveLoadResumesBitIdentically() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rk-params-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/model.safetensors"
        let a = try model(seed: 1), adamA = try Adam(learningRate: 0.01)
        for s in 0..<3 { try update(a, adamA, step: s) }
        try a.0.save(to: path, metadata: ["epoch": "3"], optimizer: adamA)
        let b = try model(seed: 2), adamB = try Adam(learningRate: 0.01)
        let metadata = try b.0.load(from: path, optimizer: adamB)
        XCTAssertEqual(metadata["epoch"], "3")
        XCTAssertEqual(adamB.stepCount, 3)
        for s in 3..<6 { try update(a, adamA, step: s); try update(b, adamB, step: s) }
        XCTAssertTrue(
            zip(
                UnsafeBufferPointer(start: a.0.values, count: a.0.count),
                UnsafeBufferPointer(start: b.0.values, count: b.0.count)
            ).allSatisfy { $0 == $1 })
    }

    func testInvalidFilesChangeNothing() throws {
        let a = try model(seed: 1)
        let bytes = try a.0.serialized()
        // A model of other sizes: a misshapen tensor is named, and the store is untouched.
        var layout = ParameterLayout()
        RecurrentConfiguration(cell: .lstm, inputSize: 2, hiddenSize: 7, numLayers: 2).declareParameters(
            prefix: "lstm.", into: &layout)
        Linear<Float>.declareParameters(prefix: "head.", inputSize: 7, outputSize: 1, into: &layout)
        let other = ParameterStore<Float>(layout: layout)
        XCTAssertThrowsError(try other.load(serialized: bytes)) {
            XCTAssertTrue("\($0)".contains("lstm.weight_ih_l0"), "\($0)")
        }
        XCTAssertTrue(UnsafeBufferPointer(start: other.values, count: other.count).allSatisfy { $0 == 0 })
        // Missing and extra names.
        var file = try SafetensorsFile(bytes: bytes)
        file.tensors["head.bias"] = nil
        XCTAssertThrowsError(try a.0.load(serialized: try file.serialized())) {
            XCTAssertTrue("\($0)".contains("missing"), "\($0)")
        }
        file = try SafetensorsFile(bytes: bytes)
        try file.add("decoder.weight", Tensor<Float>(zeros: [1]))
        XCTAssertThrowsError(try a.0.load(serialized: try file.serialized())) {
            XCTAssertTrue("\($0)".contains("unexpected"), "\($0)")
        }
        // No optimizer state where one is asked for; reserved metadata; non-finite values are never saved.
        XCTAssertThrowsError(try a.0.load(serialized: bytes, optimizer: try Adam()))
        XCTAssertThrowsError(try a.0.serialized(metadata: ["format": "x"]))
        a.0.values[0] = .nan
        XCTAssertThrowsError(try a.0.serialized())
        // Double stores write F64 and read F32 files.
        var doubleLayout = ParameterLayout()
        Linear<Double>.declareParameters(prefix: "head.", inputSize: 6, outputSize: 1, into: &doubleLayout)
        let d = ParameterStore<Double>(layout: doubleLayout)
        var g = SeededGenerator(seed: 3)
        try Linear(prefix: "head.", inputSize: 6, outputSize: 1, store: d).initialize(.pytorch, generator: &g)
        let copy = ParameterStore<Double>(layout: doubleLayout)
        try copy.load(serialized: try d.serialized())
        XCTAssertEqual(try copy.tensor("head.weight"), try d.tensor("head.weight"))
    }
}

/// A record pairs a backward with its own forward.
final class RecurrentRecordTests: XCTestCase {
    func testStaleAndForeignRecordsAreRefused() throws {
        var g = SeededGenerator(seed: 9)
        let config = RecurrentConfiguration(cell: .gru, inputSize: 3, hiddenSize: 4, numLayers: 2)
        let net = try RecurrentNetwork<Double>(config, generator: &g),
            other = try RecurrentNetwork<Double>(config, generator: &g)
        let x = Tensor<Double>(shape: [5, 2, 3]) { g.normal() }
        let record = try net(.dense(x), generator: &g)
        XCTAssertEqual(try record.output, try net.outputTensor())
        XCTAssertEqual(try record.finalState, try net.finalState())
        let dOut = Tensor<Double>(shape: [5, 2, 4]) { g.normal() }
        // Same gradients as the unchecked pair.
        net.parameters.zeroGradients()
        let checked = try net.backward(record, outputGradient: dOut)
        let viaRecord = Array(UnsafeBufferPointer(start: net.parameters.gradients, count: net.parameters.count))
        net.parameters.zeroGradients()
        _ = try net.forwardTensors(.dense(x), generator: &g)
        let plain = try net.backwardTensors(outputGradient: dOut)
        XCTAssertEqual(
            viaRecord, Array(UnsafeBufferPointer(start: net.parameters.gradients, count: net.parameters.count)))
        XCTAssertEqual(checked.inputGradient, plain.inputGradient)
        // A forward in between makes the record stale (its backward and its accessors throw); a record of another
        // network is foreign.
        _ = try net(.dense(x), generator: &g)
        XCTAssertThrowsError(try net.backward(record, outputGradient: dOut)) {
            XCTAssertTrue("\($0)".contains("stale"), "\($0)")
        }
        XCTAssertThrowsError(try record.output) { XCTAssertTrue("\($0)".contains("stale"), "\($0)") }
        XCTAssertThrowsError(try record.withUnsafeOutput { _ in }) { XCTAssertTrue("\($0)".contains("stale"), "\($0)") }
        XCTAssertThrowsError(
            try dOut.scalars.withUnsafeBufferPointer { try net.backward(record, outputGradient: $0.baseAddress!) })
        let foreign = try other(.dense(x), generator: &g)
        XCTAssertThrowsError(try net.backward(foreign, outputGradient: dOut)) {
            XCTAssertTrue("\($0)".contains("another network"), "\($0)")
        }
    }
}

/// Batch-first input and output are the time-major computation, transposed at the boundary.
final class SequenceLayoutTests: XCTestCase {
    func testBatchFirstMatchesTimeMajor() throws {
        for cell in [CellKind.lstm, .gru, .rnnTanh] {
            var g = SeededGenerator(seed: 31)
            let net = try RecurrentNetwork<Double>(
                .init(cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 2), generator: &g)
            let (T, B) = (5, 2)
            let x = Tensor<Double>(shape: [T, B, 3]) { g.normal() },
                dOut = Tensor<Double>(shape: [T, B, 4]) { g.normal() }
            net.parameters.zeroGradients()
            let tm = try net(.dense(x), generator: &g)
            let tmOutput = try tm.output
            let tmGrad = try net.backward(tm, outputGradient: dOut)
            let tmParams = Array(UnsafeBufferPointer(start: net.parameters.gradients, count: net.parameters.count))
            net.parameters.zeroGradients()
            let bf = try net(.dense(try x.swappingFirstTwoAxes()), layout: .batchFirst, generator: &g)
            XCTAssertEqual(try bf.output.shape, [B, T, 4])
            XCTAssertEqual(try bf.output.swappingFirstTwoAxes(), tmOutput)
            let bfGrad = try net.backward(bf, outputGradient: try dOut.swappingFirstTwoAxes())
            XCTAssertEqual(try bfGrad.inputGradient!.swappingFirstTwoAxes(), tmGrad.inputGradient!)
            XCTAssertEqual(
                Array(UnsafeBufferPointer(start: net.parameters.gradients, count: net.parameters.count)), tmParams)
            XCTAssertEqual(bfGrad.initialStateGradient.h, tmGrad.initialStateGradient.h)
            // One-hot tokens (B, T) batch-first.
            let tokens = (0..<(T * B)).map { _ in g.nextInt(below: 3) }
            let a = try net(.oneHot(tokens: tokens, steps: T, batch: B), generator: &g).output
            let transposed = (0..<(T * B)).map { tokens[($0 % T) * B + $0 / T] }  // (B, T) from (T, B)
            let b = try net(.oneHot(tokens: transposed, steps: T, batch: B), layout: .batchFirst, generator: &g).output
            XCTAssertEqual(try b.swappingFirstTwoAxes(), a)
        }
    }
}
