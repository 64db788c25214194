import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn sample`: continue a prefix with a trained model.
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sample", abstract: "Generate text from a checkpoint.")

    @Option(help: "Checkpoint written by rnn train (safetensors).") var checkpoint: String
    @Option(help: "Text the model reads first (warm-up), at least one character (default \"time traveller\").")
    var prefix: String?
    @Option(help: "Read the prefix from this UTF-8 file instead.") var prefixFile: String?
    @Option(help: "Characters to generate.") var length: Int = 200
    @Option(help: "Sampling temperature (> 0); 0 means greedy argmax (d2l predict_ch8).") var temperature: Double = 1
    @Option(help: "Sample only among the k most likely characters (>= 1).") var topK: Int?
    @Option(help: "Nucleus sampling: only among the most likely characters whose probability reaches p, (0, 1].")
    var topP: Double?
    @Option(help: "Independent samples from the same prefix, printed one after another (1...1000).") var numSamples:
        Int = 1
    @Option(help: "End a sample as soon as it produces this text.") var stop: String?
    @Option(
        help:
            "Beam search with this many hypotheses (d2l 9.8; 1...1000): prints the --num-samples best with their log-probabilities."
    ) var beam: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @OptionGroup var weightPrecisionOption: WeightPrecisionOption

    func run() throws {
        let weightPrecision = weightPrecisionOption.resolved
        guard temperature.isFinite, temperature >= 0 else {
            throw RecurrentKitError.invalidArgument("temperature", temperature, "must be >= 0 (0 = greedy)")
        }
        guard length >= 0, length <= 10_000_000 else {
            throw RecurrentKitError.invalidArgument("length", length, "must be in 0...10000000")
        }
        guard numSamples >= 1, numSamples <= 1000 else {
            throw RecurrentKitError.invalidArgument("num-samples", numSamples, "must be in 1...1000")
        }
        guard prefix == nil || prefixFile == nil else {
            throw RecurrentKitError("give --prefix or --prefix-file, not both")
        }
        if temperature == 0, topK != nil || topP != nil {
            throw RecurrentKitError("--top-k and --top-p need sampling (--temperature > 0)")
        }
        let text = try prefixFile.map { try loadTextFile(at: $0, maximumBytes: 64 << 20) } ?? prefix ?? "time traveller"
        let loaded = try Checkpoint.load(from: checkpoint)
        func encode(_ text: String, _ what: String) throws -> [Int] {
            do { return try loaded.vocabulary.encode(text) } catch let error as RecurrentKitError {
                throw RecurrentKitError("\(what): \(error.message)")
            }
        }
        let tokens = try encode(text, "prefix")
        let stopTokens = try stop.map { try encode($0, "stop") } ?? []
        if let beam {
            guard temperature == 1, topK == nil, topP == nil else {
                throw RecurrentKitError(
                    "--beam searches for the most likely text; it takes no --temperature, --top-k or --top-p")
            }
            let results = try TextGenerator.beamSearch(
                model: loaded.model, prefix: tokens, length: max(length, 1), beamWidth: beam, stop: stopTokens)
            for (index, result) in results.prefix(numSamples).enumerated() {
                if index > 0 { print("---") }
                print("log p \(fixed(result.logProbability, 4)), score \(fixed(result.score, 4))")
                print(try loaded.vocabulary.decode(result.tokens))
            }
            return
        }
        var generator = SeededGenerator(seed: seed)
        let decoding: TextGenerator.Decoding =
            temperature == 0 ? .greedy : .sample(temperature: temperature, topK: topK, topP: topP)
        for index in 0..<numSamples {
            if index > 0 { print("---") }
            let output = try TextGenerator.generate(
                model: loaded.model, prefix: tokens, length: length, decoding: decoding, generator: &generator,
                precision: weightPrecision, stop: stopTokens)
            print(try loaded.vocabulary.decode(output))
        }
    }
}
