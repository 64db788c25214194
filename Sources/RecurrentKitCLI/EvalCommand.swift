import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn eval`: perplexity and bits per character of a checkpoint on a text.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Perplexity and bits per character of a checkpoint on a text.")

    @Option(help: "Checkpoint written by rnn train (safetensors).") var checkpoint: String
    @Option(help: "UTF-8 text file to evaluate (default: the embedded corpus named by --corpus).") var text: String?
    @Option(help: "Embedded corpus used when --text is absent.") var corpus: String = "timemachine"
    @Option(
        help:
            "Row-parallel evaluation: cut the text into this many rows read in parallel, each from a zero state (faster, but the first tokens of every row lack context, so the figure is higher; rnn train's validation reads its --batch rows of --steps this way). Default: the text as one stream, the state carried throughout."
    ) var batch: Int?
    @Option(
        help:
            "Steps per chunk; the state is carried across chunks, so it changes only the rounding (default 35 with --batch, \(EvaluationLayout.streamChunkSteps) for one stream)."
    ) var steps: Int?
    @OptionGroup var weightPrecisionOption: WeightPrecisionOption
    @Option(help: "Evaluate only the first N characters (0 = all).") var maxChars: Int = 0
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        let weightPrecision = weightPrecisionOption.resolved
        let loaded = try Checkpoint.load(from: checkpoint)
        guard text != nil || EmbeddedCorpus(rawValue: corpus) != nil else {
            throw RecurrentKitError.invalidArgument("corpus", "'\(corpus)'", "expected timemachine or tinyshakespeare")
        }
        let raw = try loadCorpusText(text ?? corpus)
        guard maxChars >= 0 else {
            throw RecurrentKitError.invalidArgument("max-chars", maxChars, "must be >= 0 (0 = all)")
        }
        var prepared = TextPreparation.prepared(raw, mode: loaded.vocabulary.mode)
        // Cut before encoding (by characters in every mode), so text past the limit is never read.
        if maxChars > 0 && prepared.unicodeScalars.count > maxChars {
            prepared = String(prepared.unicodeScalars.prefix(maxChars))
        }
        let tokens = try loaded.vocabulary.encodeTokens(prepared)
        if let batch, batch < 1 { throw RecurrentKitError.invalidArgument("batch", batch, "must be at least 1") }
        if let steps, steps < 1 { throw RecurrentKitError.invalidArgument("steps", steps, "must be at least 1") }
        // One stream unless --batch asks for rows; --steps alone only sets the stream's chunk length.
        let layout: EvaluationLayout =
            batch == nil && steps == nil
            ? .stream
            : .rows(batch: batch ?? 1, steps: steps ?? (batch == nil ? EvaluationLayout.streamChunkSteps : 35))
        let setting: String
        let ce: Double
        if weightPrecision.isCompact {
            guard (batch ?? 1) == 1 else {
                throw RecurrentKitError(
                    "--batch \(batch!) needs --weight-precision float32: \(weightPrecision.rawValue) weights read the "
                        + "text as one stream, token by token"
                )
            }
            ce = try Evaluation.meanCrossEntropy(model: loaded.model, tokens: tokens, format: weightPrecision)
            setting =
                EvaluationLayout.stream.description(tokenCount: tokens.count)
                + ", token by token, \(weightPrecision.rawValue) weights"
        } else {
            ce = try Evaluation.meanCrossEntropy(model: loaded.model, tokens: tokens, layout: layout)
            setting = layout.description(tokenCount: tokens.count)
        }
        guard ce.isFinite, perplexity(meanCrossEntropy: ce).isFinite else {
            throw RecurrentKitError(
                "the checkpoint's predictions overflow (cross-entropy \(ce) nats per character, perplexity "
                    + "\(perplexity(meanCrossEntropy: ce))): the model diverged and cannot be evaluated"
            )
        }
        print("characters predicted \(tokens.count - 1)")
        print("cross-entropy \(fixed(ce, 6)) nats/char")
        print("perplexity \(fixed(perplexity(meanCrossEntropy: ce), 6)) (\(setting))")
        print("bits per character \(fixed(ce / log(2), 6))")
    }
}
