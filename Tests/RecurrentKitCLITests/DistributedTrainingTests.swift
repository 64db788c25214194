import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// `rnn train` under `mpirun`: the same run as one process, a collective stop on SIGTERM that resumes exactly, a
/// killed process that ends the whole job with the last checkpoint intact, and one-line errors.
///
/// These run the release `rnn` named by `RK_RNN_BINARY` under the `mpirun` on the PATH (`.ci/run` installs Open MPI
/// and sets it); without them they are skipped.
final class DistributedTrainingTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("rk-mpi-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// The release `rnn` and `mpirun`, or a skip.
    func tools() throws -> (rnn: String, mpirun: String) {
        guard let rnn = ProcessInfo.processInfo.environment["RK_RNN_BINARY"],
            FileManager.default.isExecutableFile(atPath: rnn)
        else {
            throw XCTSkip("set RK_RNN_BINARY to a release rnn to run the mpirun tests (.ci/run does)")
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard
            let mpirun = path.split(separator: ":").map({ $0 + "/mpirun" }).first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            throw XCTSkip("mpirun is not installed (Debian: apt install openmpi-bin)")
        }
        return (rnn, mpirun)
    }

    /// Starts `rnn train arguments` alone (processes 1) or under `mpirun -np processes`.
    func start(
        _ processes: Int, _ arguments: [String], environment: [String: String] = [:]
    ) throws -> (Process, Pipe, Pipe) {
        let (rnn, mpirun) = try tools()
        let process = Process()
        if processes == 1 {
            process.executableURL = URL(fileURLWithPath: rnn)
            process.arguments = ["train"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: mpirun)
            process.arguments =
                ["--allow-run-as-root", "--oversubscribe", "-np", "\(processes)", rnn, "train"] + arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    @discardableResult
    func train(
        _ processes: Int, _ arguments: [String], environment: [String: String] = [:]
    ) throws -> (status: Int32, out: String, err: String) {
        let (process, out, err) = try start(processes, arguments, environment: environment)
        let outData = out.fileHandleForReading.readDataToEndOfFile(),
            errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outData, as: UTF8.self),
            String(decoding: errData, as: UTF8.self)
        )
    }

    func weights(_ path: String) throws -> [String: [Float]] {
        let checkpoint = try Checkpoint.load(from: path)
        var result: [String: [Float]] = [:]
        for e in checkpoint.model.parameters.entries {
            result[e.name] = try checkpoint.model.parameters.tensor(e.name).scalars
        }
        return result
    }

    func epochLosses(_ folder: String) throws -> [Double] {
        let text = try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try text.split(separator: "\n").map {
            try decoder.decode(EpochReport.self, from: Data($0.utf8)).trainPerplexity
        }.map { Foundation.log($0) }
    }

    /// 2 and 3 processes (an uneven split of 32 rows) against one, 24 updates of d2l-rnn (SGD) and of a 2-layer LSTM
    /// with dropout and Adam: each epoch's mean loss within 1e-5 relative, weights within 1e-5.
    func testTwoAndThreeProcessesMatchOne() throws {
        _ = try tools()
        let runs: [(String, [String])] = [
            ("d2l-rnn", []),
            (
                "lstm-dropout-adam",
                [
                    "--cell", "lstm", "--layers", "2", "--hidden", "64", "--dropout", "0.3", "--optimizer", "adam",
                    "--lr", "0.01",
                ]
            ),
        ]
        for (name, options) in runs {
            // The d2l text (10,000 tokens, 8 updates per epoch): 24 updates.
            let common = options + ["--epochs", "3", "--sample-every", "0"]
            var reference: (losses: [Double], weights: [String: [Float]])? = nil
            for processes in [1, 2, 3] {
                let output = folder + "/\(name)-\(processes)"
                let result = try train(processes, common + ["--output", output])
                XCTAssertEqual(result.status, 0, "\(name) x\(processes): \(result.err)")
                if processes > 1 { XCTAssertTrue(result.out.contains("MPI: \(processes) processes"), result.out) }
                let losses = try epochLosses(output), w = try weights(output + "/model.safetensors")
                guard let reference else { reference = (losses, w); continue }
                XCTAssertEqual(losses.count, 3)
                for (a, b) in zip(losses, reference.losses) {
                    XCTAssertEqual(a, b, accuracy: 1e-5 * b, "\(name) x\(processes): epoch loss")
                }
                for (key, values) in reference.weights {
                    let worst = zip(values, w[key]!).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThan(worst, 1e-5, "\(name) x\(processes): \(key)")
                }
            }
        }
    }

    /// SIGTERM to one process of a 2-process job: every process stops after the same update, rank 0 saves, the job
    /// exits 0; resuming under mpirun gives the weights of the uninterrupted job bit for bit.
    func testSigtermToOneProcessStopsTheJobAndResumesExactly() throws {
        _ = try tools()
        let common = [
            "--cell", "lstm", "--layers", "2", "--hidden", "128", "--dropout", "0.2", "--optimizer", "adam", "--lr",
            "0.005",
            "--max-tokens", "60000", "--epochs", "6", "--sample-every", "0", "--threads", "1",
        ]
        let whole = try train(2, common + ["--output", folder + "/whole"])
        XCTAssertEqual(whole.status, 0, whole.err)
        let (job, out, err) = try start(2, common + ["--output", folder + "/cut"])
        // Wait until training runs (its first checkpoint is not needed), then signal rank 1 alone.
        Thread.sleep(forTimeInterval: 1.5)
        let ranks = childProcesses(of: job.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "mpirun's children: \(ranks)")
        guard let last = ranks.max() else { return }
        kill(last, SIGTERM)
        let outText = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        job.waitUntilExit()
        XCTAssertEqual(job.terminationStatus, 0, errText)
        XCTAssertTrue(outText.contains("stopped at update"), outText)
        let resumed = try train(2, ["--resume", folder + "/cut/model.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.out.contains("resuming"), resumed.out)
        XCTAssertEqual(try weights(folder + "/cut/model.safetensors"), try weights(folder + "/whole/model.safetensors"))
    }

    /// A process killed with SIGKILL mid-run: mpirun ends the whole job (none stays blocked in the allreduce), the
    /// last checkpoint is intact and resumes.
    func testKilledProcessEndsTheJobAndTheCheckpointSurvives() throws {
        _ = try tools()
        let output = folder + "/killed"
        let arguments = [
            "--cell", "gru", "--hidden", "256", "--max-tokens", "60000", "--epochs", "50", "--sample-every", "0",
            "--checkpoint-every", "5", "--output", output,
        ]
        let (job, out, err) = try start(2, arguments)
        let checkpoint = output + "/model.safetensors"
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint), "no checkpoint within 60 s")
        Thread.sleep(forTimeInterval: 0.3)
        let ranks = childProcesses(of: job.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "mpirun's children: \(ranks)")
        if let victim = ranks.max() { kill(victim, SIGKILL) }
        let ended = Date().addingTimeInterval(60)
        while job.isRunning && Date() < ended { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(job.isRunning, "mpirun still runs 60 s after a process was killed")
        if job.isRunning { job.terminate(); for pid in ranks { kill(pid, SIGKILL) } }
        _ = out.fileHandleForReading.readDataToEndOfFile()
        _ = err.fileHandleForReading.readDataToEndOfFile()
        job.waitUntilExit()
        XCTAssertNotEqual(job.terminationStatus, 0)
        for pid in ranks { XCTAssertFalse(isAlive(pid), "process \(pid) outlived the job") }
        let saved = try Checkpoint.load(from: checkpoint)  // intact: written atomically
        let step = try LanguageModelTrainer(resumingFrom: saved).step
        XCTAssertEqual(step % 5, 0)
        let resumed = try train(2, ["--resume", checkpoint, "--time-limit", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.out.contains("resuming \(checkpoint) at update \(step)"), resumed.out)
    }

    /// More processes than batch rows, and MPI asked for but not loadable: one line on stderr, non-zero exit.
    func testOneLineErrors() throws {
        let tooMany = try train(3, ["--batch", "2", "--max-tokens", "2000", "--output", folder + "/many"])
        XCTAssertNotEqual(tooMany.status, 0)
        XCTAssertTrue(
            tooMany.err.contains(
                "rnn: error: 3 processes need a batch of at least 3 rows (one per process); the batch has 2"),
            tooMany.err)
        // Every process meets it; rank 0 reports it and its MPI_Abort ends the others before they do.
        XCTAssertEqual(tooMany.err.components(separatedBy: "rnn: error:").count - 1, 1, tooMany.err)
        XCTAssertEqual(tooMany.out, "", "nothing on stdout, not even a terminal's line clearing")
        // The launcher's environment without a loadable library (no mpirun needed).
        let missing = try train(
            1, ["--max-tokens", "2000", "--output", folder + "/missing"],
            environment: ["OMPI_COMM_WORLD_SIZE": "2", "RK_MPI_LIBRARY": folder + "/no-such-libmpi.so"])
        XCTAssertEqual(missing.status, 1)
        let lines = missing.err.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, missing.err)
        XCTAssertTrue(
            missing.err.hasPrefix(
                "rnn: error: MPI: cannot load the MPI library \(folder)/no-such-libmpi.so named by RK_MPI_LIBRARY"),
            missing.err)
    }

    /// Whether process `pid` exists and is not a zombie (a container's init may never reap an orphan).
    func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first.map { $0 != "Z" && $0 != "X" } ?? false
    }

    /// Child process IDs of `pid` (from /proc; the ranks mpirun started on this host).
    func childProcesses(of pid: Int32) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }.sorted()
    }
}
