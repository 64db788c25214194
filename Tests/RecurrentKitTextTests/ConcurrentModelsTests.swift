import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Two models computing at the same time share the process's kernel pool: both results stay exact.
final class ConcurrentModelsTests: XCTestCase {
    /// Gradients of one forward/backward of a model large enough for the pool (products and element-wise split).
    static func gradients(seed: UInt64) throws -> [Float] {
        var g = SeededGenerator(seed: seed)
        let model = try LanguageModel<Float>(
            .init(
                vocabularySize: 30, cell: seed % 2 == 0 ? .lstm : .gru, hiddenSize: 96, numLayers: 2,
                embeddingSize: 32), generator: &g)
        let tokens = (0..<(12 * 64)).map { _ in g.nextInt(below: 30) }
        model.parameters.zeroGradients()
        _ = try model.loss(
            inputs: tokens, targets: tokens.reversed(), steps: 12, batch: 64, training: false, generator: &g)
        return Array(UnsafeBufferPointer(start: model.parameters.gradients, count: model.parameters.count))
    }

    func testTwoModelsAtOnceGiveTheirSerialResults() throws {
        let saved = Kernels.threadCount
        defer { Kernels.threadCount = saved }
        Kernels.threadCount = 2
        let expected = [try Self.gradients(seed: 1), try Self.gradients(seed: 2)]
        final class Results: @unchecked Sendable { var values: [[Float]] = [[], []]; var errors: [String] = [] }
        for _ in 0..<2 {
            let results = Results()
            let group = DispatchGroup()
            for i in 0..<2 {
                group.enter()
                Thread {
                    defer { group.leave() }
                    do { results.values[i] = try ConcurrentModelsTests.gradients(seed: UInt64(i + 1)) } catch {
                        results.errors.append("\(error)")
                    }
                }.start()
            }
            group.wait()
            XCTAssertEqual(results.errors, [])
            XCTAssertEqual(results.values[0], expected[0], "model 1, bit for bit")
            XCTAssertEqual(results.values[1], expected[1], "model 2, bit for bit")
        }
    }
}
