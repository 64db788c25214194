import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Validation in every mode, the best checkpoint, and early stopping.
final class ValidationTests: XCTestCase {
    func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.corpus = EmbeddedCorpus.tinyShakespeare.rawValue
        o.textMode = .raw
        o.maxTokens = 3000
        o.cell = .gru
        o.hiddenSize = 16
        o.initialization = .pytorch
        o.optimizer = .adam
        o.learningRate = 0.01
        o.epochs = 3
        o.sampleEvery = 0
        o.batchSize = 8
        o.numSteps = 16
        return o
    }

    func testD2LModeSplitsOnlyWhenAsked() throws {
        let text = String(repeating: "the time machine by h g wells ", count: 50)
        let plain = try PreparedCorpus.prepare(text: text, mode: .d2l)
        XCTAssertTrue(plain.validationTokens.isEmpty)  // d2l's figures train on everything
        let split = try PreparedCorpus.prepare(text: text, mode: .d2l, validationFraction: 0.1)
        XCTAssertEqual(Array(split.trainTokens) + Array(split.validationTokens), Array(plain.trainTokens))
        XCTAssertEqual(split.trainTokens.count, Int((Double(plain.trainTokens.count) * 0.9).rounded(.down)))
        XCTAssertEqual(
            try PreparedCorpus.prepare(text: text, mode: .raw).validationTokens.count,
            try PreparedCorpus.prepare(text: text, mode: .raw, validationFraction: 0.1).validationTokens.count)
    }

    func testBestCheckpointIsTheLowestMeasuredAndEvaluationChangesNothing() throws {
        var o = options()
        o.evaluateEvery = 3
        let trainer = try LanguageModelTrainer(options: o)
        var reports: [ValidationReport] = [], best: Checkpoint? = nil
        try trainer.train(afterValidation: { t, report in
            reports.append(report)
            if report.isBest { best = try Checkpoint.parse(try t.checkpoint().serialized()) }
        })
        XCTAssertGreaterThan(reports.count, 3)
        let lowest = reports.map(\.loss).min()!
        XCTAssertEqual(trainer.bestValidationLoss, lowest)
        XCTAssertEqual(reports.filter(\.isBest).last?.loss, lowest)
        // The saved best model gives exactly the lowest recorded loss.
        let again = try Evaluation.meanCrossEntropy(
            model: try XCTUnwrap(best).model, tokens: trainer.corpus.validationTokens,
            batchSize: o.batchSize, numSteps: o.numSteps)
        XCTAssertEqual(again, lowest)
        // Measuring draws nothing from the training streams: the weights equal a run without measurements.
        o.evaluateEvery = nil
        let plain = try LanguageModelTrainer(options: o)
        try plain.train()
        XCTAssertEqual(
            Array(UnsafeBufferPointer(start: plain.model.parameters.values, count: plain.model.parameters.count)),
            Array(UnsafeBufferPointer(start: trainer.model.parameters.values, count: trainer.model.parameters.count)))
    }

    func testEarlyStoppingStopsWhereExpectedAndStaysStopped() throws {
        var o = options()
        o.learningRate = 0  // nothing improves after the first measurement
        o.evaluateEvery = 1
        o.earlyStopPatience = 2
        let trainer = try LanguageModelTrainer(options: o)
        var reports: [ValidationReport] = []
        XCTAssertTrue(try trainer.train(afterValidation: { _, r in reports.append(r) }))
        XCTAssertTrue(trainer.stoppedEarly)
        XCTAssertTrue(trainer.isFinished)
        XCTAssertEqual(trainer.step, 3)
        XCTAssertEqual(reports.map(\.isBest), [true, false, false])
        XCTAssertEqual(reports.map(\.sinceBest), [0, 1, 2])
        let resumed = try LanguageModelTrainer(
            resumingFrom: try Checkpoint.parse(try trainer.checkpoint().serialized()))
        XCTAssertTrue(resumed.isFinished)
        XCTAssertEqual(resumed.bestValidationLoss, trainer.bestValidationLoss)
        XCTAssertTrue(try resumed.train())
        XCTAssertEqual(resumed.step, 3)
        for bad in [0, -1] {
            var b = o
            b.earlyStopPatience = bad
            XCTAssertThrowsError(try b.validate())
            b = o
            b.evaluateEvery = bad
            XCTAssertThrowsError(try b.validate())
        }
    }
}
