import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Row-parallel evaluation shared among the processes of a data-parallel job (threads joined by the in-memory reducer
/// stand in for MPI processes): every process gets the same figure, one process's up to Float rounding, also
/// when tokens remain after the last full row and when there are fewer rows than processes.
final class ShardedEvaluationTests: XCTestCase {
    func testShardedRowsGiveOneProcessFigure() throws {
        var g = SeededGenerator(seed: 4)
        let configuration = LanguageModelConfiguration(
            vocabularySize: 9, cell: .lstm, hiddenSize: 6, numLayers: 2, embeddingSize: 5)
        let reference = try LanguageModel<Float>(configuration, initialization: .pytorch, generator: &g)
        for (count, batch, steps) in [(1000, 8, 7), (1003, 5, 9), (40, 8, 35)] {
            let tokens = (0..<count).map { _ in g.nextInt(below: 9) }
            let one = try Evaluation.meanCrossEntropy(
                model: reference, tokens: TokenList(tokens), batchSize: batch, numSteps: steps)
            for processes in [2, 3] {
                let figures = try ThreadedJob.run(processes: processes) { reducer -> Double in
                    let model = try LanguageModel<Float>(configuration)
                    try model.parameters.copyValues(from: reference.parameters)
                    return try Evaluation.meanCrossEntropy(
                        model: model, tokens: TokenList(tokens), layout: .rows(batch: batch, steps: steps),
                        reducer: reducer)
                }
                XCTAssertEqual(
                    Set(figures).count, 1, "\(processes) processes, \(count) tokens: the same figure everywhere")
                XCTAssertEqual(
                    figures[0], one, accuracy: 1e-7 * max(1, abs(one)), "\(processes) processes, \(count) tokens")
            }
        }
    }
}
