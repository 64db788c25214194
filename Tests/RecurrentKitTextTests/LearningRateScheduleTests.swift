import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Learning-rate schedules: PyTorch's StepLR and nanoGPT's warm-up + cosine (Scripts/fixtures/schedules.py), what the
/// trainer's optimizer uses at each update, and bit-identical resume.
final class LearningRateScheduleTests: XCTestCase {
    func testSchedulesMatchPyTorch() throws {
        let fixture = try Fixture.load("schedules/schedules.json")
        let cases = try XCTUnwrap(fixture["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let base = (c["base"] as! NSNumber).doubleValue, rates = Fixture.doubles(c["rates"])
            let schedule: LearningRateSchedule, total: Int
            if c["kind"] as! String == "step" {
                schedule = .step(every: c["every"] as! Int, factor: (c["factor"] as! NSNumber).doubleValue)
                total = 0
            } else {
                schedule = .cosine(
                    warmup: c["warmup"] as! Int, minimumFactor: (c["minimum_factor"] as! NSNumber).doubleValue)
                total = c["total"] as! Int
            }
            try schedule.validate()
            XCTAssertEqual(rates.count, c["updates"] as! Int)
            for (u, expected) in rates.enumerated() {
                let rate = schedule.learningRate(base: base, update: u, totalUpdates: total)
                XCTAssertEqual(rate, expected, accuracy: 1e-12 * max(abs(expected), 1e-300), "\(schedule) update \(u)")
            }
        }
        XCTAssertEqual(LearningRateSchedule.constant.learningRate(base: 0.3, update: 1_000_000, totalUpdates: 1), 0.3)
        for bad in [
            LearningRateSchedule.step(every: 0, factor: 0.5), .step(every: 3, factor: 1.5),
            .step(every: 3, factor: .nan),
            .cosine(warmup: -1, minimumFactor: 0.1), .cosine(warmup: 3, minimumFactor: 2),
        ] {
            XCTAssertThrowsError(try bad.validate(), "\(bad)")
        }
    }

    func options(_ schedule: LearningRateSchedule?) -> TrainingOptions {
        var o = TrainingOptions()
        o.cell = .gru
        o.hiddenSize = 10
        o.initialization = .pytorch
        o.optimizer = .adam
        o.learningRate = 0.01
        o.learningRateSchedule = schedule
        o.epochs = 3
        o.sampleEvery = 0
        o.maxTokens = 2000
        o.batchSize = 8
        o.numSteps = 10
        return o
    }

    func testTrainerUsesTheScheduleAndResumesBitIdentically() throws {
        for schedule in [LearningRateSchedule.step(every: 4, factor: 0.5), .cosine(warmup: 3, minimumFactor: 0.1)] {
            let o = options(schedule)
            let reference = try LanguageModelTrainer(options: o)
            var rates: [Double] = [], losses: [Double] = []
            try reference.train(
                progress: { if case .step(let s) = $0 { losses.append(s.loss) } },
                afterStep: { rates.append($0.optimizer.learningRate) })
            let total = reference.scheduledUpdates
            XCTAssertEqual(total, 3 * reference.minibatchesPerEpoch)
            XCTAssertEqual(
                rates, (0..<rates.count).map { schedule.learningRate(base: 0.01, update: $0, totalUpdates: total) })
            XCTAssertEqual(reference.history.last?.learningRate, rates.last)
            // ends at its minimum
            if case .cosine = schedule { XCTAssertEqual(rates.last!, 0.001, accuracy: 1e-3 * 0.01) }

            let first = try LanguageModelTrainer(options: o)
            var head: [Double] = []
            try first.train(
                progress: { if case .step(let s) = $0 { head.append(s.loss) } }, shouldStop: { first.step >= 7 })
            let resumed = try LanguageModelTrainer(
                resumingFrom: try Checkpoint.parse(try first.checkpoint().serialized()))
            var tail: [Double] = []
            try resumed.train(progress: { if case .step(let s) = $0 { tail.append(s.loss) } })
            XCTAssertEqual(head + tail, losses, "\(schedule)")
            XCTAssertEqual(
                Array(
                    UnsafeBufferPointer(start: resumed.model.parameters.values, count: resumed.model.parameters.count)),
                Array(
                    UnsafeBufferPointer(
                        start: reference.model.parameters.values, count: reference.model.parameters.count)))
        }
    }

    func testTimeLimitFixesTheCosineLengthOnce() throws {
        var o = options(.cosine(warmup: 0, minimumFactor: 0))
        o.epochs = 1000
        o.timeLimitSeconds = 1
        let trainer = try LanguageModelTrainer(options: o)
        let planned = trainer.scheduledUpdates
        var rates: [Double] = []
        try trainer.train(afterStep: { rates.append($0.optimizer.learningRate) })
        // Fixed after the first updates, far below 1000 epochs' worth, and the run ends near the schedule's end.
        XCTAssertLessThan(trainer.scheduledUpdates, planned)
        XCTAssertGreaterThan(
            trainer.scheduledUpdates, LanguageModelTrainer.calibrationWarmUp + LanguageModelTrainer.calibrationUpdates)
        XCTAssertLessThan(rates.last!, 0.8 * 0.01, "the time-limited run should end well into the cosine")
        // The fixed length is in the checkpoint, so a resume keeps it.
        let resumed = try LanguageModelTrainer(
            resumingFrom: try Checkpoint.parse(try trainer.checkpoint().serialized()))
        XCTAssertEqual(resumed.scheduledUpdates, trainer.scheduledUpdates)
    }
}
