// A GRU reads sequences of 16 symbols (0 and 1 are noise; 2 = A and 3 = B each appear once) and says which of A and
// B came first, trained with softmax cross-entropy on its last state. Public API only.
// Usage: SequenceClassification [updates]   (exits 1 unless the test accuracy is at least 95%)
import Foundation
import RecurrentKit

let updates = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 400
let (T, B, H, symbols) = (16, 64, 32, 4)
var rng = SeededGenerator(seed: 7)
/// `count` sequences as one-hot token indices (T, count) time-major, and their labels (0: A first, 1: B first).
@MainActor func batch(_ count: Int) -> (tokens: [Int], labels: [Int]) {
    var tokens = [Int](repeating: 0, count: T * count), labels = [Int](repeating: 0, count: count)
    for b in 0..<count {
        for t in 0..<T { tokens[t * count + b] = rng.nextInt(below: 2) }
        let a = rng.nextInt(below: T)
        var other = rng.nextInt(below: T - 1)
        if other >= a { other += 1 }
        tokens[a * count + b] = 2
        tokens[other * count + b] = 3
        labels[b] = a < other ? 0 : 1
    }
    return (tokens, labels)
}

// Each layer declares its own parameters; one store gathers them (gru.weight_ih_l0, ..., head.bias) so clipping,
// Adam and checkpoints see every parameter.
let gru = try GRU<Float>(inputSize: symbols, hiddenSize: H, generator: &rng) // nn.GRU(symbols, H)
let head = try Linear<Float>(inputSize: H, outputSize: 2, generator: &rng)
let parameters = try ParameterStore<Float>(gathering: ["gru": gru, "head": head])
let adam = try Adam(learningRate: 0.01)

/// Class scores (count, 2) from the final hidden state, that state (count, H), and the GRU's record for the backward.
@MainActor func classify(_ tokens: [Int], count: Int) throws -> (logits: Tensor<Float>, last: Tensor<Float>, record: RecurrentRecord<Float>) {
    let record = try gru(.oneHot(tokens: tokens, steps: T, batch: count), generator: &rng)
    let last = try Tensor(shape: [count, H], scalars: try record.finalState.h.scalars) // one layer: h_T is (1, count, H)
    return (try head(last), last, record)
}

for update in 1...updates {
    let (tokens, labels) = batch(B)
    parameters.zeroGradients()
    let (logits, last, record) = try classify(tokens, count: B)
    let (loss, dLogits) = try softmaxCrossEntropy(logits: logits, targets: labels, ignoreIndex: nil)
    let dLast = try head.backward(input: last, outputGradient: dLogits)
    // The loss reads only the final state: no gradient on the outputs, dL/dh_T through the final-state gradient.
    _ = try gru.backward(record, outputGradient: Tensor(zeros: [T, B, H]),
                         finalStateGradient: RecurrentState(h: try Tensor(shape: [1, B, H], scalars: dLast.scalars)))
    try clipGradientNorm(parameters, maxNorm: 1, style: .pytorch)
    try adam.step(parameters)
    if update % 100 == 0 { print("update \(update): training loss \(loss)") }
}

let (tokens, labels) = batch(2000)
let logits = try classify(tokens, count: 2000).logits
let correct = (0..<2000).filter { (logits.scalars[2 * $0 + 1] > logits.scalars[2 * $0] ? 1 : 0) == labels[$0] }.count
print("test accuracy \(Double(correct) / 20)% on 2000 sequences")
if correct < 1900 { print("FAIL: accuracy below 95%"); exit(1) }
