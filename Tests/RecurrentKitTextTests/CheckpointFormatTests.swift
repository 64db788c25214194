import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// One file format for every model (CheckpointFormat v3): the parameter file, the generic Trainer's checkpoint and the
/// language model's checkpoint share one layout and one writer, and the formats of 0.1 and 0.2 are still read.
final class CheckpointFormatTests: XCTestCase {
    private typealias Model = Sequential<Chain<Chain<Named<LSTM<Float>>, Named<LastStep<Float>>>, Named<Linear<Float>>>>

    private func sequential(seed: UInt64) throws -> Model {
        var g = SeededGenerator(seed: seed)
        return try Sequential {
            ("lstm", try LSTM<Float>(inputSize: 2, hiddenSize: 5, generator: &g))
            LastStep<Float>()
            ("head", try Linear<Float>(inputSize: 5, outputSize: 2, generator: &g))
        }
    }

    private func step(_ store: ParameterStore<Float>, _ adam: Adam, seed: UInt64) throws {
        for i in 0..<store.count { store.gradients[i] = Float(i % 7) * 0.01 - 0.03 + Float(seed) * 0.001 }
        try adam.step(store)
    }

    /// The three writers give the same layout: format, writer, kernel level, weights by name, optimizer buffers under
    /// `_trainer.optimizer.` with `optimizer.stepCount`, training state in `training`.
    func testEveryWriterUsesOneLayout() throws {
        let model = try sequential(seed: 1)
        let adam = try Adam(learningRate: 0.01)
        try step(model.parameters, adam, seed: 1)
        let parameterFile = try SafetensorsFile(
            bytes: try model.parameters.serialized(metadata: ["model": "mine"], optimizer: adam))

        let trainer = try LanguageModelTrainer(
            options: {
                var o = TrainingPreset.d2lRNN.options
                (o.hiddenSize, o.epochs, o.sampleEvery, o.maxTokens, o.optimizer, o.learningRate) = (
                    8, 3, 0, 2000, .adam, 0.01
                )
                return o
            }())
        try trainer.train(shouldStop: { trainer.step >= 2 })
        let languageModelFile = try SafetensorsFile(bytes: try trainer.checkpoint().serialized())

        for (what, file) in [("parameter file", parameterFile), ("language model checkpoint", languageModelFile)] {
            XCTAssertEqual(file.metadata["format"], "recurrentkit.checkpoint.v3", what)
            XCTAssertEqual(file.metadata["library_version"], RecurrentKitVersion.string, what)
            XCTAssertEqual(file.metadata["kernel_level"], Kernels.activeLevel.name, what)
            XCTAssertEqual(file.metadata["kernel_blocking"], Kernels.blocking.description, what)
            XCTAssertNotNil(file.metadata["model"], what)
            let optimizerTensors = file.tensors.keys.filter { $0.hasPrefix("_trainer.optimizer.") }.sorted()
            XCTAssertEqual(optimizerTensors, ["_trainer.optimizer.exp_avg", "_trainer.optimizer.exp_avg_sq"], what)
            XCTAssertTrue(file.tensors.keys.allSatisfy { $0.hasPrefix("_trainer.") || !$0.hasPrefix("_") }, what)
        }
        XCTAssertEqual(parameterFile.metadata["optimizer.stepCount"], "1")
        XCTAssertEqual(languageModelFile.metadata["optimizer.stepCount"], "2")
        XCTAssertNotNil(languageModelFile.metadata["training"])
        // Any RecurrentKit file's weights load into a store of that model: the language model's checkpoint included,
        // with its optimizer state.
        let copy = try LanguageModel<Float>(trainer.model.configuration)
        let resumedAdam = try Adam(learningRate: 0.01)
        try copy.parameters.load(serialized: try languageModelFile.serialized(), optimizer: resumedAdam)
        XCTAssertEqual(resumedAdam.stepCount, 2)
        XCTAssertEqual(resumedAdam.stateBuffers, trainer.optimizer.stateBuffers)
        XCTAssertTrue(
            (0..<copy.parameters.count).allSatisfy { copy.parameters.values[$0] == trainer.model.parameters.values[$0] }
        )
    }

    /// A parameter file of 0.2 (`recurrentkit.parameters.v1`, optimizer buffers `_optimizer.*`) and a language-model
    /// checkpoint of format 2 (step count in the training state) load with their optimizer state.
    func testEarlierFormatsLoadWithTheirOptimizerState() throws {
        let model = try sequential(seed: 1)
        let adam = try Adam(learningRate: 0.01)
        for s in 0..<3 { try step(model.parameters, adam, seed: UInt64(s)) }
        var file = try SafetensorsFile(bytes: try model.parameters.serialized(optimizer: adam))
        file.metadata = ["format": "recurrentkit.parameters.v1", "optimizer.stepCount": "3"]
        for name in Array(file.tensors.keys) where name.hasPrefix("_trainer.optimizer.") {
            file.tensors["_optimizer." + name.dropFirst("_trainer.optimizer.".count)] = file.tensors[name]
            file.tensors[name] = nil
        }
        let old = try file.serialized()
        let other = try sequential(seed: 2), otherAdam = try Adam(learningRate: 0.01)
        try other.parameters.load(serialized: old, optimizer: otherAdam)
        XCTAssertEqual(otherAdam.stepCount, 3)
        XCTAssertEqual(otherAdam.stateBuffers, adam.stateBuffers)
        // The loaders of state_dicts skip training tensors of every version.
        XCTAssertEqual(
            try other.parameters.loadStateDict(try SafetensorsFile(bytes: old)).loadedKeys.count,
            model.parameters.entries.count)

        // Format 2: optimizerSteps in the training JSON, no optimizer.stepCount.
        var lm = try SafetensorsFile(bytes: try model.parameters.serialized(optimizer: adam))
        lm.metadata = ["format": "recurrentkit.checkpoint.v2", "training": "{\"optimizerSteps\": 3, \"step\": 3}"]
        let v2Adam = try Adam(learningRate: 0.01)
        try other.parameters.load(serialized: try lm.serialized(), optimizer: v2Adam)
        XCTAssertEqual(v2Adam.stepCount, 3)
        // A newer version and a foreign format are refused by name.
        lm.metadata["format"] = "recurrentkit.checkpoint.v4"
        XCTAssertThrowsError(try other.parameters.load(serialized: try lm.serialized())) {
            XCTAssertTrue("\($0)".contains("newer RecurrentKit"), "\($0)")
        }
        lm.metadata["format"] = "something.else"
        XCTAssertThrowsError(try other.parameters.load(serialized: try lm.serialized())) {
            XCTAssertTrue("\($0)".contains("not a RecurrentKit checkpoint"), "\($0)")
        }
    }

    /// The generic Trainer writes its state under `training`, reads the key of its earlier files, and names what a
    /// language model's checkpoint is when given one.
    func testTrainerStateKeyAndForeignStates() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rk-format-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func make() throws -> Trainer<Model, WindowBatches<Float>> {
            let series = try Tensor<Float>(
                shape: [200, 2], scalars: (0..<400).map { i in Float(sin(Double(i) * 0.1)) })
            let windows = try SlidingWindows(series: series, window: 8, horizon: 1)
            let data = try WindowBatches(windows, batchSize: 16, seed: 3)
            let loss = MeanSquaredErrorLoss<Float>()
            return try Trainer(
                model: try sequential(seed: 1), optimizer: try Adam(learningRate: 0.01), data: data,
                options: TrainerOptions(epochs: 2, clip: 1)
            ) { try loss($0, $1) }
        }
        let trainer = try make()
        try trainer.train(shouldStop: { trainer.step >= 3 })
        let path = folder + "/run.safetensors"
        try trainer.save(to: path, metadata: ["model": "lstm 2 -> 5 -> 2"])
        var file = try SafetensorsFile(bytes: try readFileBytes(path))
        XCTAssertNotNil(file.metadata["training"])
        XCTAssertNil(file.metadata["trainer.state"])
        XCTAssertThrowsError(try trainer.save(to: path, metadata: ["training": "x"]))
        // The key of this trainer's earlier files.
        file.metadata["trainer.state"] = file.metadata["training"]
        file.metadata["training"] = nil
        let earlier = folder + "/earlier.safetensors"
        try writeFileAtomically(try file.serialized(), to: earlier)
        let resumed = try make()
        try resumed.restore(from: earlier)
        XCTAssertEqual(resumed.step, trainer.step)
        // A language model's training state is not a Trainer's.
        file.metadata["trainer.state"] = nil
        file.metadata["training"] = "{\"optimizerSteps\": 3, \"epoch\": 1}"
        try writeFileAtomically(try file.serialized(), to: earlier)
        XCTAssertThrowsError(try make().restore(from: earlier)) {
            XCTAssertTrue("\($0)".contains("LanguageModelTrainer"), "\($0)")
        }
    }
}
