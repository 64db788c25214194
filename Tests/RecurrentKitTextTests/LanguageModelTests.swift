import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Training a small character model, generation, evaluation and checkpoints.
final class LanguageModelTests: XCTestCase {
    func smallOptions() -> TrainingOptions {
        var o = TrainingPreset.d2lRNN.options  // d2l 8.5 data: first 10,000 tokens of The Time Machine, B 32, T 35
        o.cell = .gru
        o.hiddenSize = 64
        o.initialization = .pytorch
        o.optimizer = .adam
        o.learningRate = 0.01
        o.epochs = 8
        o.sampleEvery = 0
        return o
    }

    func testSmallModelLearnsFarBelowVocabularySize() throws {
        let trainer = try LanguageModelTrainer(options: smallOptions())
        XCTAssertEqual(trainer.corpus.vocabulary.count, 28)
        XCTAssertEqual(trainer.minibatchesPerEpoch, 8)
        // An untrained model predicts close to uniformly: perplexity near the vocabulary size.
        let before = perplexity(
            meanCrossEntropy: try Evaluation.meanCrossEntropy(model: trainer.model, tokens: trainer.corpus.trainTokens))
        XCTAssertGreaterThan(before, 20)
        var epochs = 0
        XCTAssertTrue(try trainer.train(progress: { if case .epoch = $0 { epochs += 1 } }))
        let history = trainer.history
        XCTAssertEqual(epochs, 8)
        XCTAssertEqual(trainer.step, history.last!.step)
        let last = try XCTUnwrap(history.last)
        XCTAssertLessThan(last.trainPerplexity, 10, "8 epochs of a 64-unit GRU must fall far below 28")
        XCTAssertLessThan(last.trainPerplexity, history.first!.trainPerplexity)
        XCTAssertGreaterThan(last.tokensPerSecond, 0)
        let after = perplexity(
            meanCrossEntropy: try Evaluation.meanCrossEntropy(model: trainer.model, tokens: trainer.corpus.trainTokens))
        XCTAssertLessThan(after, 10)
    }

    func testTrainingIsDeterministicForASeed() throws {
        var o = smallOptions()
        o.epochs = 2
        o.hiddenSize = 16
        o.sampling = .random
        o.dropout = 0.1
        o.numLayers = 2
        func run(_ o: TrainingOptions) throws -> [EpochReport] {
            let t = try LanguageModelTrainer(options: o); try t.train(); return t.history
        }
        let a = try run(o), b = try run(o)
        XCTAssertEqual(a.map(\.trainPerplexity), b.map(\.trainPerplexity))
        o.seed = 1
        XCTAssertNotEqual(try run(o).map(\.trainPerplexity), a.map(\.trainPerplexity))
    }

    func testFullAndRandomizedBPTTUseWholeRows() throws {
        var o = smallOptions()
        o.hiddenSize = 16
        o.epochs = 3
        o.learningRate = 0.02
        for bptt in [BPTTStrategy.full, .randomized] {
            o.bptt = bptt
            let trainer = try LanguageModelTrainer(options: o)
            XCTAssertEqual(trainer.chunkLength, 9_999 / 33, "(N - 1) / (B + 1)")
            XCTAssertEqual(trainer.minibatchesPerEpoch, 1)
            try trainer.train()
            XCTAssertEqual(trainer.step, 3)
            XCTAssertLessThan(trainer.history.last!.trainPerplexity, trainer.history.first!.trainPerplexity, "\(bptt)")
        }
    }

    func testEvaluationPredictsEveryTokenExactly() throws {
        var g = SeededGenerator(seed: 4)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: 7, cell: .lstm, hiddenSize: 5, numLayers: 2), generator: &g)
        let tokens = (0..<50).map { _ in g.nextInt(below: 7) }
        /// Sum of cross-entropies of one stream from a zero state.
        func streamLoss(_ stream: ArraySlice<Int>) throws -> Double {
            let s = Array(stream)
            let logits = try model.logits(inputs: Array(s.dropLast()), steps: s.count - 1, batch: 1)
            let (loss, _) = try softmaxCrossEntropy(
                logits: try Tensor(shape: [s.count - 1, 7], scalars: logits.scalars), targets: Array(s.dropFirst()))
            return loss * Double(s.count - 1)
        }
        // 49 predictions, batch 3, steps 4: rows of 16 predictions; the last one continues row 3.
        let expected = (try streamLoss(tokens[0...16]) + streamLoss(tokens[16...32]) + streamLoss(tokens[32...49])) / 49
        XCTAssertEqual(
            try Evaluation.meanCrossEntropy(model: model, tokens: TokenList(tokens), batchSize: 3, numSteps: 4),
            expected,
            accuracy: 1e-6)
        // One stream, any chunk length: the same number.
        let single = try streamLoss(tokens[0...49]) / 49
        XCTAssertEqual(
            try Evaluation.meanCrossEntropy(model: model, tokens: TokenList(tokens), batchSize: 1, numSteps: 7), single,
            accuracy: 1e-6)
        XCTAssertEqual(
            try Evaluation.meanCrossEntropy(model: model, tokens: TokenList(tokens), batchSize: 1, numSteps: 1000),
            single,
            accuracy: 1e-6)
        XCTAssertThrowsError(try Evaluation.meanCrossEntropy(model: model, tokens: [1], batchSize: 1, numSteps: 4))
    }

    func testPredictWarmsUpOnThePrefixThenGreedy() throws {
        var g = SeededGenerator(seed: 2)
        let model = try LanguageModel<Float>(.init(vocabularySize: 6, cell: .lstm, hiddenSize: 8), generator: &g)
        let prefix = [1, 2, 3]
        let out = try TextGenerator.generate(model: model, prefix: prefix, length: 5, decoding: .greedy, generator: &g)
        XCTAssertEqual(Array(out.prefix(3)), prefix)
        // Reference: feed the whole sequence step by step and take argmax each time.
        var state: RecurrentState<Float>? = nil
        var expected = [prefix[0]]
        for i in 0..<(prefix.count + 5 - 1) {
            let logits = try model.logits(inputs: [expected[i]], steps: 1, batch: 1, state: state)
            state = try model.finalState()
            if i + 1 < prefix.count { expected.append(prefix[i + 1]); continue }
            expected.append(logits.scalars.indices.max { logits.scalars[$0] < logits.scalars[$1] }!)
        }
        XCTAssertEqual(out, expected)
        // Seeded sampling is reproducible; top-1 sampling is greedy.
        var s1 = SeededGenerator(seed: 9), s2 = SeededGenerator(seed: 9)
        XCTAssertEqual(
            try TextGenerator.generate(
                model: model, prefix: prefix, length: 20, decoding: .sample(temperature: 0.8, topK: 3), generator: &s1),
            try TextGenerator.generate(
                model: model, prefix: prefix, length: 20, decoding: .sample(temperature: 0.8, topK: 3), generator: &s2))
        XCTAssertEqual(
            try TextGenerator.generate(
                model: model, prefix: prefix, length: 5, decoding: .sample(temperature: 1, topK: 1), generator: &s1),
            out)
        XCTAssertThrowsError(
            try TextGenerator.generate(model: model, prefix: [], length: 5, decoding: .greedy, generator: &g))
        XCTAssertThrowsError(
            try TextGenerator.generate(
                model: model, prefix: [1], length: 5, decoding: .sample(temperature: 0, topK: nil), generator: &g))
        XCTAssertThrowsError(
            try TextGenerator.generate(model: model, prefix: [7], length: 5, decoding: .greedy, generator: &g))
    }

    func testCheckpointRoundTripAndAtomicSave() throws {
        var o = smallOptions()
        o.epochs = 1
        o.embeddingSize = 12
        o.numLayers = 2
        o.cell = .lstm
        let trainer = try LanguageModelTrainer(options: o)
        try trainer.train()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/model.safetensors"
        try trainer.checkpoint().save(to: path)
        let loaded = try Checkpoint.load(from: path)
        XCTAssertEqual(loaded.model.configuration, trainer.model.configuration)
        XCTAssertEqual(loaded.vocabulary, trainer.corpus.vocabulary)
        XCTAssertEqual(
            Set(loaded.model.parameters.entries.map(\.name)),
            Set(
                ["embedding.weight", "output.weight", "output.bias"]
                    + (0..<2).flatMap { k in
                        ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map { "rnn.\($0)_l\(k)" }
                    }))
        for e in trainer.model.parameters.entries {
            XCTAssertEqual(
                try loaded.model.parameters.tensor(e.name), try trainer.model.parameters.tensor(e.name), e.name)
        }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: folder), ["model.safetensors"],
            "no temporary file left behind")
        // A model with NaN weights is never written over a good checkpoint.
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        loaded.model.parameters.values[0] = .nan
        XCTAssertThrowsError(try loaded.save(to: path)) { XCTAssertTrue("\($0)".contains("NaN")) }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), good)
        // An unwritable location fails cleanly.
        XCTAssertThrowsError(try trainer.checkpoint().save(to: folder + "/missing/model.safetensors"))
        XCTAssertThrowsError(try checkWritableLocation(folder + "/missing/model.safetensors")) {
            XCTAssertTrue("\($0)".contains("does not exist"))
        }
        // A disk too small for the checkpoints is reported before training starts.
        XCTAssertThrowsError(try checkWritableLocation(folder + "/model.safetensors", requiredBytes: Int.max / 2)) {
            XCTAssertTrue("\($0)".contains("not enough free space"), "\($0)")
        }
        XCTAssertNoThrow(try checkWritableLocation(folder + "/model.safetensors", requiredBytes: 1000))
    }

    func testCorruptCheckpointsGetErrors() throws {
        var g = SeededGenerator(seed: 3)
        let model = try LanguageModel<Float>(.init(vocabularySize: 5, cell: .gru, hiddenSize: 4), generator: &g)
        let vocabulary = try Vocabulary(tokens: ["<unk>", "a", "b", "c", "d"], mode: .d2l)
        let bytes = try Checkpoint(model: model, vocabulary: vocabulary).serialized()
        XCTAssertNoThrow(try Checkpoint.parse(bytes))
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("truncated header length", Array(bytes.prefix(5))),
            ("truncated data", Array(bytes.dropLast(3))),
            ("huge header length", [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0] + bytes.dropFirst(8)),
            ("not JSON", Array(bytes.prefix(8)) + Array(repeating: UInt8(ascii: "x"), count: bytes.count - 8)),
            ("extra bytes", bytes + [1, 2, 3, 4]),
        ]
        for (name, data) in cases {
            XCTAssertThrowsError(try Checkpoint.parse(data), name) { error in
                XCTAssertTrue(error is RecurrentKitError, "\(name): \(error)")
            }
        }
        // Seeded mutation fuzzing: every mutated or truncated file loads or fails with an error, never traps.
        var rng = SeededGenerator(seed: 42)
        var failures = 0
        for _ in 0..<10_000 {
            var mutated = bytes
            switch rng.nextInt(below: 3) {
            case 0: mutated = Array(mutated.prefix(rng.nextInt(below: mutated.count)))
            case 1:
                for _ in 0..<(1 + rng.nextInt(below: 4)) {
                    mutated[rng.nextInt(below: mutated.count)] = UInt8(rng.nextInt(below: 256))
                }
            default:
                let headerLength = Int(mutated[0]) | Int(mutated[1]) << 8
                mutated[8 + rng.nextInt(below: headerLength)] =
                    [UInt8(ascii: "9"), UInt8(ascii: "\""), UInt8(ascii: "-"), UInt8(ascii: "]")][rng.nextInt(below: 4)]
            }
            do { _ = try Checkpoint.parse(mutated) } catch { XCTAssertTrue(error is RecurrentKitError); failures += 1 }
        }
        XCTAssertGreaterThan(failures, 5000)
    }
}
