import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Issue #30, item 4: bounds on every count, resume counters checked against each other, impossible optimizer and
/// state buffers refused at load by name, ONNX constants that are non-finite or contradict the imported model refused,
/// stop handlers installed before anything is written, and negative numbers accepted as option values.
final class HostileInputTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder =
            FileManager.default.temporaryDirectory.appendingPathComponent("rk-hostile-input-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    // MARK: - Helpers

    /// The `rnn` executable next to the test bundle (as in `CommandLineTests`).
    var binary: URL { rnnBinary() }

    /// Runs `rnn`, killing it after `timeout` seconds (a missing bound becomes a failure, not a stuck test run).
    @discardableResult
    func run(
        _ arguments: [String], timeout: Double = 120, file: StaticString = #filePath, line: UInt = #line
    ) throws -> (status: Int32, out: String, err: String) {
        let result = try runRNN(arguments, seconds: timeout)
        if result.timedOut {
            XCTFail("rnn \(arguments.joined(separator: " ")) still ran after \(timeout) s", file: file, line: line)
        }
        return (result.status, result.out, result.err)
    }

    func assertFails(
        _ arguments: [String], mentioning fragments: [String], timeout: Double = 60, file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let result = try run(arguments, timeout: timeout, file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "\(arguments) should fail", file: file, line: line)
        XCTAssertEqual(
            result.err.split(separator: "\n").count, 1, "one line expected, got: \(result.err)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(
                result.err.contains(fragment), "'\(result.err)' should mention '\(fragment)'", file: file, line: line)
        }
    }

    func smallOptions() -> TrainingOptions {
        var o = TrainingOptions()
        o.cell = .gru
        o.hiddenSize = 8
        o.numLayers = 2
        o.optimizer = .adam
        o.learningRate = 0.01
        o.epochs = 3
        o.sampleEvery = 0
        o.maxTokens = 2000
        o.batchSize = 4
        o.numSteps = 6
        return o
    }

    /// `checkpoint` with its training metadata edited (fields of the top-level object; nil removes one).
    func editing(
        _ checkpoint: Checkpoint, _ fields: [String: Any?], tensors: [String: Tensor<Float>?] = [:],
        doubleTensors: [String: Tensor<Double>?] = [:]
    ) throws -> Checkpoint {
        var extra = checkpoint.extraTensors, extra64 = checkpoint.extraDoubleTensors
        for (name, tensor) in tensors { extra[name] = tensor }
        for (name, tensor) in doubleTensors { extra64[name] = tensor }
        return try Checkpoint(
            model: checkpoint.model, vocabulary: checkpoint.vocabulary,
            training: try editingJSON(checkpoint.training, fields), extraTensors: extra, extraDoubleTensors: extra64)
    }

    func field(_ checkpoint: Checkpoint, _ name: String) throws -> Any? {
        (try JSONSerialization.jsonObject(with: Data(checkpoint.training.utf8)) as! [String: Any])[name]
    }

    /// Resuming `checkpoint` (through save and load, as `rnn train --resume` does) fails naming every fragment.
    func assertResumeRefused(
        _ checkpoint: Checkpoint, mentioning fragments: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(
            try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try checkpoint.serialized())), file: file,
            line: line
        ) { error in
            let message = "\(error)"
            for fragment in fragments {
                XCTAssertTrue(
                    message.contains(fragment), "'\(message)' should mention '\(fragment)'", file: file, line: line)
            }
            XCTAssertFalse(message.contains("\n"), file: file, line: line)
            XCTAssertFalse(
                message.contains("learning rate"), "a bad file is not a divergence: \(message)", file: file, line: line)
        }
    }

    // MARK: - Bounds on every count

    func testAddingTaskBoundsEveryCount() throws {
        // 2^31 updates ran until killed; now every count is refused at once with its range.
        try assertFails(
            ["task", "adding", "--updates", "2147483648"], mentioning: ["updates", "2147483648", "1...1000000"])
        try assertFails(["task", "adding", "--updates", "9223372036854775807"], mentioning: ["updates"])
        try assertFails(["task", "adding", "--updates", "0"], mentioning: ["updates"])
        try assertFails(["task", "adding", "--evaluate-every", "0"], mentioning: ["evaluate-every"])
        try assertFails(["task", "adding", "--evaluate-every", "4611686018427387904"], mentioning: ["evaluate-every"])
        try assertFails(["task", "adding", "--hidden", "100000"], mentioning: ["hidden", "65536"])
        try assertFails(["task", "adding", "--hidden", "0"], mentioning: ["hidden"])
        try assertFails(["task", "adding", "--length", "1000000000"], mentioning: ["length"])
        try assertFails(["task", "adding", "--batch", "1000000000"], mentioning: ["batch"])
        // A model too large for the memory is refused with the bytes it needs, before anything is allocated.
        try assertFails(["task", "adding", "--hidden", "65536", "--cell", "lstm"], mentioning: ["memory", "bytes"])
        // The bounds leave ordinary runs alone.
        let small = try run([
            "task", "adding", "--length", "5", "--hidden", "4", "--updates", "3", "--batch", "2", "--evaluate-every",
            "3",
        ])
        XCTAssertEqual(small.status, 0, small.err)
        XCTAssertTrue(small.out.contains("final test MSE"), small.out)
    }

    // MARK: - Negative numbers as option values

    func testNegativeNumbersAreOptionValues() throws {
        let out = ["--output", folder + "/neg"]
        // As two words the range check speaks, not the parser's "Missing value".
        try assertFails(["train", "--lr", "-1"] + out, mentioning: ["invalid lr -1"])
        try assertFails(["train", "--lr", "-1e-3"] + out, mentioning: ["invalid lr -0.001"])
        try assertFails(["train", "--time-limit", "-inf"] + out, mentioning: ["time-limit"])
        try assertFails(["train", "--cell", "lstm", "--forget-bias", "-200"] + out, mentioning: ["forget-bias"])
        try assertFails(["train", "--epochs", "-5"] + out, mentioning: ["invalid epochs -5"])
        try assertFails(["task", "adding", "--lr", "-1"], mentioning: ["lr", "-1"])
        try assertFails(["task", "adding", "--updates", "-3"], mentioning: ["invalid updates -3"])
        try assertFails(["gradcheck", "--hidden-size", "-3"], mentioning: ["hiddenSize"])
        for arguments in [["train", "--lr", "-1"] + out, ["task", "adding", "--lr", "-1"]] {
            XCTAssertFalse(try run(arguments).err.contains("Missing value"), "\(arguments)")
        }
        // With = as before; a flag followed by a number, a missing value later on, and a number no option takes are
        // the parser's errors, naming the real problem.
        try assertFails(["train", "--lr=-1"] + out, mentioning: ["invalid lr -1"])
        try assertFails(["train", "--no-bias", "-1"] + out, mentioning: ["--no-bias", "-1"])
        try assertFails(["task", "adding", "--lr", "-0.5", "--updates"], mentioning: ["Missing value for '--updates"])
        try assertFails(["task", "adding", "-7"], mentioning: ["-7"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/neg/model.safetensors"))
    }

    /// Rates read back from a checkpoint print whatever they are: a tokens/s beyond Int's range in the history (a
    /// hostile or hand-edited file) trapped the summary line after the resumed run had saved (found by Scripts/fuzz).
    func testRatesBeyondIntInTheHistoryPrintWithoutTrapping() throws {
        var o = smallOptions()
        o.epochs = 1
        let finished = try LanguageModelTrainer(options: o)
        try finished.train()
        var history = try XCTUnwrap(field(try finished.checkpoint(), "history") as? [[String: Any]])
        history[0]["tokensPerSecond"] = 1.8446744073709552e19
        try FileManager.default.createDirectory(atPath: folder + "/run", withIntermediateDirectories: true)
        let path = folder + "/run/model.safetensors"
        try editing(try finished.checkpoint(), ["history": history]).save(to: path)
        let result = try run(["train", "--resume", path])
        XCTAssertEqual(result.status, 0, result.err)
        XCTAssertTrue(result.out.contains("18446744073709551616 tokens/s"), result.out)
        XCTAssertNoThrow(try Checkpoint.load(from: path))
    }

    // MARK: - Resume counters checked against each other

    /// A real checkpoint stopped three updates into its second epoch.
    func midEpochCheckpoint(_ options: TrainingOptions? = nil) throws -> (Checkpoint, LanguageModelTrainer) {
        let trainer = try LanguageModelTrainer(options: options ?? smallOptions())
        let perEpoch = trainer.minibatchesPerEpoch
        try trainer.train(shouldStop: { trainer.step >= perEpoch + 3 })
        return (try trainer.checkpoint(), trainer)
    }

    func testEveryStateARunWritesResumes() throws {
        // Mid-epoch, between epochs (stopped at an epoch's end), finished, fresh, and with skipped updates.
        let (mid, _) = try midEpochCheckpoint()
        XCTAssertNoThrow(try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try mid.serialized())))

        let fresh = try LanguageModelTrainer(options: smallOptions())
        XCTAssertEqual(
            try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try fresh.checkpoint().serialized())).step, 0)

        let boundary = try LanguageModelTrainer(options: smallOptions())
        var epochs = 0
        try boundary.train(progress: { if case .epoch = $0 { epochs += 1 } }, shouldStop: { epochs >= 1 })
        XCTAssertEqual(boundary.history.count, 1)
        let resumedBoundary = try LanguageModelTrainer(
            resumingFrom: try Checkpoint.parse(try boundary.checkpoint().serialized()))
        XCTAssertEqual(resumedBoundary.step, boundary.step)
        try resumedBoundary.train()
        XCTAssertTrue(resumedBoundary.isFinished)
        XCTAssertNoThrow(
            try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try resumedBoundary.checkpoint().serialized())))

        // SGD with momentum and with none, RMSprop: the optimizer buffers each has after its first update.
        for (optimizer, momentum) in [
            (OptimizerKind.sgd, 0.0), (.sgd, 0.9), (.rmsprop, 0.0), (.rmsprop, 0.5), (.adamw, 0),
        ] {
            var o = smallOptions()
            o.optimizer = optimizer
            o.momentum = momentum
            o.epochs = 1
            let trainer = try LanguageModelTrainer(options: o)
            try trainer.train(shouldStop: { trainer.step >= 2 })
            XCTAssertNoThrow(
                try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try trainer.checkpoint().serialized())),
                "\(optimizer) \(momentum)")
        }

        // Skipped updates (skipNonFinite): every processed minibatch is an update or a skip. A NaN bias makes every
        // loss NaN for a while (those updates are skipped), then the run goes on.
        var o = smallOptions()
        o.skipNonFinite = true
        o.epochs = 2
        let skipping = try LanguageModelTrainer(options: o)
        let perEpoch = skipping.minibatchesPerEpoch
        var processed = 0
        let count: (TrainingEvent) -> Void = { if case .step = $0 { processed += 1 } }
        try skipping.train(progress: count, shouldStop: { processed >= 2 })
        let bias = skipping.model.parameters.entry(named: "output.bias")!.offset
        let saved = skipping.model.parameters.values[bias]
        skipping.model.parameters.values[bias] = .nan
        try skipping.train(progress: count, shouldStop: { processed >= perEpoch - 1 })
        skipping.model.parameters.values[bias] = saved
        try skipping.train(progress: count, shouldStop: { processed >= perEpoch + 4 })
        XCTAssertGreaterThan(skipping.skippedSteps, 0)
        XCTAssertGreaterThan(skipping.step, perEpoch - skipping.skippedSteps)
        XCTAssertEqual(skipping.history.count, 1)
        let resumed = try LanguageModelTrainer(
            resumingFrom: try Checkpoint.parse(try skipping.checkpoint().serialized()))
        XCTAssertEqual(resumed.skippedSteps, skipping.skippedSteps)
        try resumed.train()
        XCTAssertTrue(resumed.isFinished)
        XCTAssertNoThrow(
            try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try resumed.checkpoint().serialized())))
    }

    func testResumeCountersThatNoRunReachesAreRefused() throws {
        let (base, trainer) = try midEpochCheckpoint()
        let step = trainer.step, T = trainer.chunkLength, B = trainer.options.batchSize
        let done = try XCTUnwrap(field(base, "doneInEpoch") as? Int)
        XCTAssertGreaterThanOrEqual(done, 2, "a few updates into the second epoch")
        XCTAssertEqual(try XCTUnwrap(field(base, "tokenCount") as? Int), done * T * B)
        // The issue's examples: optimizerSteps 0 and tokenCount 1 on a checkpoint at a later step.
        assertResumeRefused(
            try editing(base, ["optimizerSteps": 0]), mentioning: ["optimizerSteps", "differs from step \(step)"])
        assertResumeRefused(try editing(base, ["tokenCount": 1]), mentioning: ["tokenCount 1", "multiple"])
        // Counters that are each in range but contradict the others.
        assertResumeRefused(try editing(base, ["tokenCount": (done - 1) * T * B]), mentioning: ["tokenCount"])
        assertResumeRefused(try editing(base, ["tokenCount": 0]), mentioning: ["lossSum"])
        assertResumeRefused(
            try editing(base, ["tokenCount": 0, "lossSum": 0, "normSum": 0]), mentioning: ["tokenCount"])
        assertResumeRefused(try editing(base, ["step": step + 1, "optimizerSteps": step + 1]), mentioning: ["step"])
        assertResumeRefused(try editing(base, ["step": step - 1, "optimizerSteps": step - 1]), mentioning: ["step"])
        assertResumeRefused(try editing(base, ["doneInEpoch": done + 1]), mentioning: ["step"])
        assertResumeRefused(try editing(base, ["doneInEpoch": 0]), mentioning: ["step"])
        assertResumeRefused(try editing(base, ["skippedSteps": 1]), mentioning: ["skippedSteps", "skipNonFinite"])
        assertResumeRefused(try editing(base, ["epoch": 3]), mentioning: ["history"])
        assertResumeRefused(try editing(base, ["history": [Any]()]), mentioning: ["history"])
        var history = try XCTUnwrap(field(base, "history") as? [[String: Any]])
        history[0]["step"] = 1
        assertResumeRefused(try editing(base, ["history": history]), mentioning: ["history[0]"])
        assertResumeRefused(try editing(base, ["stoppedEarly": true]), mentioning: ["stoppedEarly"])
        assertResumeRefused(try editing(base, ["scheduledUpdates": 50]), mentioning: ["scheduledUpdates", "cosine"])
        assertResumeRefused(try editing(base, ["bestValidationStep": 3]), mentioning: ["bestValidationStep"])
        assertResumeRefused(
            try editing(base, ["normSum": 0, "lossSum": 0, "tokenCount": 0, "doneInEpoch": 0]), mentioning: ["step"])
        // After the last epoch nothing is under way.
        let finished = try LanguageModelTrainer(
            options: {
                var o = smallOptions(); o.epochs = 1; return o
            }())
        try finished.train()
        let last = try finished.checkpoint()
        XCTAssertNoThrow(try LanguageModelTrainer(resumingFrom: last))
        assertResumeRefused(try editing(last, ["doneInEpoch": 1]), mentioning: ["doneInEpoch"])
        assertResumeRefused(try editing(last, ["tokenCount": (finished.step - 1) * T * B]), mentioning: ["tokenCount"])
    }

    // MARK: - Optimizer and state buffers

    func testImpossibleBuffersAreRefusedAtLoadNamingTheTensor() throws {
        let (base, trainer) = try midEpochCheckpoint()
        let n = trainer.model.parameters.count
        let h = try XCTUnwrap(base.extraTensors["_trainer.state.h"])
        let exp = try XCTUnwrap(base.extraDoubleTensors["_trainer.optimizer.exp_avg_sq"])
        func refusedAtLoad(
            _ checkpoint: Checkpoint, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line
        ) {
            XCTAssertThrowsError(try Checkpoint.parse(try checkpoint.serialized()), file: file, line: line) { error in
                for fragment in fragments {
                    XCTAssertTrue(
                        "\(error)".contains(fragment), "'\(error)' should mention '\(fragment)'", file: file, line: line
                    )
                }
            }
        }
        for bad in [Float.nan, .infinity, -.infinity] {
            var scalars = h.scalars
            scalars[scalars.count / 2] = bad
            refusedAtLoad(
                try editing(base, [:], tensors: ["_trainer.state.h": try Tensor(shape: h.shape, scalars: scalars)]),
                ["_trainer.state.h", "NaN or infinite"])
        }
        var negative = exp.scalars
        negative[7] = -1e-9
        refusedAtLoad(
            try editing(
                base, [:],
                doubleTensors: ["_trainer.optimizer.exp_avg_sq": try Tensor(shape: exp.shape, scalars: negative)]),
            ["_trainer.optimizer.exp_avg_sq", "negative", "index 7"])
        for name in [
            "_trainer.optimizer.exp_avg", "_trainer.optimizer.exp_avg_sq", "_trainer.optimizer.momentum_buffer",
            "_trainer.optimizer.square_avg",
        ] {
            var values = [Double](repeating: 0, count: n)
            values[n - 1] = .nan
            refusedAtLoad(
                try editing(base, [:], doubleTensors: [name: try Tensor(shape: [n], scalars: values)]),
                [name, "NaN or infinite"])
        }
        // A value beyond Float's range turns infinite in the Float optimizer, and the resumed run saved a state that no
        // longer loads (found by Scripts/fuzz): refused at load; and a run whose state overflowed saves nothing.
        var huge = exp.scalars
        huge[3] = 4e259
        refusedAtLoad(
            try editing(
                base, [:], doubleTensors: ["_trainer.optimizer.exp_avg_sq": try Tensor(shape: exp.shape, scalars: huge)]
            ),
            ["_trainer.optimizer.exp_avg_sq", "index 3", "Float's range"])
        var buffers = trainer.optimizer.stateBuffers
        buffers["exp_avg_sq"]![3] = 4e259
        try trainer.optimizer.restore(stateBuffers: buffers, stepCount: trainer.optimizer.stepCount)
        let step = trainer.step
        try trainer.train(shouldStop: { trainer.step > step })
        XCTAssertEqual(trainer.optimizer.stateBuffers["exp_avg_sq"]![3], .infinity)
        XCTAssertThrowsError(try trainer.checkpoint()) { error in
            for fragment in ["is not saved", "_trainer.optimizer.exp_avg_sq", "NaN or infinite"] {
                XCTAssertTrue("\(error)".contains(fragment), "'\(error)' should mention '\(fragment)'")
            }
        }
        var squares = [Double](repeating: 0, count: n)
        squares[0] = -2
        refusedAtLoad(
            try editing(
                base, [:], doubleTensors: ["_trainer.optimizer.square_avg": try Tensor(shape: [n], scalars: squares)]),
            ["_trainer.optimizer.square_avg", "negative"])
        // An LSTM's carried cell state too.
        var o = smallOptions()
        o.cell = .lstm
        let (lstm, _) = try midEpochCheckpoint(o)
        let c = try XCTUnwrap(lstm.extraTensors["_trainer.state.c"])
        var cells = c.scalars
        cells[0] = .infinity
        refusedAtLoad(
            try editing(lstm, [:], tensors: ["_trainer.state.c": try Tensor(shape: c.shape, scalars: cells)]),
            ["_trainer.state.c"])

        // Buffers this optimizer cannot have after these updates, missing ones, and a cell state for a GRU: refused on
        // resume by name.
        assertResumeRefused(
            try editing(base, [:], doubleTensors: ["_trainer.optimizer.exp_avg": nil]),
            mentioning: ["_trainer.optimizer.exp_avg", "adam"])
        assertResumeRefused(
            try editing(
                base, [:],
                doubleTensors: [
                    "_trainer.optimizer.momentum_buffer": try Tensor(
                        shape: [n], scalars: [Double](repeating: 0, count: n))
                ]),
            mentioning: ["_trainer.optimizer.momentum_buffer"])
        assertResumeRefused(
            try editing(
                base, [:],
                tensors: [
                    "_trainer.optimizer.exp_avg": try Tensor(shape: [n], scalars: [Float](repeating: 0, count: n))
                ],
                doubleTensors: ["_trainer.optimizer.exp_avg": nil]),
            mentioning: ["_trainer.optimizer.exp_avg", "F64"])
        assertResumeRefused(
            try editing(
                base, [:], doubleTensors: ["_trainer.optimizer.exp_avg": try Tensor(shape: [3], scalars: [0, 0, 0])]),
            mentioning: ["_trainer.optimizer.exp_avg", "3 values"])
        assertResumeRefused(
            try editing(base, [:], tensors: ["_trainer.state.c": h]), mentioning: ["_trainer.state.c", "gru"])
        let fresh = try LanguageModelTrainer(options: smallOptions()).checkpoint()
        assertResumeRefused(
            try editing(
                fresh, [:], doubleTensors: ["_trainer.optimizer.exp_avg": exp, "_trainer.optimizer.exp_avg_sq": exp]),
            mentioning: ["_trainer.optimizer.exp_avg", "0 update(s)"])

        // Through the command line: one line naming the tensor, not "loss is nan ... try a lower learning rate".
        let path = folder + "/negative.safetensors"
        try editing(
            base, [:], doubleTensors: ["_trainer.optimizer.exp_avg_sq": try Tensor(shape: exp.shape, scalars: negative)]
        ).save(to: path)
        try assertFails(
            ["train", "--resume", path, "--output", folder + "/resumed"],
            mentioning: ["_trainer.optimizer.exp_avg_sq", "negative"])
        let nanState = folder + "/nan-state.safetensors"
        var scalars = h.scalars
        scalars[0] = .nan
        try editing(base, [:], tensors: ["_trainer.state.h": try Tensor(shape: h.shape, scalars: scalars)]).save(
            to: nanState)
        try assertFails(
            ["train", "--resume", nanState, "--output", folder + "/resumed"],
            mentioning: ["_trainer.state.h", "NaN or infinite"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/resumed/model.safetensors"))
    }

    // MARK: - ONNX constants

    typealias Field = (number: Int, value: ProtobufField.Value)

    func fields(_ bytes: ArraySlice<UInt8>) throws -> [Field] {
        var reader = ProtobufReader(bytes)
        return try reader.fields().map { ($0.number, $0.value) }
    }

    func encode(_ fields: [Field]) -> [UInt8] {
        var out: [UInt8] = []
        func varint(_ value: UInt64) {
            var v = value
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        for (number, value) in fields {
            switch value {
            case .varint(let v): varint(UInt64(number) << 3); varint(v)
            case .fixed64(let v): varint(UInt64(number) << 3 | 1); withUnsafeBytes(of: v.littleEndian) { out += $0 }
            case .fixed32(let v): varint(UInt64(number) << 3 | 5); withUnsafeBytes(of: v.littleEndian) { out += $0 }
            case .bytes(let b): varint(UInt64(number) << 3 | 2); varint(UInt64(b.count)); out += b
            }
        }
        return out
    }

    /// `model` with its graph's fields edited.
    func editingGraph(_ model: [UInt8], _ edit: (inout [Field]) throws -> Void) throws -> [UInt8] {
        var top = try fields(model[...])
        for i in top.indices where top[i].number == 7 {
            guard case .bytes(let graph) = top[i].value else { continue }
            var graphFields = try fields(graph)
            try edit(&graphFields)
            top[i].value = .bytes(encode(graphFields)[...])
        }
        return encode(top)
    }

    /// `model` with the initializer `name` rebuilt by `tensor` from its fields.
    func editingInitializer(
        _ model: [UInt8], _ name: String, _ tensor: @escaping (inout [Field]) -> Void
    ) throws -> [UInt8] {
        var found = false
        let edited = try editingGraph(model) { graph in
            for i in graph.indices where graph[i].number == 5 {
                guard case .bytes(let b) = graph[i].value else { continue }
                var t = try fields(b)
                guard
                    t.contains(where: {
                        if $0.number == 8, case .bytes(let n) = $0.value {
                            return String(decoding: n, as: UTF8.self) == name
                        } else {
                            return false
                        }
                    })
                else { continue }
                tensor(&t)
                graph[i].value = .bytes(encode(t)[...])
                found = true
            }
        }
        XCTAssertTrue(found, "no initializer \(name)")
        return edited
    }

    /// Raw little-endian float bytes.
    func rawFloats(_ values: [Float]) -> ProtobufField.Value {
        var raw: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw += $0 } }
        return .bytes(raw[...])
    }

    func rawInts(_ values: [Int]) -> ProtobufField.Value {
        var raw: [UInt8] = []
        for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { raw += $0 } }
        return .bytes(raw[...])
    }

    func setRaw(_ value: ProtobufField.Value) -> (inout [Field]) -> Void {
        { t in t = t.map { $0.number == 9 ? (9, value) : $0 } }
    }

    func assertImportRefused(
        _ bytes: [UInt8], mentioning fragments: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try ONNX.importLanguageModel(bytes), file: file, line: line) { error in
            let message = "\(error)"
            for fragment in fragments {
                XCTAssertTrue(
                    message.contains(fragment), "'\(message)' should mention '\(fragment)'", file: file, line: line)
            }
            XCTAssertFalse(message.contains("\n"), file: file, line: line)
        }
    }

    func testONNXConstantsThatAreNonFiniteOrContradictoryAreRefused() throws {
        var g = SeededGenerator(seed: 30)
        let oneHot = try LanguageModel<Float>(
            .init(vocabularySize: 6, cell: .lstm, hiddenSize: 4, numLayers: 2), generator: &g)
        let bytes = try ONNX.export(oneHot)
        XCTAssertNoThrow(try ONNX.importLanguageModel(bytes))
        let S = 2, H = 4, V = 6

        // Non-finite default states and one-hot values.
        for bad in [Float.nan, .infinity] {
            assertImportRefused(
                try editingInitializer(
                    bytes, "h0", setRaw(rawFloats([0, 0, 0, bad] + [Float](repeating: 0, count: S * H - 4)))),
                mentioning: ["initializer h0", "NaN or infinite"])
            assertImportRefused(
                try editingInitializer(bytes, "c0", setRaw(rawFloats([bad] + [Float](repeating: 0, count: S * H - 1)))),
                mentioning: ["initializer c0", "NaN or infinite"])
            assertImportRefused(
                try editingInitializer(bytes, "onehot.values", setRaw(rawFloats([bad, 1]))),
                mentioning: ["initializer onehot.values", "NaN or infinite"])
        }
        // Finite values the imported model would not compute with: a non-zero default state, other one-hot values or
        // width.
        assertImportRefused(
            try editingInitializer(bytes, "h0", setRaw(rawFloats([Float](repeating: 0, count: S * H - 1) + [0.5]))),
            mentioning: ["initial_h", "initializer h0", "not zero", "0.5"])
        assertImportRefused(
            try editingInitializer(bytes, "c0", setRaw(rawFloats([-1] + [Float](repeating: 0, count: S * H - 1)))),
            mentioning: ["initial_c", "initializer c0", "not zero"])
        assertImportRefused(
            try editingInitializer(bytes, "onehot.values", setRaw(rawFloats([0, 2]))),
            mentioning: ["OneHot", "values", "[0.0, 2.0]"])
        assertImportRefused(
            try editingInitializer(bytes, "onehot.depth", setRaw(rawInts([V + 1]))),
            mentioning: ["OneHot", "depth 7.0", "6"])

        // Contradictory fields: raw_data and float_data both set, values in another type's field.
        assertImportRefused(
            try editingInitializer(bytes, "output.bias") {
                $0.append((4, self.rawFloats([Float](repeating: 1, count: V))))
            },
            mentioning: ["output.bias", "raw_data", "float_data", "contradictory"])
        assertImportRefused(
            try editingInitializer(bytes, "output.bias") { t in
                t.removeAll { $0.number == 9 }
                var packed = ProtobufWriter()
                for _ in 0..<V { packed.varint(1) }
                t.append((7, .bytes(packed.bytes[...])))
            }, mentioning: ["output.bias", "int64_data"])
        assertImportRefused(
            try editingInitializer(bytes, "output.bias") { $0.append((10, .fixed64(Double(1).bitPattern))) },
            mentioning: ["output.bias", "double_data"])

        // A Constant node's value is checked like an initializer (an unconnected one too).
        var nanNode = ProtobufWriter()
        nanNode.string(2, "junk")
        nanNode.string(3, "nan_constant")
        nanNode.string(4, "Constant")
        nanNode.message(5) { a in
            a.string(1, "value_float"); a.float(2, .nan); a.int(20, 1)
        }
        assertImportRefused(
            try editingGraph(bytes) { $0.append((1, .bytes(nanNode.bytes[...]))) },
            mentioning: ["nan_constant", "NaN or infinite"])

        // An embedding model: a weight with NaN is named.
        let embedded = try LanguageModel<Float>(
            .init(vocabularySize: 6, cell: .gru, hiddenSize: 4, embeddingSize: 3), generator: &g)
        let embeddedBytes = try ONNX.export(embedded)
        XCTAssertNoThrow(try ONNX.importLanguageModel(embeddedBytes))
        assertImportRefused(
            try editingInitializer(
                embeddedBytes, "embedding.weight", setRaw(rawFloats([.nan] + [Float](repeating: 0, count: 17)))),
            mentioning: ["embedding.weight", "NaN or infinite"])

        // Through the command line, one line.
        let path = folder + "/bad.onnx"
        _ = FileManager.default.createFile(
            atPath: path,
            contents: Data(
                try editingInitializer(bytes, "h0", setRaw(rawFloats([Float](repeating: .nan, count: S * H))))))
        try assertFails(
            ["import", path, folder + "/imported.safetensors", "--corpus", "timemachine"],
            mentioning: ["h0", "NaN or infinite"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/imported.safetensors"))
    }

    // MARK: - Stop handlers before anything is written

    func testASignalAtAnyMomentOfStartUpNeverLeavesAPartialRun() throws {
        // SIGINT or SIGTERM from the first instant on: before `main` (the dynamic loader's few milliseconds, before any
        // code of rnn runs) the process ends by the signal with nothing written; from `main` on the handlers are in,
        // and the run trains one update, saves a complete checkpoint and exits 0.
        var savedRuns = 0, killedEarly = 0
        let delays: [Double] = [0, 0.001, 0.003, 0.006, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
        for (i, delay) in delays.enumerated() {
            let output = folder + "/signal-\(i)"
            let process = Process()
            process.executableURL = binary
            process.arguments = [
                "train", "--preset", "d2l-gru", "--hidden", "8", "--max-tokens", "3000", "--batch", "4", "--steps", "8",
                "--epochs", "1000", "--sample-every", "0", "--threads", "1", "--output", output,
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            if delay > 0 { usleep(useconds_t(delay * 1_000_000)) }
            kill(process.processIdentifier, i % 2 == 0 ? SIGINT : SIGTERM)
            let deadline = Date().addingTimeInterval(120)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL); process.waitUntilExit();
                XCTFail("still running after a signal at \(delay) s"); continue
            }
            process.waitUntilExit()
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
            if process.terminationReason == .uncaughtSignal {
                killedEarly += 1
                XCTAssertEqual(
                    contents.filter { $0 != ".rnn.lock" }, [],
                    "a process ended by the signal at \(delay) s wrote \(contents)")
            } else {
                XCTAssertEqual(process.terminationStatus, 0, "signal at \(delay) s")
                let checkpoint = try Checkpoint.load(from: output + "/model.safetensors")
                XCTAssertNoThrow(try LanguageModelTrainer(resumingFrom: checkpoint), "signal at \(delay) s")
                savedRuns += 1
            }
        }
        XCTAssertGreaterThan(savedRuns, 0, "the later signals reach the handlers")
        print(
            "signals during start-up: \(savedRuns) runs saved and exited 0, \(killedEarly) ended by the signal before "
                + "main with nothing written"
        )
    }
}
