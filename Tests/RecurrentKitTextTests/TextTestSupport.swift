// Helpers of the text library's tests.
import RecurrentKit

@testable import RecurrentKitText

/// The largest |logit difference| between Float generation (`generationLogits`) and `session` per call: first after
/// `warmUp` fed from a zero state, then after each of `tokens` fed one at a time with the state carried.
func compactLogitDifferences(
    _ model: LanguageModel<Float>, _ session: CompactGenerationSession, warmUp: [Int], tokens: [Int]
) throws -> [Float] {
    let V = model.configuration.vocabularySize
    func worst(_ feed: [Int], reset: Bool) throws -> Float {
        let r = Array(UnsafeBufferPointer(start: try model.generationLogits(feed, reset: reset), count: V))
        let c = Array(UnsafeBufferPointer(start: try session.logits(after: feed, reset: reset), count: V))
        return zip(r, c).map { abs($0 - $1) }.max()!
    }
    return try [worst(warmUp, reset: true)] + tokens.map { try worst([$0], reset: false) }
}

/// The checkpoint that `bytes` (a serialized checkpoint) become after `edit` changes their safetensors file, metadata or
/// tensors: how the hostile-input and format tests make a damaged, older or foreign file without writing one.
func checkpoint(_ bytes: [UInt8], editedBy edit: (inout SafetensorsFile) throws -> Void) throws -> Checkpoint {
    var file = try SafetensorsFile(bytes: bytes)
    try edit(&file)
    return try Checkpoint.parse(try file.serialized())
}

extension Checkpoint {
    /// This checkpoint with its training state JSON replaced (model, vocabulary, tensors and step count kept).
    func replacingTraining(_ training: String) throws -> Checkpoint {
        try Checkpoint(
            model: model, vocabulary: vocabulary, training: training, extraTensors: extraTensors,
            extraDoubleTensors: extraDoubleTensors, optimizerStepCount: optimizerStepCount)
    }
}
