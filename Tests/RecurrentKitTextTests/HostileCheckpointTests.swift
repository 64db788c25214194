import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Hostile training metadata, divergence, symlinked temporaries and concurrent writers: a one-line error or a bounded
/// run, never a trap or a hang, and the previous checkpoint still loads.
final class HostileCheckpointTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("rk-hostile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func smallOptions() -> TrainingOptions {
        var o = TrainingOptions()
        o.cell = .gru
        o.hiddenSize = 8
        o.numLayers = 2
        o.dropout = 0.1
        o.optimizer = .adam
        o.learningRate = 0.01
        o.epochs = 3
        o.sampleEvery = 0
        o.maxTokens = 2000
        o.batchSize = 4
        o.numSteps = 6
        return o
    }

    /// A real checkpoint stopped in the middle of its second epoch.
    func realCheckpoint() throws -> Checkpoint {
        let trainer = try LanguageModelTrainer(options: smallOptions())
        let perEpoch = trainer.minibatchesPerEpoch
        try trainer.train(shouldStop: { trainer.step >= perEpoch + 3 })
        return try trainer.checkpoint()
    }

    // MARK: - Structured fuzzer

    /// Every leaf of a JSON value with its path (object keys and array indices).
    private func leaves(_ value: Any, path: [Any] = []) -> [[Any]] {
        if let object = value as? [String: Any] {
            return [path] + object.keys.sorted().flatMap { leaves(object[$0]!, path: path + [$0]) }
        }
        if let array = value as? [Any] {
            return [path] + array.indices.flatMap { leaves(array[$0], path: path + [$0]) }
        }
        return [path]
    }

    /// `root` with the value at `path` replaced (nil removes an object key).
    private func replacing(_ root: Any, at path: ArraySlice<Any>, with replacement: Any?) -> Any? {
        guard let head = path.first else { return replacement }
        if var object = root as? [String: Any], let key = head as? String {
            object[key] = replacing(object[key] as Any, at: path.dropFirst(), with: replacement)
            return object
        }
        if var array = root as? [Any], let index = head as? Int, array.indices.contains(index) {
            if let value = replacing(array[index], at: path.dropFirst(), with: replacement) {
                array[index] = value
            } else {
                array.remove(at: index)
            }
            return array
        }
        return root
    }

    private let hostileValues: [Any?] = [
        nil, NSNull(), 0, -1, 1, 2, 7, Int.max, Int.min, Int.max - 1, 1 << 62, 1 << 31, 1e308, -1e308, 1e-308, 0.5,
        -0.5,
        "inf", "-inf", "nan", "", "0", "-1", "18446744073709551615", "99999999999999999999999",
        String(repeating: "9", count: 400),
        true, false, [Any](), [String: Any](), ["0", "0", "0", "0"], [0, 0, 0, 0], ["1"], "lstm", "bogus",
    ]

    /// Mutates the `training` metadata of a real checkpoint field by field (one or two fields per mutant) and sends
    /// each mutant through parse, resume and three updates. Any trap fails the whole test process; a hang is caught by
    /// the watchdog; an error must be a one-line ``RecurrentKitError``. `RK_FUZZ_MUTANTS` sets the count (long runs).
    func testStructuredMetadataFuzzer() throws {
        let count = ProcessInfo.processInfo.environment["RK_FUZZ_MUTANTS"].flatMap(Int.init) ?? 300
        let base = try realCheckpoint()
        let json = try JSONSerialization.jsonObject(with: Data(base.training.utf8), options: [.fragmentsAllowed])
        let paths = leaves(json)
        XCTAssertGreaterThan(paths.count, 40, "the metadata has many fields")
        /// Everything the worker thread uses; the main thread reads it only after `done` is signalled.
        final class State: @unchecked Sendable {
            var generator: SeededGenerator
            var stats = (resumed: 0, refused: 0, unclear: [String]())
            let base: Checkpoint, json: Any, paths: [[Any]], hostileValues: [Any?]
            let replacing: (Any, ArraySlice<Any>, Any?) -> Any?
            init(
                seed: UInt64, base: Checkpoint, json: Any, paths: [[Any]], hostileValues: [Any?],
                replacing: @escaping (Any, ArraySlice<Any>, Any?) -> Any?
            ) {
                generator = SeededGenerator(seed: seed)
                self.base = base; self.json = json; self.paths = paths; self.hostileValues = hostileValues;
                self.replacing = replacing
            }
        }
        let state = State(
            seed: UInt64(count), base: base, json: json, paths: paths, hostileValues: hostileValues,
            replacing: { [unowned self] in self.replacing($0, at: $1, with: $2) })
        let done = DispatchSemaphore(value: 0)
        var failure: String? = nil
        let worker = Thread {
            let (base, json, paths, hostileValues) = (state.base, state.json, state.paths, state.hostileValues)
            defer { done.signal() }
            for _ in 0..<count {
                var mutant: Any = json
                for _ in 0..<(1 + state.generator.nextInt(below: 2)) {
                    let path = paths[state.generator.nextInt(below: paths.count)]
                    let value = hostileValues[state.generator.nextInt(below: hostileValues.count)]
                    mutant = state.replacing(mutant, path[...], value) ?? mutant
                }
                guard let data = try? JSONSerialization.data(withJSONObject: mutant, options: [.fragmentsAllowed])
                else { continue }
                do {
                    let checkpoint = try Checkpoint(
                        model: base.model, vocabulary: base.vocabulary, training: String(decoding: data, as: UTF8.self),
                        extraTensors: base.extraTensors, extraDoubleTensors: base.extraDoubleTensors)
                    let parsed = try Checkpoint.parse(try checkpoint.serialized())
                    let trainer = try LanguageModelTrainer(resumingFrom: parsed)
                    let start = trainer.step
                    try trainer.train(shouldStop: { trainer.step >= start + 3 })
                    _ = try trainer.checkpoint().serialized()  // what it would save must be savable
                    state.stats.resumed += 1
                } catch let error as RecurrentKitError {
                    state.stats.refused += 1
                    if error.message.isEmpty || error.message.contains("\n") {
                        state.stats.unclear.append(error.message)
                    }
                } catch {
                    state.stats.unclear.append("\(type(of: error)): \(error)")
                }
            }
        }
        worker.stackSize = 16 << 20
        worker.start()
        if done.wait(timeout: .now() + .seconds(max(120, count / 5))) == .timedOut {
            failure = "a mutant hangs (watchdog)"
        }
        let stats = state.stats
        XCTAssertNil(failure)
        XCTAssertEqual(stats.unclear, [], "unclear errors")
        XCTAssertGreaterThan(stats.refused, count / 4, "most hostile fields are refused")
        print(
            "metadata fuzzer: \(count) mutants, \(stats.resumed) resumed and ran 3 updates, \(stats.refused) refused "
                + "with one line, \(stats.unclear.count) unclear, 0 crashes, 0 hangs"
        )
    }

    // MARK: - Classes from the issue, one test each

    func testCountersNearIntMaxAreRefused() throws {
        let base = try realCheckpoint()
        for (field, value) in [
            ("step", "9223372036854775807"), ("tokenCount", "9223372036854775000"),
            ("optimizerSteps", "9223372036854775807"),
            ("skippedSteps", "-5"), ("elapsedSeconds", "1e308"), ("epochSeconds", "\"inf\""), ("lossSum", "\"nan\""),
            ("epoch", "4611686018427387904"), ("doneInEpoch", "1000000"),
        ] {
            let mutated = try replacingField(field, with: value, in: base.training)
            let checkpoint = try Checkpoint(
                model: base.model, vocabulary: base.vocabulary, training: mutated,
                extraTensors: base.extraTensors, extraDoubleTensors: base.extraDoubleTensors)
            XCTAssertThrowsError(try LanguageModelTrainer(resumingFrom: checkpoint), field) { error in
                XCTAssertTrue("\(error)".contains(field), "\(field): \(error)")
            }
        }
        // Options from the file are validated like the command line's.
        for (field, value) in [
            ("epochs", "4611686018427387904"), ("timeLimitSeconds", "\"inf\""), ("sampleLength", "9223372036854775807"),
        ] {
            let mutated = try replacingField(field, with: value, in: base.training)
            let checkpoint = try Checkpoint(
                model: base.model, vocabulary: base.vocabulary, training: mutated,
                extraTensors: base.extraTensors, extraDoubleTensors: base.extraDoubleTensors)
            XCTAssertThrowsError(try LanguageModelTrainer(resumingFrom: checkpoint), field)
        }
    }

    func testAllZeroGeneratorStateIsRefusedAndNeverLoops() throws {
        let base = try realCheckpoint()
        for field in ["dataGenerator", "epochStartGenerator", "dropoutGenerator"] {
            let mutated = try replacingField(field, with: "[\"0\",\"0\",\"0\",\"0\"]", in: base.training)
            let checkpoint = try Checkpoint(
                model: base.model, vocabulary: base.vocabulary, training: mutated,
                extraTensors: base.extraTensors, extraDoubleTensors: base.extraDoubleTensors)
            XCTAssertThrowsError(try LanguageModelTrainer(resumingFrom: checkpoint)) {
                XCTAssertTrue("\($0)".contains("all zeros"), "\($0)")
            }
        }
        // The library type itself never enters the absorbing state.
        var g = SeededGenerator(state: (0, 0, 0, 0))
        XCTAssertNotEqual(g.next(), 0)
        _ = g.nextInt(below: 3)
    }

    func testDivergenceStopsWithTheLastGoodCheckpointAndNonFiniteMetricsSave() throws {
        var o = smallOptions()
        o.optimizer = .sgd
        o.learningRate = 1e30
        o.clip = 0
        let trainer = try LanguageModelTrainer(options: o)
        XCTAssertThrowsError(try trainer.train()) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("training stopped") && message.contains("update"), message)
            XCTAssertFalse(message.contains("\n"))
        }
        // With skipNonFinite the run goes on, and its inf/NaN history saves, loads and resumes.
        o.skipNonFinite = true
        o.epochs = 2
        let skipping = try LanguageModelTrainer(options: o)
        try skipping.train()
        XCTAssertTrue(skipping.history.contains { !$0.trainPerplexity.isFinite })
        let path = folder + "/diverged.safetensors"
        try skipping.checkpoint().save(to: path)
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.load(from: path))
        XCTAssertEqual(resumed.history.count, skipping.history.count)
        XCTAssertTrue(resumed.history.contains { !$0.trainPerplexity.isFinite }, "the non-finite history is kept")
    }

    /// Huge but finite moments (an edited or damaged file) resume, and the run they drive to overflow says that it
    /// stopped on the first updates after resuming, naming the checkpoint's state as a cause, not only the rate.
    func testDivergenceRightAfterResumingNamesTheCheckpoint() throws {
        let trainer = try LanguageModelTrainer(options: smallOptions())
        XCTAssertFalse(try trainer.train(shouldStop: { trainer.step >= 5 }))
        let path = folder + "/huge-moments.safetensors"
        try trainer.checkpoint().save(to: path)
        var file = try SafetensorsFile(contentsOfFile: path)
        let entry = try XCTUnwrap(file.tensors["_trainer.optimizer.exp_avg"])
        try file.add("_trainer.optimizer.exp_avg", Tensor<Double>(shape: entry.shape) { 1e30 }, as: entry.dtype)
        try file.write(toFile: path)
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.load(from: path))  // finite: it loads
        XCTAssertThrowsError(try resumed.train()) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("after resuming at update \(trainer.step)"), message)
            XCTAssertTrue(message.contains("optimizer state may be damaged"), message)
            XCTAssertFalse(message.contains("\n"))
        }
    }

    func testFormatVersions() throws {
        let trainer = try LanguageModelTrainer(options: smallOptions())
        try trainer.train(shouldStop: { trainer.step >= 1 })
        let bytes = try trainer.checkpoint().serialized()
        let current = try Checkpoint.parse(bytes)
        XCTAssertEqual(current.fileFormatVersion, Checkpoint.formatVersion)
        XCTAssertEqual(current.writtenByVersion, RecurrentKitVersion.string)
        XCTAssertEqual(current.savedKernelLevel, Kernels.activeLevel)
        func parse(_ edit: (inout SafetensorsFile) -> Void) throws -> Checkpoint {
            try checkpoint(bytes, editedBy: edit)
        }
        func refused(_ fragment: String, _ edit: (inout SafetensorsFile) -> Void) {
            XCTAssertThrowsError(try parse(edit)) { XCTAssertTrue("\($0)".contains(fragment), "\($0)") }
        }
        // Today's v1 files (RecurrentKit 0.1, Scripts/interchange) and files without a format entry still load.
        let v1 = try parse {
            $0.metadata["format"] = "recurrentkit.checkpoint.v1"; $0.metadata["kernel_level"] = nil;
            $0.metadata["library_version"] = nil
        }
        XCTAssertEqual(v1.fileFormatVersion, 1)
        XCTAssertNil(v1.savedKernelLevel)
        XCTAssertNil(v1.writtenByVersion)
        XCTAssertEqual(try LanguageModelTrainer(resumingFrom: v1).step, trainer.step)
        XCTAssertEqual(try parse { $0.metadata["format"] = nil }.fileFormatVersion, 1)
        // A version 1 file's validationFraction (always written then, 0.1) applied in raw mode only: a d2l-mode run
        // resumes without a validation split, exactly as it was trained; in a version 2 file it is honoured.
        XCTAssertEqual(trainer.options.textMode, .d2l)
        let withFraction = try replacingField("validationFraction", with: "0.1", in: current.training)
        for (format, split) in [("recurrentkit.checkpoint.v1", false), (Checkpoint.formatName, true)] {
            let resumed = try LanguageModelTrainer(
                resumingFrom: try parse {
                    $0.metadata["format"] = format
                    $0.metadata["training"] = withFraction
                })
            XCTAssertEqual(!resumed.corpus.validationTokens.isEmpty, split, format)
        }
        // A newer version, a foreign format, and a v2 file without its fields are refused by name.
        refused("newer RecurrentKit") {
            $0.metadata["format"] = "recurrentkit.checkpoint.v\(Checkpoint.formatVersion + 1)"
        }
        refused("optimizer.stepCount") { $0.metadata["optimizer.stepCount"] = "-1" }
        refused("newer RecurrentKit") {
            $0.metadata["format"] =
                "recurrentkit.checkpoint.v99999999999999999999" == "" ? "" : "recurrentkit.checkpoint.v\(Int.max)"
        }
        for format in [
            "recurrentkit.checkpoint.v0", "recurrentkit.checkpoint.v-1", "recurrentkit.checkpoint.vX",
            "recurrentkit.parameters.v1", "",
        ] {
            refused("not a RecurrentKit checkpoint") { $0.metadata["format"] = format }
        }
        refused("kernel_level") { $0.metadata["kernel_level"] = nil }
        refused("kernel_level") { $0.metadata["kernel_level"] = "SSE9" }
        refused("library_version") { $0.metadata["library_version"] = nil }
        refused("library_version") { $0.metadata["library_version"] = "0.2 0" }
    }

    func testHostileProjectionAndBiasFields() throws {
        var options = smallOptions()
        options.cell = .lstm
        options.projectionSize = 3
        let trainer = try LanguageModelTrainer(options: options)
        try trainer.train(shouldStop: { trainer.step >= 1 })
        let bytes = try trainer.checkpoint().serialized()
        XCTAssertEqual(try Checkpoint.parse(bytes).model.configuration.projectionSize, 3)
        func edited(_ key: String, _ value: Any?, in field: String) throws -> Checkpoint {
            try checkpoint(bytes) {
                $0.metadata[field] = try editingJSON(
                    $0.metadata[field]!, [key: value], in: field == "training" ? "options" : nil)
            }
        }
        // Model metadata: out of range, of the wrong type, or inconsistent with the tensors: one line each, never a
        // trap.
        for value: Any? in [-1, 0, options.hiddenSize, Int.max, "3", 2.5, NSNull(), nil, 2] {
            XCTAssertThrowsError(
                try edited("projectionSize", value, in: "model"), "projectionSize \(String(describing: value))"
            ) { error in
                XCTAssertTrue(error is RecurrentKitError && !"\(error)".contains("\n"), "\(error)")
            }
        }
        XCTAssertThrowsError(try edited("cell", "gru", in: "model"))
        XCTAssertThrowsError(try edited("bias", false, in: "model"))  // the file has bias tensors
        // Training metadata: the same fields are checked before a model is built.
        for (key, value) in [
            ("projectionSize", -4), ("projectionSize", 1 << 40), ("projectionSize", 2), ("recurrentBias", false),
            ("recurrentBias", 7),
        ] as [(String, Any)] {
            XCTAssertThrowsError(
                try LanguageModelTrainer(resumingFrom: try edited(key, value, in: "training")), "\(key) \(value)"
            ) { error in
                XCTAssertTrue(error is RecurrentKitError && !"\(error)".contains("\n"), "\(error)")
            }
        }
    }

    func testTimeLimitOverridesTheCheckpoint() throws {
        var o = smallOptions()
        o.epochs = 1_000_000
        let trainer = try LanguageModelTrainer(options: o)
        try trainer.train(shouldStop: { trainer.step >= 2 })
        let resumed = try LanguageModelTrainer(
            resumingFrom: try Checkpoint.parse(try trainer.checkpoint().serialized()))
        XCTAssertNil(resumed.options.timeLimitSeconds)
        XCTAssertEqual(resumed.savedKernelLevel, Kernels.activeLevel.name)
        // A file of 0.1 (no kernel level recorded) still resumes; a made-up level is refused.
        let base = try trainer.checkpoint()
        let old = try base.replacingTraining(try editingJSON(base.training, ["kernelLevel": nil]))
        XCTAssertNil(try LanguageModelTrainer(resumingFrom: old).savedKernelLevel)
        XCTAssertThrowsError(
            try LanguageModelTrainer(
                resumingFrom: try base.replacingTraining(
                    try replacingField("kernelLevel", with: "\"SSE9\\nx\"", in: base.training))))
        try resumed.setTimeLimit(0.3)
        let start = Date()
        XCTAssertFalse(try resumed.train())
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
        XCTAssertThrowsError(try resumed.setTimeLimit(.infinity))
    }

    func testSymlinkedTemporaryIsNotWrittenThrough() throws {
        let victim = folder + "/victim.txt"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        let target = folder + "/out.txt"
        try FileManager.default.createSymbolicLink(
            atPath: folder + "/.out.txt.tmp-\(getpid())", withDestinationPath: victim)
        try writeFileAtomically(Array("new".utf8), to: target)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "new")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/.out.txt.tmp-\(getpid())"))
    }

    func testSecondWriterOfAFolderIsRefusedAndStaleTemporariesGo() throws {
        // A temporary of a process that no longer exists, just written (younger than the unlocked 10-minute rule).
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stale = folder + "/.model.safetensors.tmp-\(dead)"
        try Data(count: 1000).write(to: URL(fileURLWithPath: stale))
        var first: OutputFolderLock? = try OutputFolderLock(folder: folder, staleTemporariesOf: ["model.safetensors"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertThrowsError(try OutputFolderLock(folder: folder)) { error in
            XCTAssertTrue("\(error)".contains("in use") && "\(error)".contains("pid \(getpid())"), "\(error)")
        }
        XCTAssertNotNil(first)
        first = nil
        _ = try OutputFolderLock(folder: folder)  // released with the first
    }

    func testSpecialFilesAreRefusedOrReadBounded() throws {
        XCTAssertThrowsError(try Checkpoint.load(from: "/dev/zero")) {
            XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)")
        }
        XCTAssertThrowsError(try loadTextFile(at: "/dev/null")) { XCTAssertTrue("\($0)".contains("empty"), "\($0)") }
        XCTAssertThrowsError(try loadTextFile(at: "/dev/zero", maximumBytes: 1 << 20)) {
            XCTAssertTrue("\($0)".contains("longer than"), "\($0)")
        }
        XCTAssertThrowsError(try loadTextFile(at: "/proc/self/mem")) {
            XCTAssertFalse("\($0)".contains("NSCocoa"), "\($0)")
        }
        // A FIFO: refused at once as a checkpoint; read to its end as a corpus.
        let fifo = folder + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertThrowsError(try Checkpoint.load(from: fifo)) { XCTAssertTrue("\($0)".contains("FIFO"), "\($0)") }
        let text = String(repeating: "the time machine ", count: 1000)
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            close(fd)
        }
        writer.start()
        XCTAssertEqual(try loadTextFile(at: fifo), text)
    }

    func testHugeModelIsRefusedWithItsMemory() throws {
        var o = smallOptions()
        o.cell = .rnnTanh
        o.hiddenSize = 46_000
        o.numLayers = 1
        o.optimizer = .adam
        XCTAssertThrowsError(try LanguageModelTrainer(options: o)) { error in
            XCTAssertTrue("\(error)".contains("memory") && "\(error)".contains("bytes"), "\(error)")
        }
        XCTAssertNil(o.estimatedMemoryBytes(vocabularySize: 1 << 24, chunkLength: Int.max / 2))
    }

    func testDecodingIsLinear() throws {
        let vocabulary = try Vocabulary(tokens: ["<unk>", "a", "b"], mode: .d2l)
        let indices = (0..<2_000_000).map { $0 % 3 }
        let start = Date()
        let text = try vocabulary.decode(indices)
        XCTAssertEqual(text.utf8.count, 2_000_000 / 3 * 7 + 6)
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)  // quadratic took minutes at this length
    }

    func testOptimizerStateOfAnotherSizeIsRefused() throws {
        var layout = ParameterLayout()
        layout.append("w", shape: [3])
        let store = ParameterStore<Float>(layout: layout)
        let adam = try Adam()
        try adam.restore(stateBuffers: ["exp_avg": [0, 0], "exp_avg_sq": [0, 0]], stepCount: 5)
        XCTAssertThrowsError(try adam.step(store)) { XCTAssertTrue("\($0)".contains("another model"), "\($0)") }
        let sgd = try SGD(learningRate: 0.1, momentum: 0.9, dampening: 0.5)
        try sgd.restore(stateBuffers: [:], stepCount: 4)  // a step count without its momentum buffer
        XCTAssertThrowsError(try sgd.step(store))
        XCTAssertThrowsError(try adam.restore(stateBuffers: ["exp_avg": [.nan], "exp_avg_sq": [0]], stepCount: 1))
        XCTAssertThrowsError(try adam.restore(stateBuffers: ["bogus": [0]], stepCount: 1))
        XCTAssertThrowsError(try sgd.restore(stateBuffers: [:], stepCount: -1))
        let fresh = try Adam()
        try fresh.step(store)  // a fresh optimizer sizes its state from the store
        XCTAssertEqual(fresh.stateBuffers["exp_avg"]?.count, store.count)
    }

    /// The training JSON with one top-level (or `options`) field's value replaced by raw JSON text.
    private func replacingField(_ field: String, with raw: String, in training: String) throws -> String {
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(training.utf8)) as? [String: Any])
        let value = try JSONSerialization.jsonObject(with: Data(raw.utf8), options: [.fragmentsAllowed])
        return try editingJSON(training, [field: value], in: object[field] != nil ? nil : "options")
    }
}
