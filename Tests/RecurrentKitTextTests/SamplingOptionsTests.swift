import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Nucleus (top-p) sampling, stop sequences and several samples.
final class SamplingOptionsTests: XCTestCase {
    func testTopPNeverLeavesTheNucleus() throws {
        // Probabilities 0.4, 0.3, 0.15, 0.1, 0.05 (shuffled over the indices): the 0.75-nucleus is {0.4, 0.3, 0.15}.
        let probabilities: [Double] = [0.1, 0.4, 0.05, 0.15, 0.3]
        let logits = probabilities.map { Float(Double.log($0)) }
        var chooser = TokenChooser(vocabularySize: 5)
        var g = SeededGenerator(seed: 9)
        var counts = [Int](repeating: 0, count: 5)
        logits.withUnsafeBufferPointer { l in
            for _ in 0..<10_000 {
                counts[
                    chooser.choose(
                        l.baseAddress!, decoding: .sample(temperature: 1, topK: nil, topP: 0.75), generator: &g)] += 1
            }
            XCTAssertEqual(counts[0] + counts[2], 0, "sampled outside the nucleus: \(counts)")
            // Inside it, the renormalized shares (0.4, 0.3, 0.15) / 0.85 within 4 standard deviations.
            for (index, p) in [(1, 0.4), (4, 0.3), (3, 0.15)] {
                let share = p / 0.85, sd = (share * (1 - share) / 10_000).squareRoot()
                XCTAssertEqual(Double(counts[index]) / 10_000, share, accuracy: 4 * sd, "\(counts)")
            }
            // With top-k as well, the nucleus is cut from the k candidates; p small keeps the single most likely one.
            for _ in 0..<200 {
                XCTAssertEqual(
                    chooser.choose(
                        l.baseAddress!, decoding: .sample(temperature: 1, topK: 3, topP: 0.01), generator: &g), 1)
            }
            // topP 1 draws exactly what plain sampling draws.
            var a = SeededGenerator(seed: 4), b = SeededGenerator(seed: 4)
            for _ in 0..<500 {
                XCTAssertEqual(
                    chooser.choose(
                        l.baseAddress!, decoding: .sample(temperature: 0.7, topK: nil, topP: 1), generator: &a),
                    chooser.choose(l.baseAddress!, decoding: .sample(temperature: 0.7, topK: nil), generator: &b))
            }
        }
        // Ties are ordered by index and the order is the sort's.
        let many = (0..<300).map { _ in Float(g.nextInt(below: 20)) }
        var indices = Array(0..<300)
        let expected = indices.sorted { many[$0] > many[$1] || (many[$0] == many[$1] && $0 < $1) }
        many.withUnsafeBufferPointer { keys in
            indices.withUnsafeMutableBufferPointer { sortDescending($0, by: keys.baseAddress!) }
        }
        XCTAssertEqual(indices, expected)
    }

    func testStopSequenceAndArguments() throws {
        var g = SeededGenerator(seed: 1)
        let model = try LanguageModel<Float>(.init(vocabularySize: 4, cell: .gru, hiddenSize: 6), generator: &g)
        var draws = SeededGenerator(seed: 2)
        let full = try TextGenerator.generate(
            model: model, prefix: [0], length: 200, decoding: .sample(temperature: 1, topK: nil), generator: &draws)
        let stop = Array(full[5...6])
        let firstStop = (1...(full.count - 2)).first { full[$0] == stop[0] && full[$0 + 1] == stop[1] }!
        draws = SeededGenerator(seed: 2)
        let cut = try TextGenerator.generate(
            model: model, prefix: [0], length: 200, decoding: .sample(temperature: 1, topK: nil), generator: &draws,
            stop: stop)
        XCTAssertEqual(cut, Array(full[...(firstStop + 1)]))
        XCTAssertEqual(
            try TextGenerator.generate(model: model, prefix: [0], length: 0, decoding: .greedy, generator: &draws), [0])
        for p in [0.0, -1, 1.5, .nan] {
            XCTAssertThrowsError(
                try TextGenerator.generate(
                    model: model, prefix: [0], length: 3, decoding: .sample(temperature: 1, topK: nil, topP: p),
                    generator: &draws))
        }
    }
}
