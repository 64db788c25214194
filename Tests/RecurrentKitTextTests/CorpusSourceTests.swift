import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// A corpus may stream from a pipe when the user names it for one process; a corpus named inside a checkpoint, or
/// read by every process of a job, must be a regular file, so nothing waits on a FIFO without a writer (#30).
final class CorpusSourceTests: XCTestCase {
    private func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rk-corpus-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func makeFIFO(_ path: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mkfifo")
        process.arguments = [path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw XCTSkip("mkfifo is not available here") }
    }

    private func options(corpus: String) -> TrainingOptions {
        var o = TrainingPreset.d2lRNN.options
        (o.corpus, o.hiddenSize, o.epochs, o.sampleEvery, o.maxTokens, o.textMode) = (corpus, 8, 1, 0, nil, .raw)
        (o.batchSize, o.numSteps) = (4, 10)
        return o
    }

    func testResumeAndJobsRefuseAFIFOCorpusAtOnce() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = dir + "/text.txt", fifo = dir + "/fifo"
        try String(repeating: "the time traveller was expounding a recondite matter to us. ", count: 40).write(
            toFile: text, atomically: true, encoding: .utf8)
        try makeFIFO(fifo)
        let trainer = try LanguageModelTrainer(options: options(corpus: text))
        try trainer.train(shouldStop: { trainer.step >= 1 })
        let checkpoint = try trainer.checkpoint()
        // The checkpoint now names a FIFO (a hostile or stale file): refused, naming why, without opening it for long.
        let edited = try checkpoint.replacingTraining(
            try editingJSON(checkpoint.training, ["corpus": fifo], in: "options"))
        let start = monotonicSeconds()
        XCTAssertThrowsError(try LanguageModelTrainer(resumingFrom: edited)) {
            XCTAssertTrue("\($0)".contains("not a regular file") && "\($0)".contains("checkpoint"), "\($0)")
            XCTAssertFalse("\($0)".contains("\n"))
        }
        // Every process of a job reads the corpus: a FIFO is refused before any process waits on it.
        let job = ThreadedJob(count: 2)
        XCTAssertThrowsError(
            try LanguageModelTrainer(options: options(corpus: fifo), reducer: ThreadedJob.Reducer(job: job, rank: 0))
        ) {
            XCTAssertTrue("\($0)".contains("not a regular file") && "\($0)".contains("every process"), "\($0)")
        }
        XCTAssertLessThan(monotonicSeconds() - start, 10, "nothing waited on the FIFO")
        // One process may still read a stream it was given.
        XCTAssertEqual(try loadTextFile(at: text, allowStreams: false).count, 60 * 40)
    }

    /// A writer that opens a FIFO before its reader does (`cat text > fifo & rnn train --corpus fifo`) is read, not
    /// waited for: a first open without blocking, then a blocking one, lost a writer that wrote and left in between,
    /// and the second open waited for ever (about 1 run in 5; found while fuzzing, #30).
    func testAFIFOWhoseWriterCameFirstIsRead() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = String(repeating: "the time machine ", count: 100)
        for round in 0..<30 {
            let fifo = dir + "/fifo\(round)"
            XCTAssertEqual(mkfifo(fifo, 0o644), 0)
            let written = DispatchSemaphore(value: 0), read = DispatchSemaphore(value: 0)
            Thread {
                let fd = open(fifo, O_WRONLY)  // waits for the reader
                _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
                close(fd)
                written.signal()
            }.start()
            usleep(20_000)  // the writer is waiting in open
            let box = ReadResult()
            Thread {
                box.result = Result { try loadTextFile(at: fifo) }
                read.signal()
            }.start()
            guard read.wait(timeout: .now() + 10) == .success else {
                close(open(fifo, O_WRONLY))  // a writer that leaves at once frees the stuck reader
                _ = read.wait(timeout: .now() + 10)
                return XCTFail("round \(round): the reader waits for a writer that has already written")
            }
            XCTAssertEqual(try box.result?.get(), text, "round \(round)")
            XCTAssertEqual(written.wait(timeout: .now() + 10), .success)
        }
    }
}

/// What a reader thread returns to the test.
private final class ReadResult: @unchecked Sendable {
    var result: Result<String, Error>?
}
