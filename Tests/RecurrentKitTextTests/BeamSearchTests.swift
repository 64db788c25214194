import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Beam search (d2l 9.8): beam 1 is greedy, and a beam of at least V^(length-1) finds the exact top continuations.
final class BeamSearchTests: XCTestCase {
    func testBeamOneIsGreedyAndAWideBeamIsExact() throws {
        var g = SeededGenerator(seed: 31)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: 3, cell: .lstm, hiddenSize: 5), initialization: .pytorch, generator: &g)
        let prefix = [0, 2, 1]
        var unused = SeededGenerator(seed: 0)
        let greedy = try TextGenerator.generate(
            model: model, prefix: prefix, length: 6, decoding: .greedy, generator: &unused)
        XCTAssertEqual(
            try TextGenerator.beamSearch(model: model, prefix: prefix, length: 6, beamWidth: 1).first?.tokens, greedy)

        // Every continuation of 4 tokens, scored by one forward over prefix + continuation.
        var all: [(tokens: [Int], logP: Double)] = []
        for code in 0..<81 {
            let continuation = (0..<4).map { (code / [27, 9, 3, 1][$0]) % 3 }
            let inputs = prefix + continuation.dropLast()
            let logits = try model.logits(inputs: inputs, steps: inputs.count, batch: 1)
            var logP = 0.0
            for (i, token) in continuation.enumerated() {
                let row = (prefix.count - 1 + i) * 3
                let z = (0..<3).map { Double(logits.scalars[row + $0]) }, m = z.max()!
                logP += z[token] - (m + Double.log(z.reduce(0) { $0 + Double.exp($1 - m) }))
            }
            all.append((prefix + continuation, logP))
        }
        all.sort { $0.logP > $1.logP }
        let beam = try TextGenerator.beamSearch(model: model, prefix: prefix, length: 4, beamWidth: 27)
        XCTAssertEqual(beam.count, 27)
        for (i, hypothesis) in beam.enumerated() {
            XCTAssertEqual(hypothesis.logProbability, all[i].logP, accuracy: 1e-4, "rank \(i)")
            // Same sequence at the same rank unless the two are within rounding of each other.
            if hypothesis.tokens != all[i].tokens {
                XCTAssertEqual(
                    hypothesis.logProbability, all.first { $0.tokens == hypothesis.tokens }!.logP, accuracy: 1e-4)
                XCTAssertLessThan(
                    abs(all[i].logP - (i + 1 < all.count ? all[i + 1].logP : all[i].logP)), 1e-4,
                    "rank \(i) differs without a near-tie")
            }
            XCTAssertEqual(hypothesis.score, hypothesis.logProbability / Double.pow(4, 0.75), accuracy: 1e-12)
        }
        XCTAssertThrowsError(try TextGenerator.beamSearch(model: model, prefix: [], length: 3, beamWidth: 2))
        XCTAssertThrowsError(try TextGenerator.beamSearch(model: model, prefix: [0], length: 3, beamWidth: 0))
        XCTAssertThrowsError(try TextGenerator.beamSearch(model: model, prefix: [5], length: 3, beamWidth: 2))
    }

    func testStopEndsAHypothesis() throws {
        var g = SeededGenerator(seed: 32)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: 4, cell: .gru, hiddenSize: 6), initialization: .pytorch, generator: &g)
        let results = try TextGenerator.beamSearch(model: model, prefix: [1], length: 8, beamWidth: 6, stop: [2])
        XCTAssertFalse(results.isEmpty)
        for r in results {
            let new = r.tokens.dropFirst()
            XCTAssertTrue(new.count == 8 || new.last == 2, "\(r.tokens)")
            XCTAssertFalse(new.dropLast().contains(2), "a hypothesis continued past the stop token: \(r.tokens)")
        }
        XCTAssertEqual(results.map(\.score), results.map(\.score).sorted(by: >))
    }
}
