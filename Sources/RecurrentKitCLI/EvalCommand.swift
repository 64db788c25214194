import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn eval`: perplexity and bits per character of a checkpoint on a text.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Perplexity and bits per character of a checkpoint on a text.")

    @Option(help: "Checkpoint written by rnn train (safetensors).") var checkpoint: String
    @Option(help: "UTF-8 text file to evaluate (default: the embedded corpus named by --corpus).") var text: String?
    @Option(help: "Embedded corpus used when --text is absent.") var corpus: String = "timemachine"
    @Option(help: "Parallel rows while evaluating (does not change the result much).") var batch: Int = 32
    @Option(help: "Steps per chunk (the state is carried across chunks).") var steps: Int = 35
    @Option(help: "Weight storage: float32, or bfloat16 or int8 (these read the text as one stream, token by token, like generation; compare with --batch 1).") var precision: WeightPrecision = .float32
    @Option(help: "Evaluate only the first N characters (0 = all).") var maxChars: Int = 0
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        let weightPrecision = precision
        let loaded = try Checkpoint.load(from: checkpoint)
        guard text != nil || EmbeddedCorpus(rawValue: corpus) != nil else {
            throw RecurrentKitError.invalidArgument("corpus", "'\(corpus)'", "expected timemachine or tinyshakespeare")
        }
        let raw = try loadCorpusText(text ?? corpus)
        guard maxChars >= 0 else { throw RecurrentKitError.invalidArgument("max-chars", maxChars, "must be >= 0 (0 = all)") }
        var prepared = TextPreparation.prepared(raw, mode: loaded.vocabulary.mode)
        // Cut before encoding (by characters in every mode), so text past the limit is never read.
        if maxChars > 0 && prepared.unicodeScalars.count > maxChars { prepared = String(prepared.unicodeScalars.prefix(maxChars)) }
        let tokens = try loaded.vocabulary.encode(prepared)
        let ce = try weightPrecision.compactFormat.map { try Evaluation.meanCrossEntropy(model: loaded.model, tokens: tokens, format: $0) }
            ?? Evaluation.meanCrossEntropy(model: loaded.model, tokens: tokens, batchSize: batch, numSteps: steps)
        guard ce.isFinite, perplexity(meanCrossEntropy: ce).isFinite else {
            throw RecurrentKitError("the checkpoint's predictions overflow (cross-entropy \(ce) nats per character, perplexity \(perplexity(meanCrossEntropy: ce))): the model diverged and cannot be evaluated")
        }
        print("characters predicted \(tokens.count - 1)")
        print("cross-entropy \(fixed(ce, 6)) nats/char")
        print("perplexity \(fixed(perplexity(meanCrossEntropy: ce), 6))")
        print("bits per character \(fixed(ce / log(2), 6))")
    }
}
