import Foundation
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitAnalysis
@testable import RecurrentKitText

/// JSON fixtures written by Scripts/fixtures/generate.py (PyTorch, float64).
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures")

    static func load(_ relativePath: String) throws -> [String: Any] {
        let url = directory.appendingPathComponent(relativePath)
        let data = try Data(contentsOf: url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RecurrentKitError("fixture \(relativePath) is not a JSON object")
        }
        return object
    }

    /// Decodes {"shape": [...], "data": [...]} into a tensor.
    static func tensor<Scalar: RecurrentScalar>(_ value: Any?, as: Scalar.Type = Scalar.self) throws -> Tensor<Scalar> {
        guard let dict = value as? [String: Any], let shape = dict["shape"] as? [Int], let data = dict["data"] as? [Any]
        else {
            throw RecurrentKitError("fixture value is not a tensor")
        }
        return try Tensor(shape: shape, scalars: data.map { Scalar(($0 as! NSNumber).doubleValue) })
    }

    /// A JSON array of integers.
    static func ints(_ value: Any?) -> [Int] { value as! [Int] }

    static func doubles(_ value: Any?) -> [Double] { (value as! [Any]).map { ($0 as! NSNumber).doubleValue } }
}

/// Asserts max |actual - expected| <= tolerance, reporting the worst index on failure.
func assertClose<Scalar: RecurrentScalar, Other: RecurrentScalar>(
    _ actual: Tensor<Scalar>, _ expected: Tensor<Other>, tolerance: Double, _ name: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("\(name): shape \(actual.shape) != expected \(expected.shape)", file: file, line: line)
        return
    }
    let worst = try! actual.converted(to: Double.self).maxAbsDifference(expected.converted(to: Double.self))
    if !(worst.value <= tolerance) {
        let at = actual.multiIndex(ofFlat: worst.index)
        XCTFail(
            "\(name): max |diff| \(worst.value) > \(tolerance) at \(at): got \(actual.scalars[worst.index]), expected \(expected.scalars[worst.index])",
            file: file, line: line)
    }
}

/// Worst |diff| between two tensors (for reporting the measured agreement).
func maxDifference<Scalar: RecurrentScalar, Other: RecurrentScalar>(_ a: Tensor<Scalar>, _ b: Tensor<Other>) -> Double {
    (try? a.converted(to: Double.self).maxAbsDifference(b.converted(to: Double.self)).value) ?? .infinity
}

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

/// The `rnn` executable next to the test bundle (swift test builds every product).
func rnnBinary() -> URL {
    var url = Bundle.main.bundleURL
    for _ in 0..<3 {
        let candidate = url.appendingPathComponent("rnn")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        url = url.deletingLastPathComponent()
    }
    return Bundle.main.bundleURL.appendingPathComponent("rnn")
}
