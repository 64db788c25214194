// d2l 8.5 in a few lines: a character-level tanh RNN on The Time Machine (embedded, nothing downloaded), trained with
// the library's LanguageModelTrainer, then a greedy continuation and a checkpoint. Public API only.
// Usage: CharacterModel [epochs]   (exits 1 unless the training perplexity falls below 12 within 20 epochs)
import Foundation
import RecurrentKit
import RecurrentKitText

let epochs = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 20
var options = TrainingPreset.d2lRNN.options // H 512, B 32, T 35, SGD lr 1, clip 1, first 10,000 characters
options.epochs = epochs
options.sampleEvery = 0
let trainer = try LanguageModelTrainer(options: options)
try trainer.train(progress: { event in
    if case .epoch(let report) = event, report.epoch % 5 == 0 {
        print("epoch \(report.epoch): perplexity \(report.trainPerplexity), \(Int(report.tokensPerSecond)) tokens/s")
    }
})
let text = try TextGenerator.predict(model: trainer.model, vocabulary: trainer.corpus.vocabulary, prefix: "time traveller", length: 50)
print("> \(text)")
let path = FileManager.default.temporaryDirectory.appendingPathComponent("character-model.safetensors").path
try trainer.checkpoint().save(to: path) // `rnn sample --checkpoint` reads it; LanguageModelTrainer(resumingFrom:) continues it
print("saved \(path)")
let final = trainer.history.last!.trainPerplexity
if epochs >= 20 && !(final < 12) { print("FAIL: perplexity \(final) after \(epochs) epochs (d2l reaches about 11)"); exit(1) }
