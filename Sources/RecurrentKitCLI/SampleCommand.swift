import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn sample`: continue a prefix with a trained model.
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sample", abstract: "Generate text from a checkpoint.")

    @Option(help: "Checkpoint written by rnn train (safetensors).") var checkpoint: String
    @Option(help: "Text the model reads first (warm-up), at least one character.") var prefix: String = "time traveller"
    @Option(help: "Characters to generate.") var length: Int = 200
    @Option(help: "Sampling temperature (> 0); 0 means greedy argmax (d2l predict_ch8).") var temperature: Double = 1
    @Option(help: "Sample only among the k most likely characters (>= 1).") var topK: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Weight storage while generating: float32 or bfloat16 (half the bytes per token, faster).") var precision: WeightPrecision = .float32

    func run() throws {
        let weightPrecision = precision
        guard temperature.isFinite, temperature >= 0 else { throw RecurrentKitError.invalidArgument("temperature", temperature, "must be >= 0 (0 = greedy)") }
        guard length >= 0, length <= 10_000_000 else { throw RecurrentKitError.invalidArgument("length", length, "must be in 0...10000000") }
        let loaded = try Checkpoint.load(from: checkpoint)
        let tokens: [Int]
        do { tokens = try loaded.vocabulary.encode(prefix) }
        catch let error as RecurrentKitError { throw RecurrentKitError("prefix: \(error.message)") }
        var generator = SeededGenerator(seed: seed)
        let decoding: TextGenerator.Decoding = temperature == 0 ? .greedy : .sample(temperature: temperature, topK: topK)
        let output = try TextGenerator.generate(model: loaded.model, prefix: tokens, length: length, decoding: decoding, generator: &generator,
                                                precision: weightPrecision)
        print(try loaded.vocabulary.decode(output))
    }
}
