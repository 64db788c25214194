// d2l 8.5 with the library's parts: a character-level tanh RNN on The Time Machine (embedded, nothing downloaded),
// trained by the generic Trainer (the model carries its state through each epoch's minibatches), then a greedy
// continuation and a checkpoint `rnn sample` reads. Public API only.
// Usage: CharacterModel [epochs]   (exits 1 unless the training perplexity falls below 12 within 20 epochs)
import Foundation
import RecurrentKit
import RecurrentKitText

let epochs = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 20
// d2l's data: the first 10,000 characters, 28 tokens; minibatches of 32 rows x 35 steps, read in order.
let corpus = try PreparedCorpus.prepare(text: EmbeddedCorpus.timeMachine.text, mode: .d2l, maxTokens: 10_000)
var generator = SeededGenerator(seed: 0)
let model = try LanguageModel<Float>(
    LanguageModelConfiguration(vocabularySize: corpus.vocabulary.count, cell: .rnnTanh, hiddenSize: 512),
    initialization: .d2l, generator: &generator)
let text = try TokenStreamBatches<Float>(
    tokens: corpus.trainTokens, batchSize: 32, steps: 35, sampling: .sequential,
    generator: SeededGenerator(seed: generator.next()))
let loss = NextTokenLoss<Float>()
let trainer = try Trainer(
    model: model, optimizer: try SGD(learningRate: 1), data: text,
    options: TrainerOptions(epochs: epochs, clip: 1, clipStyle: .d2l, seed: generator.next(), randomStream: .continuous)
) {
    try loss($0, $1)
}
try trainer.train(progress: { event in
    if case .epoch(let summary) = event, summary.epoch % 5 == 0 {
        print(
            "epoch \(summary.epoch): perplexity \(perplexity(meanCrossEntropy: summary.trainingLoss)), \(Int(summary.examplesPerSecond)) tokens/s"
        )
    }
})
print(
    "> \(try TextGenerator.predict(model: model, vocabulary: corpus.vocabulary, prefix: "time traveller", length: 50))")
let path = FileManager.default.temporaryDirectory.appendingPathComponent("character-model.safetensors").path
try Checkpoint(model: model, vocabulary: corpus.vocabulary).save(to: path)  // `rnn sample --checkpoint` reads it
print("saved \(path)")
let final = perplexity(meanCrossEntropy: trainer.history.last!.trainingLoss)
if epochs >= 20 && !(final < 12) {
    print("FAIL: perplexity \(final) after \(epochs) epochs (d2l reaches about 11)"); exit(1)
}
