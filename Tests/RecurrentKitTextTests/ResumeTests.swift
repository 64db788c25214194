import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Stopping after k updates and resuming from the checkpoint gives bit-identical training.
final class ResumeTests: XCTestCase {
    func options(_ sampling: SamplingStrategy, optimizer: OptimizerKind) -> TrainingOptions {
        var o = TrainingOptions()
        o.cell = .lstm
        o.hiddenSize = 12
        o.numLayers = 2
        o.dropout = 0.2  // dropout draws must resume exactly too
        o.initialization = .pytorch
        o.optimizer = optimizer
        o.learningRate = optimizer == .sgd ? 1 : 0.01
        o.momentum = optimizer == .sgd ? 0.5 : 0
        o.sampling = sampling
        o.epochs = 3
        o.sampleEvery = 0
        o.maxTokens = 3000
        o.batchSize = 8
        o.numSteps = 10
        return o
    }

    func losses(of trainer: LanguageModelTrainer, stopAfter: Int? = nil) throws -> (losses: [Double], finished: Bool) {
        try trainer.trainCollectingLosses(stopAfter: stopAfter)
    }

    func testResumeIsBitIdentical() throws {
        for (sampling, optimizer) in [(SamplingStrategy.sequential, OptimizerKind.adam), (.random, .sgd)] {
            let o = options(sampling, optimizer: optimizer)
            let reference = LanguageModelTrainer(unchecked: o)
            let (all, finished) = try losses(of: reference)
            XCTAssertTrue(finished)
            for k in [5, 36] {  // mid-epoch, and exactly at an epoch boundary... or past it
                let first = LanguageModelTrainer(unchecked: o)
                let (head, done) = try losses(of: first, stopAfter: k)
                XCTAssertFalse(done)
                XCTAssertEqual(head.count, k)
                let bytes = try first.checkpoint().serialized()
                let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(bytes))
                XCTAssertEqual(resumed.step, k)
                let (tail, resumedDone) = try losses(of: resumed)
                XCTAssertTrue(resumedDone)
                XCTAssertEqual(head + tail, all, "\(sampling) \(optimizer) stopped after \(k)")
                XCTAssertEqual(resumed.history.map(\.trainPerplexity), reference.history.map(\.trainPerplexity))
                for e in reference.model.parameters.entries {
                    XCTAssertEqual(
                        try resumed.model.parameters.tensor(e.name), try reference.model.parameters.tensor(e.name),
                        e.name)
                }
            }
        }
    }

    func testProjectedLSTMWithoutBiasesTrainsAndResumes() throws {
        var o = options(.sequential, optimizer: .adam)
        o.projectionSize = 5
        o.recurrentBias = false
        o.epochs = 1
        let reference = LanguageModelTrainer(unchecked: o)
        let (all, _) = try losses(of: reference)
        XCTAssertEqual(reference.model.configuration.projectionSize, 5)
        XCTAssertFalse(reference.model.configuration.bias)
        XCTAssertTrue(reference.model.parameters.entries.contains { $0.name == "rnn.weight_hr_l1" })
        XCTAssertFalse(reference.model.parameters.entries.contains { $0.name.hasPrefix("rnn.bias") })
        XCTAssertLessThan(all.last!, all.first!)
        let first = LanguageModelTrainer(unchecked: o)
        let (head, _) = try losses(of: first, stopAfter: 7)
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try first.checkpoint().serialized()))
        XCTAssertEqual(resumed.options.projectionSize, 5)
        let (tail, _) = try losses(of: resumed)
        XCTAssertEqual(head + tail, all)
        // Default options keep writing the metadata they always wrote (no new keys).
        let plain = String(decoding: try JSONEncoder().encode(options(.sequential, optimizer: .adam)), as: UTF8.self)
        XCTAssertFalse(plain.contains("projectionSize") || plain.contains("recurrentBias"))
        var bad = o
        bad.cell = .gru
        XCTAssertThrowsError(try bad.validate())
        bad = o
        bad.projectionSize = 12
        XCTAssertThrowsError(try bad.validate())
    }

    /// A run saved between epochs resumes, and resumes exactly, whatever its epochs' lengths: d2l's random offset gives
    /// some epochs one minibatch more, and a first epoch of m + 1 followed by one of m made the trainer refuse the
    /// run's own checkpoint ("its counters do not agree"; found by Scripts/fuzz, #30).
    func testResumesBetweenEpochsOfDifferentLengths() throws {
        var longerFirst = 0
        for seed in 0..<12 {
            // 302 tokens in 2 rows of 5 steps: offsets 0 and 1 give 30 minibatches, larger ones 29.
            var o = options(.sequential, optimizer: .sgd)
            (o.seed, o.hiddenSize, o.numLayers, o.dropout, o.maxTokens, o.batchSize, o.numSteps) = (
                UInt64(seed), 4, 1, 0, 302, 2, 5
            )
            let reference = LanguageModelTrainer(unchecked: o)
            let (all, _) = try losses(of: reference)
            let first = LanguageModelTrainer(unchecked: o)
            var epochs = 0
            try first.train(progress: { if case .epoch = $0 { epochs += 1 } }, shouldStop: { epochs >= 1 })
            let m = first.minibatchesPerEpoch
            if first.step == m + 1 && first.data.batchCount(epoch: 1) == m { longerFirst += 1 }
            let resumed = try LanguageModelTrainer(
                resumingFrom: try Checkpoint.parse(try first.checkpoint().serialized()))
            XCTAssertEqual(resumed.step, first.step, "seed \(seed)")
            let (tail, done) = try losses(of: resumed)
            XCTAssertTrue(done)
            XCTAssertEqual(Array(all.suffix(tail.count)), tail, "seed \(seed)")
            XCTAssertEqual(first.step + tail.count, all.count, "seed \(seed)")
        }
        XCTAssertGreaterThan(longerFirst, 0, "some seed gives a first epoch one minibatch longer than the second")
    }

    func testNonFiniteLossStopsOrSkips() throws {
        var o = options(.sequential, optimizer: .sgd)
        o.learningRate = 1e30  // an unbounded ReLU RNN diverges within a few updates
        o.cell = .rnnReLU
        o.clip = 0
        o.epochs = 2
        XCTAssertThrowsError(try LanguageModelTrainer(unchecked: o).train()) { error in
            XCTAssertTrue("\(error)".contains("at update"), "\(error)")
        }
        o.skipNonFinite = true
        o.learningRate = 0.1
        let trainer = LanguageModelTrainer(unchecked: o)
        // every loss is NaN now: every update is skipped and counted
        trainer.model.parameters.values[trainer.model.parameters.entry(named: "output.bias")!.offset] = .nan
        var skipped = 0
        try trainer.train(progress: { if case .step(let s) = $0, s.skipped { skipped += 1 } })
        XCTAssertEqual(trainer.skippedSteps, 2 * trainer.minibatchesPerEpoch)
        XCTAssertEqual(trainer.skippedSteps, skipped)
        XCTAssertEqual(trainer.step, 0)
    }
}

extension LanguageModelTrainer {
    convenience init(unchecked options: TrainingOptions) { try! self.init(options: options) }

    /// Trains (stopping once `stopAfter` updates are done, when given) and returns every update's loss.
    func trainCollectingLosses(stopAfter: Int? = nil) throws -> (losses: [Double], finished: Bool) {
        var losses: [Double] = []
        let finished = try train(
            progress: { if case .step(let s) = $0 { losses.append(s.loss) } },
            shouldStop: { stopAfter.map { self.step >= $0 } ?? false })
        return (losses, finished)
    }
}
