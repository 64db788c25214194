import Foundation
import RecurrentKitTestSupport
import XCTest
import RecurrentKit
import RecurrentKitText

/// The `rnn` binary end to end: a clear one-line error and a non-zero exit for each bad input.
final class CommandLineTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("rk-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// The `rnn` executable next to the test bundle (swift test builds every product).
    var binary: URL { rnnBinary() }

    @discardableResult
    func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let result = try runRNN(arguments)
        XCTAssertFalse(result.timedOut, "rnn \(arguments.joined(separator: " ")) was killed after 600 s")
        return (result.status, result.out, result.err)
    }

    func assertFails(
        _ arguments: [String], mentioning fragment: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let result = try run(arguments)
        XCTAssertNotEqual(result.status, 0, "\(arguments) should fail", file: file, line: line)
        let lines = result.err.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line expected, got: \(result.err)", file: file, line: line)
        XCTAssertTrue(
            result.err.contains(fragment), "'\(result.err)' should mention '\(fragment)'", file: file, line: line)
        XCTAssertFalse(result.err.contains("Fatal error"), file: file, line: line)
    }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let path = folder + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func testBadInputsGetOneClearLine() throws {
        let out = ["--output", folder + "/run"]
        try assertFails(["train", "--corpus", write("empty.txt", [])] + out, mentioning: "empty")
        try assertFails(
            ["train", "--corpus", write("short.txt", Array("a short text".utf8))] + out, mentioning: "too short")
        try assertFails(
            ["train", "--corpus", write("latin1.txt", [0x63, 0x61, 0x66, 0xE9, 0x0A])] + out, mentioning: "UTF-8")
        try assertFails(["train", "--corpus", folder + "/nope.txt"] + out, mentioning: "does not exist")
        try assertFails(["train", "--hidden", "0"] + out, mentioning: "hidden")
        try assertFails(["train", "--cell", "transformer"] + out, mentioning: "transformer")
        try assertFails(["train", "--lr=-1"] + out, mentioning: "lr")
        try assertFails(["train", "--dropout", "1.5"] + out, mentioning: "dropout")
        try assertFails(["train", "--preset", "gpt"] + out, mentioning: "preset")
        // Choices are the library's enums: the one line names the option and every value.
        try assertFails(
            ["train", "--preset", "gpt"] + out,
            mentioning:
                "d2l-rnn, d2l-rnn-random, d2l-gru, d2l-lstm, d2l-deep-lstm, shakespeare-lstm, shakespeare-lstm-large")
        try assertFails(["train", "--optimizer", "lion"] + out, mentioning: "'sgd', 'adam', 'adamw' or 'rmsprop'")
        try assertFails(["train", "--bptt", "half"] + out, mentioning: "--bptt")
        try assertFails(
            ["sample", "--checkpoint", "x", "--weight-precision", "half"], mentioning: "'float32', 'bfloat16' or 'int8'"
        )
        try assertFails(["bench", "--rows", "some"], mentioning: "--rows")
        try assertFails(
            ["analyze", "--cell", "gpt"], mentioning: "'rnn_tanh', 'rnn_relu', 'rnn_linear', 'gru' or 'lstm'")
        try assertFails(["train", "--hidden", "abc"] + out, mentioning: "hidden")
        try assertFails(["train", "--threads", "0"] + out, mentioning: "threads")
        try assertFails(["train", "--recompute-interval", "10"] + out, mentioning: "multiple of 16")
        try assertFails(["sample", "--checkpoint", folder + "/missing.safetensors"], mentioning: "does not exist")
        try assertFails(
            ["sample", "--checkpoint", write("junk.safetensors", Array(repeating: 7, count: 100))],
            mentioning: "safetensors")
        try assertFails(["eval", "--checkpoint", folder], mentioning: "folder")
        try assertFails(["gradcheck", "--hidden-size=-3"], mentioning: "hiddenSize")
        try assertFails(["gradcheck", "--hidden=-3"], mentioning: "hiddenSize")
    }

    /// The model's options are one group with one spelling in every command that builds a model, and a command refuses
    /// those it has no use for instead of ignoring them.
    func testModelOptionsAreOneGroupAndNeverIgnored() throws {
        let old = try run(["gradcheck", "--cell", "gru", "--hidden-size", "3", "--layers", "1"])
        XCTAssertEqual(old.status, 0, old.err)
        XCTAssertTrue(old.out.contains("H=3 layers=1"), old.out)
        XCTAssertEqual(old.err, "note: --hidden-size is the old spelling of --hidden; use --hidden\n")
        let new = try run(["gradcheck", "--cell", "gru", "--hidden", "3", "--layers", "1", "--no-bias"])
        XCTAssertEqual(new.status, 0, new.err)
        XCTAssertTrue(new.out.contains("H=3 layers=1 B=3 T=6 chunks=1 no-bias"), new.out)
        try assertFails(["gradcheck", "--hidden", "3", "--hidden-size", "3"], mentioning: "--hidden once")
        try assertFails(["gradcheck", "--embedding", "4"], mentioning: "--embedding is not used by rnn gradcheck")
        try assertFails(["probe", "--projection", "4"], mentioning: "--projection is not used by rnn probe")
        try assertFails(["task", "adding", "--layers", "2"], mentioning: "--layers is not used")
        try assertFails(["compare-bptt", "--dropout", "0.1"], mentioning: "--dropout is not used")
        try assertFails(["analyze", "--demo", "--cell", "gru"], mentioning: "--demo")
        let fixture = Fixture.directory.appendingPathComponent("interchange/lstm_l2_emb8.safetensors").path
        try assertFails(
            ["train", "--init-from", fixture, "--hidden", "32", "--epochs", "1", "--output", folder + "/init"],
            mentioning: "--hidden cannot be given: --init-from takes the checkpoint's model shape")
        try assertFails(["analyze", "--checkpoint", fixture, "--layers", "2"], mentioning: "--layers cannot be given")
    }

    func testTrainSampleEvalRoundTrip() throws {
        let run1 = folder + "/run"
        let trained = try run([
            "train", "--preset", "d2l-gru", "--hidden", "16", "--epochs", "1", "--sample-every", "1",
            "--sample-length", "10", "--output", run1,
        ])
        XCTAssertEqual(trained.status, 0, trained.err)
        XCTAssertTrue(trained.out.contains("epoch 1 ppl"), trained.out)
        XCTAssertTrue(trained.out.contains("> time traveller"), trained.out)
        for file in ["model.safetensors", "metrics.jsonl", "perplexity.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run1 + "/" + file), file)
        }
        let checkpoint = run1 + "/model.safetensors"
        let sampled = try run([
            "sample", "--checkpoint", checkpoint, "--prefix", "the time", "--length", "20", "--seed", "3",
        ])
        XCTAssertEqual(sampled.status, 0, sampled.err)
        XCTAssertTrue(sampled.out.hasPrefix("the time"))
        XCTAssertEqual(sampled.out.trimmingCharacters(in: .newlines).count, 28)
        // d2l mode maps unknown characters to <unk> instead of failing.
        let unknown = try run([
            "sample", "--checkpoint", checkpoint, "--prefix", "Zé!", "--length", "5", "--temperature", "0",
        ])
        XCTAssertEqual(unknown.status, 0, unknown.err)
        let evaluated = try run([
            "eval", "--checkpoint", checkpoint, "--text",
            write("eval.txt", Array("The Time Traveller (for so it will be convenient to speak of him)".utf8)),
        ])
        XCTAssertEqual(evaluated.status, 0, evaluated.err)
        XCTAssertTrue(evaluated.out.contains("bits per character"))
        // bfloat16 weights: the same length of text, and a perplexity within 1% of the Float one on the same stream.
        let compact = try run([
            "sample", "--checkpoint", checkpoint, "--prefix", "the time", "--length", "20", "--weight-precision",
            "bf16",
        ])
        XCTAssertEqual(compact.status, 0, compact.err)
        XCTAssertEqual(compact.out.trimmingCharacters(in: .newlines).count, 28)
        func perplexityLine(_ arguments: [String]) throws -> Double {
            let result = try run(["eval", "--checkpoint", checkpoint, "--max-chars", "3000"] + arguments)
            XCTAssertEqual(result.status, 0, result.err)
            let line = result.out.split(separator: "\n").first { $0.hasPrefix("perplexity ") } ?? ""
            return Double(line.dropFirst("perplexity ".count).prefix { $0 != " " }) ?? .nan  // "perplexity X (setting)"
        }
        let floatPerplexity = try perplexityLine(["--batch", "1"]),
            compactPerplexity = try perplexityLine(["--weight-precision", "bfloat16"])
        XCTAssertEqual(compactPerplexity, floatPerplexity, accuracy: 0.01 * floatPerplexity)
        try assertFails(["sample", "--checkpoint", checkpoint, "--weight-precision", "fp8"], mentioning: "precision")
        // --precision, the old spelling of --weight-precision here (and of --product-precision in train), still works:
        // the same output, and one line on stderr naming the new spelling. Both spellings at once are refused.
        let old = try run([
            "sample", "--checkpoint", checkpoint, "--prefix", "the time", "--length", "20", "--precision", "bf16",
        ])
        XCTAssertEqual(old.status, 0, old.err)
        XCTAssertEqual(old.out, compact.out)
        XCTAssertEqual(old.err, "note: --precision is the old spelling of --weight-precision; use --weight-precision\n")
        try assertFails(
            ["sample", "--checkpoint", checkpoint, "--precision", "bf16", "--weight-precision", "bf16"],
            mentioning: "--weight-precision once")
        try assertFails(
            ["train", "--precision", "bf16", "--product-precision", "bf16", "--epochs", "1"],
            mentioning: "--product-precision once")
        // Memory-efficient BPTT may be switched on when resuming (it never changes the gradients).
        let resumed = try run(["train", "--resume", checkpoint, "--recompute-interval", "16"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        try assertFails(["train", "--resume", checkpoint, "--recompute-interval", "20"], mentioning: "multiple of 16")
        try assertFails(["sample", "--checkpoint", checkpoint, "--prefix", ""], mentioning: "prefix")
        try assertFails(["sample", "--checkpoint", checkpoint, "--temperature=-1"], mentioning: "temperature")
        try assertFails(
            ["eval", "--checkpoint", checkpoint, "--text", write("one.txt", Array("a".utf8))], mentioning: "at least 2")
    }

    func testTrainingStartsFromAPyTorchExportedCheckpoint() throws {
        let fixture = Fixture.directory.appendingPathComponent("interchange/lstm_l2_emb8.safetensors").path
        let result = try run([
            "train", "--init-from", fixture, "--epochs", "1", "--sample-every", "0", "--output", folder + "/init",
        ])
        XCTAssertEqual(result.status, 0, result.err)
        XCTAssertTrue(result.out.contains("starting from the weights"), result.out)
        XCTAssertTrue(result.out.contains("model lstm H="), result.out)
        try assertFails(
            [
                "train", "--init-from", fixture, "--corpus", "tinyshakespeare", "--text-mode", "raw", "--output",
                folder + "/init2",
            ],
            mentioning: "vocabulary")
    }

    func testRawModeRejectsUnknownPrefixCharacters() throws {
        let run1 = folder + "/raw"
        let text = String(repeating: "abc abd. ", count: 400)
        let trained = try run([
            "train", "--corpus", write("abc.txt", Array(text.utf8)), "--text-mode", "raw", "--hidden", "8",
            "--epochs", "1", "--batch", "4", "--steps", "8", "--sample-every", "0", "--output", run1,
        ])
        XCTAssertEqual(trained.status, 0, trained.err)
        XCTAssertTrue(trained.out.contains("val ppl"), trained.out)
        try assertFails(["sample", "--checkpoint", run1 + "/model.safetensors", "--prefix", "abz"], mentioning: "'z'")
    }
}

extension CommandLineTests {
    func start(_ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        return (process, out)
    }

    func testInterruptSavesAndExitsZero() throws {
        let run1 = folder + "/interrupt"
        let (process, out) = try start([
            "train", "--preset", "d2l-lstm", "--hidden", "24", "--epochs", "100000", "--sample-every", "0", "--output",
            run1,
        ])
        Thread.sleep(forTimeInterval: 2.0)
        process.interrupt()  // SIGINT: finish the update, save, exit 0
        process.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("stopped at update"), text)
        XCTAssertTrue(text.contains("--resume"), text)
        let resumed = try run(["sample", "--checkpoint", run1 + "/model.safetensors", "--length", "5"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
    }

    func testKillDuringSavesNeverLeavesABrokenCheckpoint() throws {
        // Save after every update and SIGKILL at arbitrary moments: the file is always a complete, loadable checkpoint.
        let run1 = folder + "/kill"
        var loadedAfterKill = 0
        for delay in [0.6, 0.9, 1.3, 1.7] {
            let (process, _) = try start([
                "train", "--preset", "d2l-gru", "--hidden", "32", "--epochs", "100000", "--checkpoint-every", "1",
                "--sample-every", "0", "--output", run1,
            ])
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let path = run1 + "/model.safetensors"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let check = try run([
                "eval", "--checkpoint", path, "--text", write("probe.txt", Array("the time machine".utf8)),
            ])
            XCTAssertEqual(check.status, 0, "checkpoint after SIGKILL at \(delay)s: \(check.err)")
            loadedAfterKill += 1
        }
        XCTAssertGreaterThan(loadedAfterKill, 0, "at least one run should have saved before being killed")
    }

    /// Runs `rnn` in a child process and kills it after `seconds`: a hang becomes a failure, not a stuck test run.
    func runBounded(
        _ arguments: [String], seconds: Double = 60
    ) throws -> (status: Int32, out: String, err: String, timedOut: Bool) {
        try runRNN(arguments, seconds: seconds)
    }

    func assertFailsBounded(
        _ arguments: [String], mentioning fragment: String, seconds: Double = 60,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let result = try runBounded(arguments, seconds: seconds)
        XCTAssertFalse(result.timedOut, "\(arguments) hangs", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "\(arguments) should fail", file: file, line: line)
        XCTAssertEqual(
            result.err.split(separator: "\n").count, 1, "one line expected, got: \(result.err)", file: file, line: line)
        XCTAssertTrue(
            result.err.contains(fragment), "'\(result.err)' should mention '\(fragment)'", file: file, line: line)
    }

    func testExtremeValuesAndSpecialFilesNeverTrapOrHang() throws {
        let out = ["--output", folder + "/extreme"]
        try assertFailsBounded(["train", "--epochs", "9223372036854775807"] + out, mentioning: "epochs")
        try assertFailsBounded(["train", "--sample-length", "9223372036854775807"] + out, mentioning: "sample-length")
        try assertFailsBounded(["train", "--sample-length", "1000000000000"] + out, mentioning: "sample-length")
        try assertFailsBounded(["train", "--time-limit", "inf"] + out, mentioning: "time-limit")
        for tolerance in ["nan", "0", "-1"] {
            try assertFailsBounded(["gradcheck", "--tolerance=\(tolerance)"], mentioning: "tolerance")
        }
        try assertFailsBounded(
            ["sample", "--length", "9223372036854775807", "--checkpoint", "x"], mentioning: "length")
        try assertFailsBounded(["train", "--hidden", "46000", "--optimizer", "adam"] + out, mentioning: "memory")
        // Special files: refused at once as checkpoints, read (bounded) as corpora.
        let fifo = folder + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        try assertFailsBounded(["sample", "--checkpoint", "/dev/zero"], mentioning: "not a regular file", seconds: 20)
        try assertFailsBounded(
            ["sample", "--checkpoint", "/dev/urandom"], mentioning: "not a regular file", seconds: 20)
        try assertFailsBounded(["sample", "--checkpoint", fifo], mentioning: "FIFO", seconds: 20)
        try assertFailsBounded(["train", "--resume", fifo], mentioning: "FIFO", seconds: 20)
        try assertFailsBounded(["train", "--init-from", fifo] + out, mentioning: "FIFO", seconds: 20)
        try assertFailsBounded(["train", "--corpus", "/dev/null"] + out, mentioning: "empty", seconds: 20)
        try assertFailsBounded(
            ["train", "--corpus", "/proc/self/mem"] + out, mentioning: "/proc/self/mem", seconds: 20)
        try assertFailsBounded(["eval", "--checkpoint", "/dev/zero"], mentioning: "not a regular file", seconds: 20)
    }

    func testSecondTrainerOnAFolderIsRefusedAndTheFirstSaves() throws {
        let run1 = folder + "/shared"
        let (first, _) = try start([
            "train", "--hidden", "16", "--epochs", "100000", "--sample-every", "0", "--output", run1,
        ])
        // Wait until the first trainer holds the lock (its pid is in the lock file), however slow the machine.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline,
            (try? String(contentsOfFile: run1 + "/.rnn.lock", encoding: .utf8))?.contains("\(first.processIdentifier)")
                != true
        {
            Thread.sleep(forTimeInterval: 0.05)
        }
        try assertFailsBounded(
            ["train", "--hidden", "16", "--epochs", "1", "--output", run1], mentioning: "in use by another training run"
        )
        // The lock is the folder's: deleting the pid file frees nothing, and `import` into the folder waits its turn
        // too.
        try FileManager.default.removeItem(atPath: run1 + "/.rnn.lock")
        try assertFailsBounded(
            ["train", "--hidden", "16", "--epochs", "1", "--output", run1], mentioning: "in use by another training run"
        )
        var g = SeededGenerator(seed: 1)
        let onnx = folder + "/tiny.onnx"
        try ONNX.export(
            try LanguageModel<Float>(.init(vocabularySize: 28, cell: .gru, hiddenSize: 4), generator: &g),
            vocabulary: try PreparedCorpus.prepare(text: EmbeddedCorpus.timeMachine.text, mode: .d2l).vocabulary,
            to: onnx)
        try assertFailsBounded(
            ["import", onnx, run1 + "/model.safetensors"], mentioning: "in use by another training run")
        first.interrupt()
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)
        XCTAssertEqual(try run(["sample", "--checkpoint", run1 + "/model.safetensors", "--length", "3"]).status, 0)
    }

    func testResumeHonoursTimeLimitAndDivergenceKeepsTheLastGoodCheckpoint() throws {
        // A run with no time limit and a million epochs, interrupted: resuming it with --time-limit ends on time.
        let run1 = folder + "/unbounded"
        let (process, _) = try start([
            "train", "--hidden", "16", "--epochs", "1000000", "--sample-every", "0", "--output", run1,
        ])
        Thread.sleep(forTimeInterval: 1.5)
        process.interrupt()
        process.waitUntilExit()
        let checkpoint = run1 + "/model.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        let resumed = try runBounded(["train", "--resume", checkpoint, "--time-limit", "1"], seconds: 60)
        XCTAssertFalse(resumed.timedOut)
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertTrue(resumed.out.contains("stopped at update"), resumed.out)
        // Divergence into a folder that holds a good checkpoint: one line naming the update, and the file unchanged.
        let good = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        XCTAssertNotEqual(good, before)
        try assertFailsBounded(
            ["train", "--hidden", "16", "--lr", "1e30", "--clip", "0", "--epochs", "3", "--output", run1],
            mentioning: "training stopped")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), good)
        XCTAssertEqual(try run(["sample", "--checkpoint", checkpoint, "--length", "3"]).status, 0)
    }

    /// A bf16 run resumed where its products are computed on the other path (dot instructions against widened, here
    /// by editing what the checkpoint records) says it continues correctly but not bit for bit; a Float run, whose
    /// products do not use that path, and a bf16 run on its own path say nothing of it.
    func testResumeNotesAnotherBFloat16Path() throws {
        func trainAndEdit(_ name: String, _ precision: String) throws -> String {
            let out = folder + "/" + name
            let first = try run([
                "train", "--preset", "d2l-rnn", "--epochs", "1", "--max-tokens", "2000", "--sample-every", "0",
                "--product-precision", precision, "--output", out,
            ])
            XCTAssertEqual(first.status, 0, first.err)
            let path = out + "/model.safetensors"
            var file = try SafetensorsFile(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            let training = try XCTUnwrap(file.metadata["training"])
            XCTAssertTrue(training.contains("\"kernelBFloat16Products\":\"\(Kernels.bfloat16Products)\""), training)
            let other = Kernels.bfloat16Products == "widened" ? "vdpbf16ps" : "widened"
            file.metadata["training"] = try editingJSON(training, ["kernelBFloat16Products": other])
            let edited = out + "/edited.safetensors"
            try Data(try file.serialized()).write(to: URL(fileURLWithPath: edited))
            return edited
        }
        let note = "computed its bf16 products"
        let bf16 = try run(["train", "--resume", try trainAndEdit("bf16", "bf16"), "--epochs", "2"])
        XCTAssertEqual(bf16.status, 0, bf16.err)
        XCTAssertTrue(bf16.out.contains(note), bf16.out)
        XCTAssertTrue(bf16.out.contains("not bit-identical"), bf16.out)
        let float = try run(["train", "--resume", try trainAndEdit("float", "float32"), "--epochs", "2"])
        XCTAssertEqual(float.status, 0, float.err)
        XCTAssertFalse(float.out.contains(note), float.out)
        // The resumed run saved what it continued with: resuming that again notes nothing.
        let same = try run(["train", "--resume", folder + "/bf16/model.safetensors", "--epochs", "3"])
        XCTAssertEqual(same.status, 0, same.err)
        XCTAssertFalse(same.out.contains(note), same.out)
    }

    /// shakespeare-lstm decays its rate by a cosine: the header says so, --warmup and --min-lr-factor adjust it without
    /// --schedule, --schedule constant turns it off, and a preset with a constant rate still refuses them alone.
    func testPresetCosineAndItsOptions() throws {
        // One update, then the time limit (no validation pass over the 111,540-character tail in a debug build).
        let small = ["--epochs", "1", "--max-tokens", "12000", "--sample-every", "0", "--time-limit", "0.001"]
        let tuned = try run(
            ["train", "--preset", "shakespeare-lstm", "--warmup", "2", "--output", folder + "/a"] + small)
        XCTAssertEqual(tuned.status, 0, tuned.err)
        XCTAssertTrue(
            tuned.out.contains(
                "lr=0.004 (warm-up 2 updates, then cosine to 0.1x over the updates the time limit allows)"),
            tuned.out)
        let constant = try run(
            ["train", "--preset", "shakespeare-lstm", "--schedule", "constant", "--output", folder + "/b"] + small)
        XCTAssertEqual(constant.status, 0, constant.err)
        XCTAssertTrue(constant.out.contains("lr=0.004 clip="), constant.out)
        try assertFails(
            ["train", "--preset", "d2l-rnn", "--min-lr-factor", "0.2", "--output", folder + "/c"],
            mentioning: "need --schedule cosine")
    }
}
