import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Finite differences in Double on every parameter, input and initial state of every cell.
final class GradientCheckTests: XCTestCase {
    func assertPasses(
        _ options: GradientCheck.Options, tolerance: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let results = try GradientCheck.run(options)
        let expectedNames = Set(
            ["input", "h0"] + (options.configuration.cell.hasCellState ? ["c0"] : [])
                + (1..<max(options.chunks, 1)).map { "input_chunk\($0 + 1)" })
        XCTAssertTrue(expectedNames.isSubset(of: Set(results.map(\.name))), "missing tensors", file: file, line: line)
        let perLayer =
            ((options.configuration.bias ? 4 : 2) + (options.configuration.projectionSize > 0 ? 1 : 0))
            * options.configuration.directions
        XCTAssertEqual(
            results.count, perLayer * options.configuration.numLayers + expectedNames.count, file: file, line: line)
        for r in results {
            XCTAssertLessThanOrEqual(
                r.worstRelativeError, tolerance,
                "\(options.configuration.cell) \(r.name) at \(r.worstIndex): analytic \(r.analytic) numeric "
                    + "\(r.numeric)",
                file: file, line: line)
            XCTAssertGreaterThan(r.count, 0, file: file, line: line)
        }
    }

    func testEveryCellTwoLayersAllSteps() throws {
        for cell in CellKind.allCases {
            try assertPasses(
                .init(
                    configuration: .init(cell: cell, inputSize: 4, hiddenSize: 5, numLayers: 2), batch: 3, steps: 5,
                    seed: 11))
        }
    }

    func testEveryCellLastStepOnly() throws {
        for cell in CellKind.allCases {
            try assertPasses(
                .init(
                    configuration: .init(cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 2), batch: 2, steps: 4,
                    lastStepOnly: true, seed: 12))
        }
    }

    func testEveryCellWithoutBiases() throws {
        for cell in CellKind.allCases {
            try assertPasses(
                .init(
                    configuration: .init(cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 2, bias: false), batch: 2,
                    steps: 3,
                    chunks: 2, lastStepOnly: true, seed: 14))
        }
    }

    func testEveryCellBidirectionalWithDropoutAndChunks() throws {
        for cell in CellKind.allCases {
            try assertPasses(
                .init(
                    configuration: .init(
                        cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.3, bidirectional: true),
                    batch: 2, steps: 3, chunks: 2, lastStepOnly: true, training: true, seed: 15))
            try assertPasses(
                .init(
                    configuration: .init(
                        cell: cell, inputSize: 4, hiddenSize: 3, numLayers: 2, bias: false, bidirectional: true),
                    batch: 3, steps: 4, seed: 16))
        }
    }

    func testEveryCellVariableLengthBatches() throws {
        for cell in CellKind.allCases {
            var options = GradientCheck.Options(
                configuration: .init(cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 2), batch: 4, steps: 5,
                chunks: 2, seed: 17)
            options.lengths = [3, 5, 1, 4]
            try assertPasses(options)
            options = .init(
                configuration: .init(
                    cell: cell, inputSize: 4, hiddenSize: 3, numLayers: 2, dropout: 0.3, bidirectional: true),
                batch: 3, steps: 4, lastStepOnly: true, training: true, seed: 18)
            options.lengths = [2, 4, 1]
            try assertPasses(options)
        }
    }

    func testLSTMProjection() throws {
        // proj_size 2 < H 4: weight_hr and every other tensor; with dropout, bidirectional, packed and in chunks.
        try assertPasses(
            .init(
                configuration: .init(cell: .lstm, inputSize: 3, hiddenSize: 4, numLayers: 2, projectionSize: 2),
                batch: 3, steps: 4, chunks: 2, seed: 19), tolerance: 1e-6)
        var options = GradientCheck.Options(
            configuration: .init(
                cell: .lstm, inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.3,
                bidirectional: true, projectionSize: 3),
            batch: 3, steps: 4, lastStepOnly: true, training: true, seed: 20)
        options.lengths = [4, 1, 3]
        try assertPasses(options)
    }

    func testEveryCellTruncatedChunks() throws {
        for cell in CellKind.allCases {
            try assertPasses(
                .init(
                    configuration: .init(cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 2), batch: 2, steps: 3,
                    chunks: 2, seed: 13))
        }
    }

    func testDropoutBetweenLayers() throws {
        for cell in [CellKind.lstm, .gru, .rnnTanh] {
            try assertPasses(
                .init(
                    configuration: .init(cell: cell, inputSize: 3, hiddenSize: 4, numLayers: 3, dropout: 0.3),
                    batch: 2, steps: 3, training: true, seed: 14))
        }
    }

    func testD2LInitialisationAndSingleLayer() throws {
        try assertPasses(
            .init(
                configuration: .init(cell: .gru, inputSize: 6, hiddenSize: 2, numLayers: 1), batch: 1, steps: 7,
                seed: 15, initialization: .d2l))
    }

    func testCheckDetectsABrokenGradient() throws {
        // A check that cannot fail proves nothing: corrupt one analytic gradient element and it must be flagged.
        var options = GradientCheck.Options(
            configuration: .init(cell: .lstm, inputSize: 3, hiddenSize: 4, numLayers: 1), batch: 2, steps: 3, seed: 16)
        XCTAssertTrue(try GradientCheck.run(options).allSatisfy { $0.worstRelativeError < 1e-6 })
        options.corruptGradient = ("weight_hh_l0", 7)
        let results = try GradientCheck.run(options)
        let corrupted = try XCTUnwrap(results.first { $0.name == "weight_hh_l0" })
        XCTAssertGreaterThan(corrupted.worstRelativeError, 1e-4)
        XCTAssertEqual(corrupted.worstIndex, [1, 3])
    }

    func testReLUKinksAreCheckedOneSidedNotFailed() throws {
        // Seeds 0, 3 and 8 of the CLI's default ReLU check straddle a kink with the five-point stencil (1.8e-3, up to
        // 5.2e-1 before one-sided differences); every element is now compared or counted.
        var oneSided = 0
        for seed: UInt64 in [0, 3, 8] {
            let options = GradientCheck.Options(
                configuration: .init(cell: .rnnReLU, inputSize: 4, hiddenSize: 5, numLayers: 2),
                batch: 3, steps: 6, seed: seed)
            try assertPasses(options)
            let results = try GradientCheck.run(options)
            oneSided += results.reduce(0) { $0 + $1.oneSidedCount }
            XCTAssertEqual(results.reduce(0) { $0 + $1.skippedCount }, 0)
        }
        XCTAssertGreaterThan(oneSided, 0, "these seeds do cross kinks")
        // Smooth cells never take the one-sided path.
        let lstm = try GradientCheck.run(
            .init(
                configuration: .init(cell: .lstm, inputSize: 4, hiddenSize: 5, numLayers: 2), batch: 3, steps: 6,
                seed: 3))
        XCTAssertTrue(lstm.allSatisfy { $0.oneSidedCount == 0 && $0.skippedCount == 0 })
    }

    func testKinkOnBothSidesIsSkippedAndCounted() throws {
        // A step so large that many stencils cross kinks on both sides: those elements are skipped and counted.
        let options = GradientCheck.Options(
            configuration: .init(cell: .rnnReLU, inputSize: 4, hiddenSize: 5, numLayers: 2),
            batch: 3, steps: 6, step: 0.3, seed: 0)
        let results = try GradientCheck.run(options)
        XCTAssertGreaterThan(results.reduce(0) { $0 + $1.skippedCount }, 0)
        XCTAssertGreaterThan(results.reduce(0) { $0 + $1.oneSidedCount }, 0)
    }

    func testCorruptedReLUGradientStillFails() throws {
        for seed: UInt64 in [0, 3, 8] {
            var options = GradientCheck.Options(
                configuration: .init(cell: .rnnReLU, inputSize: 4, hiddenSize: 5, numLayers: 2),
                batch: 3, steps: 6, seed: seed)
            options.corruption = .init(tensor: "weight_ih_l0", relativeError: 1e-3)
            let results = try GradientCheck.run(options)
            let corrupted = try XCTUnwrap(results.first { $0.name == "weight_ih_l0" })
            XCTAssertGreaterThan(corrupted.worstRelativeError, 5e-4, "seed \(seed)")
            XCTAssertTrue(results.filter { $0.name != "weight_ih_l0" }.allSatisfy { $0.worstRelativeError < 1e-6 })
        }
        var options = GradientCheck.Options(configuration: .init(cell: .rnnReLU, inputSize: 4, hiddenSize: 5))
        options.corruption = .init(tensor: "weight_xx", relativeError: 1e-3)
        XCTAssertThrowsError(try GradientCheck.run(options))
    }
}
