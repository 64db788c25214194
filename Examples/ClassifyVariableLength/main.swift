// A bidirectional GRU reads token sequences of lengths 5 to 60 and says whether the first and the last token of each
// are equal. Rows are padded to the longest in their batch and the GRU is given their lengths, so the forward
// direction ends at each row's own last token and the reverse direction starts there; a model that read the padding
// as data could not pass. Both directions' final states are joined (PyTorch `torch.cat([h_n[-2], h_n[-1]], 1)`).
// Public API only. Usage: ClassifyVariableLength [updates]   (exits 1 unless the test accuracy is at least 99%)
import Foundation
import RecurrentKit

let updates = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 400
let (symbols, H, B) = (4, 48, 64)
var rng = SeededGenerator(seed: 7)
/// `count` sequences of random symbols whose last symbol equals the first in half of them, and the labels (1: equal).
func examples(_ count: Int, _ rng: inout SeededGenerator) -> (sequences: [[Int]], labels: [Int]) {
    var sequences: [[Int]] = [], labels: [Int] = []
    for _ in 0..<count {
        var s = (0..<(5 + rng.nextInt(below: 56))).map { _ in rng.nextInt(below: symbols) }
        let equal = rng.nextInt(below: 2)
        s[s.count - 1] = equal == 1 ? s[0] : (s[0] + 1 + rng.nextInt(below: symbols - 1)) % symbols
        sequences.append(s)
        labels.append(equal)
    }
    return (sequences, labels)
}
let train = examples(20_000, &rng), test = examples(2_000, &rng)

let model = try Sequential(seed: 1) {
    ("embedding", try Embedding<Float>(vocabularySize: symbols, dimension: 8, generator: &rng))
    // nn.GRU(8, H, bidirectional=True)
    ("gru", try GRU<Float>(inputSize: 8, hiddenSize: H, bidirectional: true, generator: &rng))
    FinalHiddenState<Float>()  // (B, 2H): both directions' final states joined
    ("hidden", try Linear<Float>(inputSize: 2 * H, outputSize: H, generator: &rng))
    ReLU<Float>()  // "equal" is not linear in the two states: one hidden layer
    ("head", try Linear<Float>(inputSize: H, outputSize: 2, generator: &rng))
}
let adam = try Adam(learningRate: 0.005)
var sampler = try BatchSampler(
    count: train.labels.count, batchSize: B, seed: 3, bucketByLengths: train.sequences.map(\.count))

for update in 1...updates {
    let rows = sampler.next()
    // tokens (T, B) and lengths
    let pass = try model.forward(try SequenceBatch(padding: rows.map { train.sequences[$0] }))
    let (loss, dLogits) = try softmaxCrossEntropy(
        logits: pass.output, targets: rows.map { train.labels[$0] }, ignoreIndex: nil)
    model.parameters.zeroGradients()
    try pass.backward(dLogits)
    try clipGradientNorm(model.parameters, maxNorm: 1, style: .pytorch)
    try adam.step(model.parameters)
    if update % 200 == 0 { print("update \(update) (epoch \(sampler.position.epoch)): training loss \(loss)") }
}

model.eval()
let predicted = try model(try SequenceBatch(padding: test.sequences)).argmax(along: 1)
let correct = zip(predicted, test.labels).filter { $0 == $1 }.count
print(
    "test accuracy \(Double(correct) / Double(test.labels.count) * 100)% on \(test.labels.count) sequences of lengths 5-60"
)
if correct < 1980 { print("FAIL: accuracy below 99%"); exit(1) }
