import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Data-parallel training in one process: N trainers on N threads joined by an in-memory ``GradientReducer`` run the
/// same protocol as N MPI processes (the MPI transport itself is tested under mpirun in DistributedTrainingTests).
final class DataParallelTests: XCTestCase {
    func testShardsSplitTheBatchEvenly() throws {
        for (B, N) in [(32, 1), (32, 2), (32, 3), (5, 5), (7, 3), (64, 7)] {
            let shards = try (0..<N).map { try BatchShard(rank: $0, processCount: N, globalBatch: B) }
            XCTAssertEqual(
                shards.map(\.rows.lowerBound), [0] + shards.dropLast().map(\.rows.upperBound),
                "contiguous, in rank order")
            XCTAssertEqual(shards.last?.rows.upperBound, B)
            XCTAssertLessThanOrEqual(Set(shards.map(\.count)).count, 2)
            XCTAssertEqual(shards.map(\.count).max()! - shards.map(\.count).min()!, B % N == 0 ? 0 : 1)
        }
        XCTAssertThrowsError(try BatchShard(rank: 0, processCount: 3, globalBatch: 2)) { error in
            XCTAssertEqual(
                (error as? RecurrentKitError)?.message,
                "3 processes need a batch of at least 3 rows (one per process); the batch has 2")
        }
        XCTAssertThrowsError(try BatchShard(rank: 3, processCount: 3, globalBatch: 8))
        XCTAssertThrowsError(try BatchShard(rank: 0, processCount: 0, globalBatch: 8))
        var local: [Int] = []
        try BatchShard(rank: 1, processCount: 2, globalBatch: 3).gather([0, 1, 2, 10, 11, 12], steps: 2, into: &local)
        XCTAssertEqual(local, [2, 12])  // rows 0...1 go to rank 0 (the first B mod N ranks get one more)
        try BatchShard(rank: 0, processCount: 2, globalBatch: 3).gather([0, 1, 2, 10, 11, 12], steps: 2, into: &local)
        XCTAssertEqual(local, [0, 1, 10, 11])
    }

    /// The gradient of the whole batch is the sum over shards of B_r/B times each shard's gradient, with dropout
    /// (masks drawn for the whole batch, the shard's rows kept), randomized truncation, a carried initial state and
    /// 3 layers; each shard's final state is its rows of the whole batch's.
    func testShardGradientsSumToTheWholeBatchGradient() throws {
        let V = 11, T = 19, B = 5, L = 3, H = 6
        let configuration = LanguageModelConfiguration(
            vocabularySize: V, cell: .lstm, hiddenSize: H, numLayers: L, dropout: 0.4, embeddingSize: 4)
        var g = SeededGenerator(seed: 3)
        let whole = try LanguageModel<Double>(configuration, initialization: .pytorch, generator: &g)
        let inputs = (0..<(T * B)).map { _ in g.nextInt(below: V) },
            targets = (0..<(T * B)).map { _ in g.nextInt(below: V) }
        let h = try Tensor<Double>(shape: [L, B, H], scalars: (0..<(L * B * H)).map { _ in g.uniform(-1, 1) })
        let c = try Tensor<Double>(shape: [L, B, H], scalars: (0..<(L * B * H)).map { _ in g.uniform(-1, 1) })
        let truncation = BackwardTruncation.randomized(continueProbability: 0.8, seed: 5)
        whole.parameters.zeroGradients()
        var drops = SeededGenerator(seed: 99)
        let loss = try whole.loss(
            inputs: inputs, targets: targets, steps: T, batch: B, state: RecurrentState(h: h, c: c),
            training: true, truncation: truncation, generator: &drops)
        let expected = Array(UnsafeBufferPointer(start: whole.parameters.gradients, count: whole.parameters.count))
        let final = try whole.finalState()
        func rows(_ t: Tensor<Double>, _ shard: BatchShard) throws -> Tensor<Double> {  // (L, B, H) -> (L, B_r, H)
            var values: [Double] = []
            shard.gather(t.scalars, steps: L, width: H, into: &values)
            return try Tensor(shape: [L, shard.count, H], scalars: values)
        }
        for N in [2, 3, 5] {
            var sum = [Double](repeating: 0, count: expected.count), lossSum = 0.0
            for r in 0..<N {
                let shard = try BatchShard(rank: r, processCount: N, globalBatch: B)
                let model = try LanguageModel<Double>(configuration)
                try model.parameters.copyValues(from: whole.parameters)
                model.recurrent.dropoutShard = shard
                var shardInputs: [Int] = [], shardTargets: [Int] = []
                shard.gather(inputs, steps: T, into: &shardInputs)
                shard.gather(targets, steps: T, into: &shardTargets)
                model.parameters.zeroGradients()
                var drops = SeededGenerator(seed: 99)
                let shardLoss = try model.loss(
                    inputs: shardInputs, targets: shardTargets, steps: T, batch: shard.count,
                    state: RecurrentState(h: try rows(h, shard), c: try rows(c, shard)),
                    training: true, truncation: truncation, generator: &drops)
                let weight = Double(shard.count) / Double(B)
                model.parameters.scaleGradients(by: weight)
                for i in 0..<sum.count { sum[i] += model.parameters.gradients[i] }
                lossSum += shardLoss * weight
                let shardFinal = try model.finalState()
                // The products run over fewer rows, so a row's sums may round differently in the last bit.
                for (name, a, b) in [
                    ("h", shardFinal.h, try rows(final.h, shard)), ("c", shardFinal.c!, try rows(final.c!, shard)),
                ] {
                    XCTAssertLessThan(
                        zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()!, 1e-14, "N \(N) rank \(r): final \(name)")
                }
            }
            XCTAssertEqual(lossSum, loss, accuracy: 1e-13 * abs(loss), "N \(N)")
            let worst = zip(sum, expected).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-13, "N \(N): gradient")
        }
    }

    /// N trainers on N threads give the one-process run: losses within 1e-5 relative, weights within 1e-5, and
    /// the processes' weights bit-identical to each other (checked by every collective checkpoint).
    func testThreadedJobMatchesOneProcess() throws {
        for (cell, dropout, optimizer) in [(CellKind.rnnTanh, 0.0, OptimizerKind.sgd), (.lstm, 0.3, .adam)] {
            var o = TrainingOptions()
            o.cell = cell
            o.hiddenSize = 16
            o.numLayers = cell == .lstm ? 2 : 1
            o.dropout = dropout
            o.optimizer = optimizer
            o.learningRate = optimizer == .sgd ? 1 : 0.01
            o.maxTokens = 20 * 8 * 10 + 11  // 20 updates
            o.batchSize = 8
            o.numSteps = 10
            o.epochs = 1
            o.sampleEvery = 0
            let single = try LanguageModelTrainer(options: o)
            let singleLosses = try single.trainCollectingLosses().losses
            XCTAssertEqual(singleLosses.count, 20)
            for N in [2, 3] {
                let runs = try ThreadedJob.run(processes: N) { reducer in
                    let trainer = try LanguageModelTrainer(options: o, reducer: reducer)
                    let losses = try trainer.trainCollectingLosses().losses
                    let checkpoint = try trainer.checkpoint()  // collective: checks the replicas agree
                    return (losses, checkpoint)
                }
                for (rank, run) in runs.enumerated() {
                    XCTAssertEqual(run.0, runs[0].0, "rank \(rank) saw the same losses")
                    for e in single.model.parameters.entries {
                        XCTAssertEqual(
                            try run.1.model.parameters.tensor(e.name), try runs[0].1.model.parameters.tensor(e.name),
                            "replicas: \(e.name)")
                    }
                }
                for (a, b) in zip(runs[0].0, singleLosses) {
                    XCTAssertEqual(a, b, accuracy: 1e-5 * b, "\(cell) N \(N)")
                }
                for e in single.model.parameters.entries {
                    let a = try single.model.parameters.tensor(e.name).scalars,
                        b = try runs[0].1.model.parameters.tensor(e.name).scalars
                    XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max() ?? 0, 1e-5, "\(cell) N \(N): \(e.name)")
                }
            }
        }
    }

    /// A checkpoint of an N-process job holds the whole batch's carried state: resuming with the same N continues
    /// bit-identically, with another N it continues the same run (within the summation order).
    func testJobCheckpointResumesWithAnyProcessCount() throws {
        var o = TrainingOptions()
        o.cell = .gru
        o.hiddenSize = 12
        o.numLayers = 2
        o.dropout = 0.2
        o.optimizer = .adam
        o.learningRate = 0.01
        o.maxTokens = 12 * 6 * 10 + 11
        o.batchSize = 6
        o.numSteps = 10
        o.epochs = 2
        o.sampleEvery = 0
        func train(_ trainer: LanguageModelTrainer, stopAfter: Int? = nil) throws -> [Double] {
            try trainer.trainCollectingLosses(stopAfter: stopAfter).losses
        }
        let uninterrupted = try ThreadedJob.run(processes: 2) { reducer in
            let trainer = try LanguageModelTrainer(options: o, reducer: reducer)
            return (try train(trainer), try trainer.checkpoint())
        }[0]
        let saved = try ThreadedJob.run(processes: 2) { reducer in
            let trainer = try LanguageModelTrainer(options: o, reducer: reducer)
            return (try train(trainer, stopAfter: 7), try trainer.checkpoint().serialized())
        }[0]
        XCTAssertEqual(saved.0, Array(uninterrupted.0.prefix(7)))
        for N in [2, 3, 1] {
            let resumed = try ThreadedJob.run(processes: N) { reducer in
                let trainer = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(saved.1), reducer: reducer)
                return (try train(trainer), try trainer.checkpoint())
            }[0]
            XCTAssertEqual(resumed.0.count, uninterrupted.0.count - 7)
            for (e, entry) in uninterrupted.1.model.parameters.entries.enumerated() {
                let a = try uninterrupted.1.model.parameters.tensor(entry.name).scalars,
                    b = try resumed.1.model.parameters.tensor(entry.name).scalars
                if N == 2 {
                    XCTAssertEqual(a, b, "same N: bit-identical (\(entry.name))")
                } else {
                    XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max() ?? 0, 1e-5, "N \(N) entry \(e)")
                }
            }
        }
    }

    /// More processes than rows: every process gets the one-line error, before any collective call.
    func testMoreProcessesThanRowsIsRefused() throws {
        var o = TrainingOptions()
        o.batchSize = 2
        o.maxTokens = 2000
        XCTAssertThrowsError(
            try ThreadedJob.run(processes: 3) { reducer in try LanguageModelTrainer(options: o, reducer: reducer) }
        ) { error in
            XCTAssertEqual(
                (error as? RecurrentKitError)?.message,
                "3 processes need a batch of at least 3 rows (one per process); the batch has 2")
        }
    }
}
