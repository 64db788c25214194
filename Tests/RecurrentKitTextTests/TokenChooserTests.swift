import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// The allocation-free token chooser draws exactly what the straightforward sort-based sampler draws.
final class TokenChooserTests: XCTestCase {
    /// The reference: sort every index by descending logit (ties by index), keep k, sample from softmax(logit / T).
    private func reference(_ logits: [Float], temperature: Double, topK: Int?, generator: inout SeededGenerator) -> Int
    {
        var candidates = Array(logits.indices)
        if let k = topK, k < logits.count {
            candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            candidates = Array(candidates.prefix(k))
        }
        let scaled = candidates.map { Double(logits[$0]) / temperature }
        let maximum = scaled.max()!
        let weights = scaled.map { Double.exp($0 - maximum) }
        var u = generator.nextUnit() * weights.reduce(0, +)
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { return candidates[i] }
        }
        return candidates.last!
    }

    func testMatchesSortBasedSamplingWithTiesAndEveryTopK() {
        var data = SeededGenerator(seed: 7)
        for V in [1, 2, 5, 28, 65] {
            var chooser = TokenChooser(vocabularySize: V)
            for trial in 0..<40 {
                // Coarse values give many ties.
                let logits = (0..<V).map { _ in
                    Float(data.nextInt(below: 7)) - 3 + (trial % 2 == 0 ? 0 : Float(data.nextUnit()))
                }
                for topK in [nil, 1, 2, 3, V - 1, V, V + 3] as [Int?] {
                    if let k = topK, k < 1 { continue }
                    for temperature in [0.5, 1.0, 2.0] {
                        var a = SeededGenerator(seed: UInt64(trial * 31 + V)), b = a
                        let expected = reference(logits, temperature: temperature, topK: topK, generator: &a)
                        let got = logits.withUnsafeBufferPointer {
                            chooser.choose(
                                $0.baseAddress!, decoding: .sample(temperature: temperature, topK: topK), generator: &b)
                        }
                        XCTAssertEqual(
                            got, expected, "V \(V) trial \(trial) topK \(String(describing: topK)) T \(temperature)")
                        XCTAssertEqual(a.next(), b.next(), "one draw each")
                    }
                }
                let greedy = logits.withUnsafeBufferPointer {
                    chooser.choose($0.baseAddress!, decoding: .greedy, generator: &data)
                }
                XCTAssertEqual(greedy, logits.indices.first { logits[$0] == logits.max()! })
            }
        }
    }
}
