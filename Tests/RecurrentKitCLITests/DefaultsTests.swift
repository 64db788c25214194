import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Issue #27, "Defaults that do not surprise": a corpus is used whole unless a d2l preset (or --max-tokens) asks for
/// d2l's 10,000-token cut, and `rnn train` says what it trains and validates on; held-out evaluation reads the text as
/// one stream by default and says so beside the figure, while the trainer's validation stays row-parallel.
final class DefaultsTests: XCTestCase {
    /// The existing CLI helper (`CommandLineTests.run`, `write`), with its own temporary folder.
    var cli: CommandLineTests!

    override func setUpWithError() throws {
        #if canImport(ObjectiveC)
        cli = CommandLineTests()
        #else
        cli = CommandLineTests(name: "DefaultsTests.cli", testClosure: { _ in })
        #endif
        try cli.setUpWithError()
    }

    override func tearDown() { cli.tearDown() }

    /// The first 14,000 characters of tiny Shakespeare: longer than d2l's cut in every character mode.
    static let longText = String(EmbeddedCorpus.tinyShakespeare.text.unicodeScalars.prefix(14_000).map(Character.init))

    func writeLongText() -> String { cli.write("long.txt", Array(Self.longText.utf8)) }

    // MARK: - The library

    func testACorpusIsReadWholeByDefaultAndCutOnlyByTheD2LPresets() throws {
        XCTAssertNil(TrainingOptions().maxTokens)
        for preset in TrainingPreset.allCases {
            XCTAssertEqual(preset.options.maxTokens, preset.isD2L ? 10_000 : nil, preset.rawValue)
        }
        XCTAssertEqual(
            TrainingPreset.allCases.filter(\.isD2L), [.d2lRNN, .d2lRNNRandom, .d2lGRU, .d2lLSTM, .d2lDeepLSTM])
        let path = writeLongText()
        for mode in [TextMode.d2l, .raw] {
            let whole = try PreparedCorpus.prepare(text: Self.longText, mode: mode)
            let total = whole.trainTokens.count + whole.validationTokens.count
            XCTAssertGreaterThan(total, 10_000, "\(mode)")

            var own = TrainingOptions()
            own.corpus = path
            own.textMode = mode
            let byDefault = try LanguageModelTrainer(options: own).corpus
            XCTAssertEqual(
                byDefault.trainTokens.count + byDefault.validationTokens.count, total, "\(mode): the whole corpus")
            XCTAssertEqual(byDefault, whole)

            var d2l = TrainingPreset.d2lRNN.options
            d2l.corpus = path
            d2l.textMode = mode
            let cut = try LanguageModelTrainer(options: d2l).corpus
            XCTAssertEqual(cut.trainTokens.count + cut.validationTokens.count, 10_000, "\(mode): d2l's cut")
            // raw mode holds out the last 10% of what is read: 9,000 + 1,000.
            XCTAssertEqual(cut.trainTokens.count, mode == .raw ? 9_000 : 10_000)
        }
        // The d2l run itself is unchanged: the first 10,000 tokens of The Time Machine, 8 updates per epoch.
        let d2lRun = try LanguageModelTrainer(options: TrainingPreset.d2lRNN.options)
        XCTAssertEqual(d2lRun.corpus.trainTokens.count, 10_000)
        XCTAssertEqual(d2lRun.minibatchesPerEpoch, 8)
    }

    func testOptionsDecodeToTheCutTheirRunUsed() throws {
        // Checkpoints store the options as JSON: a cut is written, "whole corpus" (nil) is left out. Files of earlier
        // versions, whose default was 10,000, therefore hold "maxTokens": 10000 for a default run and no key for a
        // whole-corpus run, and both decode to what that run used.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let d2l = String(decoding: try encoder.encode(TrainingPreset.d2lRNN.options), as: UTF8.self)
        XCTAssertTrue(d2l.contains("\"maxTokens\":10000"), d2l)
        let whole = String(decoding: try encoder.encode(TrainingOptions()), as: UTF8.self)
        XCTAssertFalse(whole.contains("maxTokens"), whole)
        XCTAssertEqual(try JSONDecoder().decode(TrainingOptions.self, from: Data(d2l.utf8)).maxTokens, 10_000)
        XCTAssertNil(try JSONDecoder().decode(TrainingOptions.self, from: Data(whole.utf8)).maxTokens)
        // An explicit value of an old file, and an old default run's options with the key removed by hand.
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(d2l.utf8)) as? [String: Any])
        object["maxTokens"] = 600
        XCTAssertEqual(
            try JSONDecoder().decode(TrainingOptions.self, from: try JSONSerialization.data(withJSONObject: object))
                .maxTokens, 600)
        object["maxTokens"] = nil
        XCTAssertNil(
            try JSONDecoder().decode(TrainingOptions.self, from: try JSONSerialization.data(withJSONObject: object))
                .maxTokens)
    }

    /// A small character model trained for a few epochs (row-parallel validation on its last 10%).
    func smallTrainedModel() throws -> LanguageModelTrainer {
        var o = TrainingOptions()
        o.corpus = EmbeddedCorpus.tinyShakespeare.rawValue
        o.textMode = .raw
        o.maxTokens = 4000
        o.cell = .gru
        o.hiddenSize = 24
        o.initialization = .pytorch
        o.optimizer = .adam
        o.learningRate = 0.01
        o.epochs = 4
        o.sampleEvery = 0
        o.batchSize = 8
        o.numSteps = 16
        let trainer = try LanguageModelTrainer(options: o)
        try trainer.train()
        return trainer
    }

    func testEvaluationReadsOneStreamByDefaultAndTheTrainerValidatesRowParallel() throws {
        let trainer = try smallTrainedModel()
        let model = trainer.model, tokens = trainer.corpus.trainTokens
        let byDefault = try Evaluation.meanCrossEntropy(model: model, tokens: tokens)
        XCTAssertEqual(byDefault, try Evaluation.meanCrossEntropy(model: model, tokens: tokens, layout: .stream))
        // One stream is one row with the state carried through: the same computation as batch 1 (chunks of 1,000),
        // and any other chunk length changes only the rounding.
        XCTAssertEqual(
            byDefault,
            try Evaluation.meanCrossEntropy(
                model: model, tokens: tokens, batchSize: 1, numSteps: EvaluationLayout.streamChunkSteps))
        XCTAssertEqual(
            byDefault,
            try Evaluation.meanCrossEntropy(model: model, tokens: tokens, layout: .rows(batch: 1, steps: 35)),
            accuracy: 1e-5)
        // Row-parallel: 32 rows that each start from a zero state predict their first tokens without context (here
        // 0.0047 nats higher; rounding differences are about 1e-6).
        let rows = try Evaluation.meanCrossEntropy(model: model, tokens: tokens, layout: .rows(batch: 32, steps: 35))
        XCTAssertEqual(rows, try Evaluation.meanCrossEntropy(model: model, tokens: tokens, batchSize: 32, numSteps: 35))
        XCTAssertGreaterThan(rows - byDefault, 1e-3, "row-parallel \(rows) vs one stream \(byDefault)")

        // The trainer's periodic validation stays row-parallel with the run's batch and steps.
        XCTAssertEqual(trainer.validationLayout, .rows(batch: 8, steps: 16))
        let validation = trainer.corpus.validationTokens
        let lastReported = try XCTUnwrap(trainer.history.last?.validationPerplexity)
        XCTAssertEqual(
            lastReported,
            perplexity(
                meanCrossEntropy: try Evaluation.meanCrossEntropy(
                    model: model, tokens: validation,
                    layout: trainer.validationLayout)))
        XCTAssertEqual(
            trainer.validationLayout.description(tokenCount: validation.count),
            "row-parallel (8 rows x 16 steps, each from a zero state)")
    }

    func testLayoutsDescribeThemselves() {
        XCTAssertEqual(
            EvaluationLayout.stream.description(tokenCount: 1_114_394),
            "one stream, state carried over 1,114,394 tokens")
        XCTAssertEqual(
            EvaluationLayout.stream.description(tokenCount: 999), "one stream, state carried over 999 tokens")
        XCTAssertEqual(
            EvaluationLayout.rows(batch: 32, steps: 35).description(tokenCount: 100_000),
            "row-parallel (32 rows x 35 steps, each from a zero state)")
        // The rows actually read: a short text gets fewer (each row has at least `steps` predictions); one row is the
        // stream.
        XCTAssertEqual(
            EvaluationLayout.rows(batch: 32, steps: 35).description(tokenCount: 351),
            "row-parallel (10 rows x 35 steps, each from a zero state)")
        XCTAssertEqual(
            EvaluationLayout.rows(batch: 32, steps: 35).description(tokenCount: 50),
            "one stream, state carried over 50 tokens")
        XCTAssertEqual(
            EvaluationLayout.rows(batch: 1, steps: 35).description(tokenCount: 12_345),
            "one stream, state carried over 12,345 tokens")
        XCTAssertEqual(
            EvaluationLayout.rows(batch: 32, steps: 35).description,
            "row-parallel (32 rows x 35 steps, each from a zero state)")
        XCTAssertEqual("\(EvaluationLayout.stream)", "one stream, state carried")
    }

    // MARK: - The command line

    func testTrainPrintsTheTokensItTrainsAndValidatesOn() throws {
        let path = writeLongText()
        let total = Self.longText.unicodeScalars.count  // raw mode: one token per character
        let small = [
            "--text-mode", "raw", "--hidden", "8", "--epochs", "1", "--batch", "4", "--steps", "8", "--sample-every",
            "0",
        ]
        func train(_ name: String, _ arguments: [String]) throws -> String {
            let result = try cli.run(
                ["train", "--corpus", path] + small + arguments + ["--output", cli.folder + "/" + name])
            XCTAssertEqual(result.status, 0, result.err)
            return result.out
        }
        // Your own corpus without a preset: all of it.
        let trainCount = Int((Double(total) * 0.9).rounded(.down))
        let whole = try train("whole", [])
        XCTAssertTrue(
            whole.contains(
                "training on \(groupedDigits(trainCount)) tokens, validating on \(groupedDigits(total - trainCount)) "
                    + "(last 10%) of the whole text"
            ), whole)
        XCTAssertTrue(whole.contains("validation: row-parallel (4 rows x 8 steps, each from a zero state)"), whole)
        // A d2l preset asks for d2l's cut, and the line says so and who set it.
        let d2l = try train("d2l", ["--preset", "d2l-rnn"])
        XCTAssertTrue(
            d2l.contains(
                "training on 9,000 tokens, validating on 1,000 (last 10%) of the first 10,000 tokens (--max-tokens "
                    + "10000 of preset d2l-rnn; --max-tokens 0 reads all)"
            ), d2l)
        let wholeAgain = try train("d2l-whole", ["--preset", "d2l-rnn", "--max-tokens", "0"])
        XCTAssertTrue(wholeAgain.contains("training on \(groupedDigits(trainCount)) tokens"), wholeAgain)
        let limited = try train("limited", ["--max-tokens", "5000", "--validation-fraction", "0.2"])
        XCTAssertTrue(
            limited.contains(
                "training on 4,000 tokens, validating on 1,000 (last 20%) of the first 5,000 tokens (--max-tokens)"),
            limited)
        // `rnn train` alone is d2l 8.5: the first 10,000 tokens of The Time Machine.
        let d2lDefault = try cli.run([
            "train", "--hidden", "8", "--epochs", "1", "--sample-every", "0", "--output", cli.folder + "/default",
        ])
        XCTAssertEqual(d2lDefault.status, 0, d2lDefault.err)
        XCTAssertTrue(
            d2lDefault.out.contains(
                "corpus timemachine (d2l, vocabulary 28): training on the first 10,000 tokens (--max-tokens 10000 of "
                    + "preset d2l-rnn; --max-tokens 0 reads all), no validation"
            ), d2lDefault.out)
        // d2l mode holds nothing out unless asked.
        let d2lMode = try cli.run([
            "train", "--corpus", path, "--hidden", "8", "--epochs", "1", "--batch", "4", "--steps", "8",
            "--sample-every", "0",
            "--output", cli.folder + "/d2l-mode",
        ])
        XCTAssertEqual(d2lMode.status, 0, d2lMode.err)
        let d2lTokens = try PreparedCorpus.prepare(text: Self.longText, mode: .d2l).trainTokens.count
        XCTAssertTrue(
            d2lMode.out.contains("training on all \(groupedDigits(d2lTokens)) tokens, no validation"), d2lMode.out)
        XCTAssertFalse(d2lMode.out.contains("validation: "), d2lMode.out)
    }

    func testEvalPrintsTheSettingBesideTheFigure() throws {
        let trainer = try smallTrainedModel()
        let checkpoint = cli.folder + "/model.safetensors"
        try trainer.checkpoint().save(to: checkpoint)
        let excerpt = String(EmbeddedCorpus.tinyShakespeare.text.unicodeScalars.prefix(3_000).map(Character.init))
        let text = cli.write("excerpt.txt", Array(excerpt.utf8))
        let tokens = try trainer.corpus.vocabulary.encodeTokens(excerpt)
        func perplexityLine(_ arguments: [String]) throws -> (value: Double, setting: String) {
            let result = try cli.run(["eval", "--checkpoint", checkpoint, "--text", text] + arguments)
            XCTAssertEqual(result.status, 0, result.err)
            let line = try XCTUnwrap(
                result.out.split(separator: "\n").first { $0.hasPrefix("perplexity ") }, result.out)
            let parts = line.dropFirst("perplexity ".count).split(separator: " ", maxSplits: 1)
            return (Double(parts[0]) ?? .nan, String(parts.count > 1 ? parts[1] : ""))
        }
        let stream = try perplexityLine([])
        XCTAssertEqual(stream.setting, "(one stream, state carried over 3,000 tokens)")
        XCTAssertEqual(
            stream.value,
            perplexity(meanCrossEntropy: try Evaluation.meanCrossEntropy(model: trainer.model, tokens: tokens)),
            accuracy: 2e-6)
        let rows = try perplexityLine(["--batch", "8"])
        XCTAssertEqual(rows.setting, "(row-parallel (8 rows x 35 steps, each from a zero state))")
        XCTAssertEqual(
            rows.value,
            perplexity(
                meanCrossEntropy: try Evaluation.meanCrossEntropy(
                    model: trainer.model, tokens: tokens,
                    layout: .rows(batch: 8, steps: 35))), accuracy: 2e-6)
        XCTAssertGreaterThan(rows.value, stream.value)
        // --batch 1 is the stream (chunks of --steps), as before.
        let one = try perplexityLine(["--batch", "1"])
        XCTAssertEqual(one.setting, stream.setting)
        XCTAssertEqual(one.value, stream.value, accuracy: 2e-5)
        let compact = try perplexityLine(["--weight-precision", "bfloat16"])
        XCTAssertEqual(
            compact.setting, "(one stream, state carried over 3,000 tokens, token by token, bfloat16 weights)")
        try cli.assertFails(
            ["eval", "--checkpoint", checkpoint, "--text", text, "--weight-precision", "bfloat16", "--batch", "8"],
            mentioning: "--batch 8")
    }
}
