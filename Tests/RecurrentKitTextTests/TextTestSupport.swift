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
