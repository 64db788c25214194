// Shared by every test target: the PyTorch fixtures, tensor comparisons, and the `rnn` executable. Public API of the
// libraries only, so this target builds in any configuration.
import Foundation
import RecurrentKit
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// JSON fixtures written by Scripts/fixtures/generate.py (PyTorch, float64).
public enum Fixture {
    /// Tests/RecurrentKitTests/Fixtures.
    public static let directory = repositoryRoot.appendingPathComponent("Tests/RecurrentKitTests/Fixtures")

    /// The JSON object in `relativePath` under ``directory``.
    public static func load(_ relativePath: String) throws -> [String: Any] {
        let url = directory.appendingPathComponent(relativePath)
        let data = try Data(contentsOf: url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RecurrentKitError("fixture \(relativePath) is not a JSON object")
        }
        return object
    }

    /// Decodes {"shape": [...], "data": [...]} into a tensor.
    public static func tensor<Scalar: RecurrentScalar>(
        _ value: Any?, as: Scalar.Type = Scalar.self
    ) throws -> Tensor<Scalar> {
        guard let dict = value as? [String: Any], let shape = dict["shape"] as? [Int], let data = dict["data"] as? [Any]
        else {
            throw RecurrentKitError("fixture value is not a tensor")
        }
        return try Tensor(shape: shape, scalars: data.map { Scalar(($0 as! NSNumber).doubleValue) })
    }

    /// A JSON array of integers.
    public static func ints(_ value: Any?) -> [Int] { value as! [Int] }

    /// A JSON array of numbers.
    public static func doubles(_ value: Any?) -> [Double] { (value as! [Any]).map { ($0 as! NSNumber).doubleValue } }
}

/// Asserts max |actual - expected| <= tolerance, reporting the worst index on failure.
public func assertClose<Scalar: RecurrentScalar, Other: RecurrentScalar>(
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
            "\(name): max |diff| \(worst.value) > \(tolerance) at \(at): got \(actual.scalars[worst.index]), expected "
                + "\(expected.scalars[worst.index])",
            file: file, line: line)
    }
}

/// Worst |diff| between two tensors (for reporting the measured agreement).
public func maxDifference<Scalar: RecurrentScalar, Other: RecurrentScalar>(
    _ a: Tensor<Scalar>, _ b: Tensor<Other>
) -> Double {
    (try? a.converted(to: Double.self).maxAbsDifference(b.converted(to: Double.self)).value) ?? .infinity
}

/// The `rnn` executable next to the test bundle (swift test builds every product).
public func rnnBinary() -> URL {
    var url = Bundle.main.bundleURL
    for _ in 0..<3 {
        let candidate = url.appendingPathComponent("rnn")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        url = url.deletingLastPathComponent()
    }
    return Bundle.main.bundleURL.appendingPathComponent("rnn")
}

/// The repository's root folder (this file is Tests/RecurrentKitTestSupport/Fixtures.swift).
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Runs the `rnn` executable with `arguments`, optionally under `ulimit -v addressSpaceKiB`, and kills it after
/// `seconds` (a hang becomes a failure, not a stuck test run). Standard output and error go to temporary files, not
/// pipes, so a child that writes more than a pipe holds never blocks; both are removed afterwards.
/// - Returns: the exit status, both outputs, and whether it had to be killed.
public func runRNN(
    _ arguments: [String], seconds: Double = 600, addressSpaceKiB: Int? = nil
) throws -> (status: Int32, out: String, err: String, timedOut: Bool) {
    let process = Process()
    if let addressSpaceKiB {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -v \(addressSpaceKiB) && exec \"$0\" \"$@\"", rnnBinary().path] + arguments
    } else {
        process.executableURL = rnnBinary()
        process.arguments = arguments
    }
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("rk-run-\(UUID().uuidString)").path
    let outFile = base + ".out", errFile = base + ".err"
    _ = FileManager.default.createFile(atPath: outFile, contents: nil)
    _ = FileManager.default.createFile(atPath: errFile, contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: outFile)
        try? FileManager.default.removeItem(atPath: errFile)
    }
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outFile))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errFile))
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    let timedOut = process.isRunning
    if timedOut { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    let out = String(decoding: FileManager.default.contents(atPath: outFile) ?? Data(), as: UTF8.self)
    let err = String(decoding: FileManager.default.contents(atPath: errFile) ?? Data(), as: UTF8.self)
    return (process.terminationStatus, out, err, timedOut)
}
