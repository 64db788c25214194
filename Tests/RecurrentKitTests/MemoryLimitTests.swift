import Foundation
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Memory known before it is spent (#30): an address-space limit (`ulimit -v`) refuses a run that would not fit with
/// one line instead of a trap, and a text is encoded only as far as it is used.
final class MemoryLimitTests: XCTestCase {
    /// `rnn train` under `ulimit -v 4194304` (4 GiB of address space): a model far too large for it is refused by
    /// name before anything is allocated; a small one still trains.
    func testAddressSpaceLimitRefusesWithOneLine() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rk-ulimit-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func train(_ arguments: String) throws -> (status: Int32, err: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -v 4194304 && exec \"$0\" train --epochs 1 --sample-every 0 --threads 1 --output \"$1\" \(arguments)",
                                 rnnBinary().path, folder]
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let data = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let refused = try train("--hidden 32000")
        XCTAssertEqual(refused.status, 1, refused.err)
        XCTAssertEqual(refused.err.split(separator: "\n").count, 1, refused.err)
        XCTAssertTrue(refused.err.contains("address-space limit (ulimit -v)"), refused.err)
        let small = try train("--hidden 16 --max-tokens 3000")
        XCTAssertEqual(small.status, 0, small.err)
    }

    /// With no limit set in this process the address space is unbounded; the figure, when there is one, is below the
    /// limit.
    func testAvailableAddressSpaceIsBelowTheLimit() {
        if let limit = addressSpaceLimitBytes() {
            XCTAssertLessThanOrEqual(availableAddressSpaceBytes() ?? 0, limit)
        } else {
            XCTAssertNil(availableAddressSpaceBytes())
        }
    }

    /// Encoding with a token limit gives the first tokens of the whole encoding, in every mode, and stops there.
    func testEncodingStopsAtMaxTokens() throws {
        let text = "The Time  Traveller (for so it will be\tconvenient) was expounding\na recondite matter to us. é"
        for mode in [TextMode.d2l, .raw, .words] {
            let corpus = try PreparedCorpus.prepare(text: text, mode: mode)
            let all = try corpus.vocabulary.encode(mode == .d2l ? TextPreparation.d2lNormalize(text) : mode == .words ? TextPreparation.d2lLines(text).joined(separator: " ") : text)
            for limit in [0, 1, 5, all.count - 1, all.count, all.count + 7] {
                let source = mode == .d2l ? TextPreparation.d2lNormalize(text) : mode == .words ? TextPreparation.d2lLines(text).joined(separator: " ") : text
                XCTAssertEqual(try corpus.vocabulary.encode(source, maxTokens: limit), Array(all.prefix(max(limit, 0))), "\(mode) \(limit)")
            }
            let cut = try PreparedCorpus.prepare(text: text, mode: mode, maxTokens: 6, validationFraction: 0)
            XCTAssertEqual(cut.trainTokens, Array(all.prefix(6)), "\(mode)")
        }
        // Raw mode: a character outside the vocabulary after the limit is never reached.
        let raw = Vocabulary.raw(from: "abc")
        XCTAssertEqual(try raw.encode("abcz", maxTokens: 3), try raw.encode("abc"))
        XCTAssertThrowsError(try raw.encode("abcz", maxTokens: 4))
    }
}
