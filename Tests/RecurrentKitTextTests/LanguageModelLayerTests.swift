import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// The language model as a Layer, d2l's minibatches as a BatchSource, and the character-model trainer as a
/// configuration of the generic Trainer.
final class LanguageModelLayerTests: XCTestCase {
    private func model<Scalar: RecurrentScalar>(
        _: Scalar.Type, cell: CellKind = .lstm, seed: UInt64 = 3
    ) throws -> LanguageModel<Scalar> {
        var generator = SeededGenerator(seed: seed)
        return try LanguageModel<Scalar>(
            LanguageModelConfiguration(vocabularySize: 7, cell: cell, hiddenSize: 5, numLayers: 2, embeddingSize: 4),
            generator: &generator)
    }

    /// The Layer path (forward, NextTokenLoss, backward) gives the fused loss path's loss and gradients bit for bit.
    func testLayerPathEqualsTheFusedLossBitForBit() throws {
        for cell in [CellKind.rnnTanh, .gru, .lstm] {
            let (T, B) = (4, 3)
            let tokens = (0..<(T * B)).map { ($0 * 5 + 1) % 7 }, targets = (0..<(T * B)).map { ($0 * 3 + 2) % 7 }
            let a = try model(Float.self, cell: cell), b = try model(Float.self, cell: cell)
            var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9)
            a.parameters.zeroGradients()
            let fused = try a.loss(inputs: tokens, targets: targets, steps: T, batch: B, training: true, generator: &g1)
            b.parameters.zeroGradients()
            let (logits, record) = try b.forward(SequenceBatch(tokens: tokens, steps: T, batch: B), generator: &g2)
            XCTAssertEqual(logits.shape, [T, B, 7])
            let (loss, dLogits) = try NextTokenLoss<Float>()(logits, targets)
            let dInput = try b.backward(record, outputGradient: dLogits)
            XCTAssertNil(dInput.input)
            XCTAssertNil(dInput.initialState, "no initial state given: no state gradient")
            XCTAssertEqual(loss.bitPattern, fused.bitPattern, "\(cell)")
            XCTAssertEqual(
                bits(a.parameters.gradients, a.parameters.count), bits(b.parameters.gradients, b.parameters.count),
                "\(cell)")
        }
    }

    /// dL/dh0 and dL/dc0 of an explicit initial state, and every parameter gradient, by central differences (Double),
    /// with a loss on the last step only.
    func testInitialStateAndParameterGradientsMatchFiniteDifferences() throws {
        let m = try model(Double.self, cell: .lstm)
        let (T, B, L, H) = (3, 2, 2, 5)
        let tokens = [1, 4, 2, 0, 6, 3]
        var g = SeededGenerator(seed: 5)
        let h0 = try Tensor<Double>(shape: [L, B, H], scalars: (0..<(L * B * H)).map { _ in g.nextUnit() - 0.5 })
        let c0 = try Tensor<Double>(shape: [L, B, H], scalars: (0..<(L * B * H)).map { _ in g.nextUnit() - 0.5 })
        // Loss: weighted sum of the last step's logits only.
        let weights = (0..<(B * 7)).map { Double($0 % 5) - 2 }
        func loss(_ h: Tensor<Double>, _ c: Tensor<Double>) throws -> Double {
            var unused = SeededGenerator(seed: 0)
            let logits = try m.forward(
                SequenceBatch(tokens: tokens, steps: T, batch: B, initialState: RecurrentState(h: h, c: c)),
                generator: &unused
            ).output
            return zip(logits.scalars[((T - 1) * B * 7)...], weights).map { $0 * $1 }.reduce(0, +)
        }
        m.parameters.zeroGradients()
        var unused = SeededGenerator(seed: 0)
        let (logits, record) = try m.forward(
            SequenceBatch(tokens: tokens, steps: T, batch: B, initialState: RecurrentState(h: h0, c: c0)),
            generator: &unused)
        var dLogits = Tensor<Double>(zeros: logits.shape)
        for i in weights.indices { dLogits.scalars[(T - 1) * B * 7 + i] = weights[i] }
        let analytic = try m.backward(record, outputGradient: dLogits)
        let dh0 = try XCTUnwrap(analytic.initialState?.h), dc0 = try XCTUnwrap(analytic.initialState?.c)
        let parameterGradients = Array(UnsafeBufferPointer(start: m.parameters.gradients, count: m.parameters.count))
        let eps = 1e-6
        for i in 0..<(L * B * H) {
            var up = h0, down = h0
            up.scalars[i] += eps; down.scalars[i] -= eps
            XCTAssertEqual(dh0.scalars[i], (try loss(up, c0) - loss(down, c0)) / (2 * eps), accuracy: 1e-7, "dh0[\(i)]")
            var cu = c0, cd = c0
            cu.scalars[i] += eps; cd.scalars[i] -= eps
            XCTAssertEqual(dc0.scalars[i], (try loss(h0, cu) - loss(h0, cd)) / (2 * eps), accuracy: 1e-7, "dc0[\(i)]")
        }
        for i in stride(from: 0, to: m.parameters.count, by: 7) {
            let saved = m.parameters.values[i]
            m.parameters.values[i] = saved + eps
            let plus = try loss(h0, c0)
            m.parameters.values[i] = saved - eps
            let minus = try loss(h0, c0)
            m.parameters.values[i] = saved
            XCTAssertEqual(parameterGradients[i], (plus - minus) / (2 * eps), accuracy: 1e-7, "parameter \(i)")
        }
    }

    func testLayerInputErrorsAreOneLine() throws {
        let m = try model(Float.self)
        var g = SeededGenerator(seed: 0)
        XCTAssertThrowsError(try m.forward(SequenceBatch(Tensor<Float>(zeros: [2, 1, 7])), generator: &g)) {
            XCTAssertEqual(
                "\($0)", "a language model reads token indices (SequenceBatch(tokens:steps:batch:)), not dense features"
            )
        }
        XCTAssertThrowsError(
            try m.forward(SequenceBatch(tokens: [0, 1], steps: 2, batch: 1, lengths: [1]), generator: &g))
        XCTAssertThrowsError(try m.forward(SequenceBatch(tokens: [0, 9], steps: 2, batch: 1), generator: &g)) {
            XCTAssertTrue("\($0)".contains("token 9"), "\($0)")
        }
    }

    /// Batch k of epoch e is the same whatever was asked before, and a source positioned at a later epoch's start
    /// continues the same stream.
    func testTokenStreamBatchesArePureFunctionsOfThePosition() throws {
        let tokens = (0..<2000).map { ($0 * 7 + $0 / 13) % 11 }
        for sampling in [SamplingStrategy.sequential, .random] {
            let a = try TokenStreamBatches<Float>(
                tokens: tokens, batchSize: 4, steps: 9, sampling: sampling, generator: SeededGenerator(seed: 8))
            let b = try TokenStreamBatches<Float>(
                tokens: tokens, batchSize: 4, steps: 9, sampling: sampling, generator: SeededGenerator(seed: 8))
            let late = try b.batch(epoch: 3, index: 2)
            let early = try b.batch(epoch: 0, index: 1)
            XCTAssertEqual(try a.batch(epoch: 0, index: 1).target, early.target)
            XCTAssertEqual(try a.batch(epoch: 3, index: 2).target, late.target)
            XCTAssertEqual(late.count, 36)
            XCTAssertEqual(late.resetsState, sampling == .random)
            XCTAssertTrue(try a.batch(epoch: 1, index: 0).resetsState)
            let counts = (0..<6).map { a.batchCount(epoch: $0) }
            XCTAssertTrue(counts.allSatisfy { $0 == a.batchesPerEpoch || $0 == a.batchesPerEpoch + 1 }, "\(counts)")
            let c = try TokenStreamBatches<Float>(
                tokens: tokens, batchSize: 4, steps: 9, sampling: sampling, generator: SeededGenerator(seed: 0))
            c.position(epoch: 3, generator: try a.generator(atStartOf: 3))
            XCTAssertEqual(try c.batch(epoch: 3, index: 2).target, late.target)
            XCTAssertEqual(try c.batch(epoch: 4, index: 0).target, try a.batch(epoch: 4, index: 0).target)
            XCTAssertThrowsError(try c.batch(epoch: 2, index: 0))
            let shard = try BatchShard(rank: 1, processCount: 2, globalBatch: 4)
            let rows = try a.batch(epoch: 3, index: 2, shard: shard)
            XCTAssertEqual(rows.count, 18)
            XCTAssertEqual(rows.target, (0..<9).flatMap { t in late.target[(t * 4 + 2)..<(t * 4 + 4)] })
        }
    }

    /// The character-model trainer is the generic Trainer configured: built by hand from the public API, the same
    /// run gives the same weights bit for bit (sequential sampling carries the state; dropout from one stream).
    func testHandBuiltTrainerEqualsLanguageModelTrainer() throws {
        var o = TrainingPreset.d2lRNN.options
        (o.cell, o.hiddenSize, o.numLayers, o.dropout, o.epochs, o.sampleEvery) = (.gru, 16, 2, 0.2, 2, 0)
        (o.maxTokens, o.clip, o.sampling, o.bptt) = (3000, 1, .sequential, .truncated)
        let reference = try LanguageModelTrainer(options: o)
        try reference.train()

        let corpus = try LanguageModelTrainer.prepareCorpus(o)
        var generator = SeededGenerator(seed: o.seed)
        let model = try LanguageModel<Float>(
            LanguageModelConfiguration(
                vocabularySize: corpus.vocabulary.count, cell: .gru, hiddenSize: 16,
                numLayers: 2, dropout: 0.2),
            initialization: o.initialization, generator: &generator)
        let text = try TokenStreamBatches<Float>(
            tokens: corpus.trainTokens, batchSize: o.batchSize, steps: o.numSteps, sampling: .sequential,
            generator: SeededGenerator(seed: generator.next()))
        let loss = NextTokenLoss<Float>()
        let trainer = try Trainer(
            model: model, optimizer: try SGD(learningRate: o.learningRate), data: text,
            options: TrainerOptions(epochs: 2, clip: 1, seed: generator.next(), randomStream: .continuous)
        ) { try loss($0, $1) }
        try trainer.train()
        XCTAssertEqual(
            bits(model.parameters.values, model.parameters.count),
            bits(reference.model.parameters.values, reference.model.parameters.count))
        XCTAssertEqual(
            trainer.history.map { perplexity(meanCrossEntropy: $0.trainingLoss) },
            reference.history.map(\.trainPerplexity))
    }

    /// A generic trainer of a stateful model saves in the middle of an epoch (its carried state and random stream
    /// included) and between epochs, and resumes bit-identically from either.
    func testGenericTrainerOfAStatefulModelResumesExactly() throws {
        let tokens = (0..<1500).map { ($0 * 7 + $0 / 13) % 11 }
        func make() throws -> Trainer<LanguageModel<Float>, TokenStreamBatches<Float>> {
            var generator = SeededGenerator(seed: 1)
            let model = try LanguageModel<Float>(
                LanguageModelConfiguration(vocabularySize: 11, cell: .lstm, hiddenSize: 8, numLayers: 2, dropout: 0.3),
                generator: &generator)
            let text = try TokenStreamBatches<Float>(
                tokens: tokens, batchSize: 4, steps: 10, sampling: .sequential, generator: SeededGenerator(seed: 2))
            let loss = NextTokenLoss<Float>()
            return try Trainer(
                model: model, optimizer: try Adam(learningRate: 0.01), data: text,
                options: TrainerOptions(epochs: 3, clip: 1, seed: 4, randomStream: .continuous)
            ) { try loss($0, $1) }
        }
        let whole = try make()
        try whole.train()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stateful-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for (name, stop) in [
            ("mid-epoch", { (t: Trainer<LanguageModel<Float>, TokenStreamBatches<Float>>) in t.step >= 5 }),
            ("between epochs", { $0.position.epoch == 1 && $0.position.batch == 0 }),
        ] {
            let path = folder + "/\(name).safetensors"
            let first = try make()
            try first.train(shouldStop: { stop(first) })
            XCTAssertEqual(first.position.batch > 0, name == "mid-epoch", name)
            XCTAssertEqual(first.model.isCarryingState, true, name)
            try first.save(to: path)
            let file = try SafetensorsFile(bytes: try readFileBytes(path))
            XCTAssertEqual(file.tensors["_trainer.state.h"] != nil, name == "mid-epoch", name)
            XCTAssertEqual(file.tensors["_trainer.state.c"]?.shape, name == "mid-epoch" ? [2, 4, 8] : nil, name)
            let second = try make()
            try second.restore(from: path)
            XCTAssertEqual(second.streamGenerator, first.streamGenerator, name)
            XCTAssertEqual(second.model.carriedState, name == "mid-epoch" ? first.model.carriedState : nil, name)
            try second.train()
            XCTAssertEqual(
                bits(second.model.parameters.values, second.model.parameters.count),
                bits(whole.model.parameters.values, whole.model.parameters.count), name)
        }
        // A carried state that no run writes is refused by name, and the trainer is left as it was.
        var file = try SafetensorsFile(bytes: try readFileBytes(folder + "/mid-epoch.safetensors"))
        let hostile = folder + "/hostile.safetensors"
        for (tensor, fragment) in [
            (Tensor<Float>(zeros: [2, 4, 7]), "_trainer.state.h"),
            (Tensor<Float>(shape: [2, 4, 8], generating: { .nan }), "NaN"),
        ] {
            try file.add("_trainer.state.h", tensor)
            try writeFileAtomically(try file.serialized(), to: hostile)
            let fresh = try make()
            XCTAssertThrowsError(try fresh.restore(from: hostile)) {
                XCTAssertTrue("\($0)".contains(fragment), "\($0)")
            }
            XCTAssertNil(fresh.model.carriedState)
            XCTAssertEqual(fresh.step, 0)
        }
        // The state API round trip, and a hostile random stream.
        let state = whole.state
        let third = try make()
        try third.restore(state: state)
        XCTAssertEqual(third.state, state)
        var bad = state
        bad.streamGenerator = ["0", "0", "0", "0"]
        XCTAssertThrowsError(try third.restore(state: bad)) {
            XCTAssertTrue("\($0)".contains("random stream"), "\($0)")
        }
    }
}

private func bits(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [UInt32] {
    UnsafeBufferPointer(start: p, count: n).map(\.bitPattern)
}
