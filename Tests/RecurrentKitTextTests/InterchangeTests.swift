import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Checkpoints written by PyTorch (Scripts/interchange/make_fixtures.py, torch 2.15.0) load into RecurrentKit
/// and give PyTorch's logits and cross-entropy. Each fixture is `NAME.safetensors` (our checkpoint format, written
/// from a PyTorch `state_dict`) plus `NAME.json` with the text, its tokens, torch's float32 logits (T, V) for the
/// whole text as one row from a zero state, and torch's mean cross-entropy of predicting tokens[1...] from
/// logits[..<T-1].
final class InterchangeTests: XCTestCase {
    private static let directory = Fixture.directory.appendingPathComponent("interchange")

    /// Logits must agree within this (absolute); the cross-entropy within `ceTolerance`.
    private let logitTolerance = 1e-5
    private let ceTolerance = 1e-5

    private struct Case {
        let name: String
        let checkpointPath: String
        let json: [String: Any]
        var text: String { json["text"] as! String }
        var tokens: [Int] { (json["tokens"] as! [Any]).map { ($0 as! NSNumber).intValue } }
        var logits: [[Double]] {
            (json["logits"] as! [Any]).map { ($0 as! [Any]).map { ($0 as! NSNumber).doubleValue } }
        }
        var meanCrossEntropy: Double { (json["mean_cross_entropy"] as! NSNumber).doubleValue }
        var description: [String: Any] { json["case"] as! [String: Any] }
    }

    private func cases() throws -> [Case] {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { file in
            let name = String(file.dropLast(".json".count))
            let data = try Data(contentsOf: Self.directory.appendingPathComponent(file))
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw RecurrentKitError("fixture \(file) is not a JSON object")
            }
            return Case(
                name: name, checkpointPath: Self.directory.appendingPathComponent(name + ".safetensors").path,
                json: json)
        }
    }

    func testEveryCellAndLayerCountIsCovered() throws {
        let all = try cases()
        XCTAssertGreaterThanOrEqual(
            all.count, 7, "fixtures missing in \(Self.directory.path); run Scripts/interchange/make_fixtures.py")
        let cells = Set(all.map { $0.description["cell"] as! String })
        let layers = Set(all.map { ($0.description["numLayers"] as! NSNumber).intValue })
        XCTAssertEqual(cells, ["rnn_tanh", "rnn_relu", "gru", "lstm"])
        XCTAssertTrue(layers.isSuperset(of: [1, 2, 3]), "layer counts \(layers.sorted())")
        XCTAssertTrue(all.contains { $0.description["embeddingSize"] is NSNumber }, "no fixture with an embedding")
    }

    func testPyTorchCheckpointsLoadAndMatchLogits() throws {
        for c in try cases() {
            let checkpoint: Checkpoint
            do { checkpoint = try Checkpoint.load(from: c.checkpointPath) } catch {
                XCTFail("\(c.name): Checkpoint.load failed: \(error)")
                continue
            }
            let configuration = checkpoint.model.configuration
            let d = c.description
            XCTAssertEqual(configuration.cell.rawValue, d["cell"] as? String, c.name)
            XCTAssertEqual(configuration.numLayers, (d["numLayers"] as! NSNumber).intValue, c.name)
            XCTAssertEqual(configuration.hiddenSize, (d["hiddenSize"] as! NSNumber).intValue, c.name)
            XCTAssertEqual(configuration.embeddingSize, (d["embeddingSize"] as? NSNumber)?.intValue, c.name)
            XCTAssertEqual(checkpoint.vocabulary.mode.rawValue, d["vocabularyMode"] as? String, c.name)
            XCTAssertEqual(configuration.bias, d["bias"] as? Bool ?? true, c.name)
            XCTAssertEqual(configuration.bidirectional, d["bidirectional"] as? Bool ?? false, c.name)
            XCTAssertEqual(configuration.projectionSize, (d["projectionSize"] as? NSNumber)?.intValue ?? 0, c.name)
            XCTAssertTrue(checkpoint.extraTensors.isEmpty && checkpoint.extraDoubleTensors.isEmpty, c.name)

            // The text encodes to the stored tokens as `rnn eval` would encode it.
            let prepared = checkpoint.vocabulary.mode == .d2l ? TextPreparation.d2lNormalize(c.text) : c.text
            XCTAssertEqual(prepared, c.text, "\(c.name): fixture text is not already prepared")
            XCTAssertEqual(try checkpoint.vocabulary.encode(prepared), c.tokens, "\(c.name): tokens")

            let tokens = c.tokens, T = tokens.count, V = configuration.vocabularySize
            let expected = c.logits
            XCTAssertEqual(expected.count, T, c.name)
            let logits = try checkpoint.model.logits(inputs: tokens, steps: T, batch: 1)
            XCTAssertEqual(logits.shape, [T, 1, V], c.name)
            var worst = 0.0, worstStep = 0, worstClass = 0
            for t in 0..<T {
                XCTAssertEqual(expected[t].count, V, c.name)
                for v in 0..<V {
                    let diff = abs(Double(logits.scalars[t * V + v]) - expected[t][v])
                    if !(diff <= worst) { worst = diff; worstStep = t; worstClass = v }
                }
            }
            XCTAssertLessThanOrEqual(
                worst, logitTolerance,
                "\(c.name): max |logit - torch| \(worst) at step \(worstStep), class \(worstClass): "
                    + "got \(logits.scalars[worstStep * V + worstClass]), torch \(expected[worstStep][worstClass])")

            // Cross-entropy of steps 0..T-2 against tokens 1..T-1, as F.cross_entropy computed it.
            let rows = try Tensor<Float>(shape: [T - 1, V], scalars: Array(logits.scalars[0..<((T - 1) * V)]))
            let ce = try softmaxCrossEntropy(logits: rows, targets: Array(tokens[1...])).loss
            XCTAssertEqual(ce, c.meanCrossEntropy, accuracy: ceTolerance, "\(c.name): mean cross-entropy")
            // The same through Evaluation (what `rnn eval --batch 1 --steps 1000` runs): one row, one chunk. A
            // bidirectional model sees the token it predicts (d2l 9.4): its logits load and match, but evaluation
            // refuses it.
            if configuration.bidirectional {
                XCTAssertThrowsError(
                    try Evaluation.meanCrossEntropy(
                        model: checkpoint.model, tokens: TokenList(tokens), batchSize: 1, numSteps: 1000)
                ) {
                    XCTAssertTrue("\($0)".contains("d2l 9.4"), "\($0)")
                }
            } else {
                let evaluated = try Evaluation.meanCrossEntropy(
                    model: checkpoint.model, tokens: TokenList(tokens), batchSize: 1, numSteps: 1000)
                XCTAssertEqual(
                    evaluated, c.meanCrossEntropy, accuracy: ceTolerance, "\(c.name): Evaluation.meanCrossEntropy")
            }

            print(
                "interchange \(c.name): max |logit diff| \(worst) (step \(worstStep), class \(worstClass)); "
                    + "CE swift \(ce) torch \(c.meanCrossEntropy) |diff| \(abs(ce - c.meanCrossEntropy))")
        }
    }

    /// Saving a PyTorch-written (format v1) checkpoint again from Swift keeps the metadata strings and the weight
    /// bytes; the file becomes format v3, which adds the writer's version, kernel level and blocking.
    func testResavingKeepsMetadataAndWeights() throws {
        for c in try cases() {
            let original = try readFileBytes(c.checkpointPath)
            let checkpoint = try Checkpoint.parse(original)
            let resaved = try checkpoint.serialized()
            let a = try SafetensorsFile(bytes: original), b = try SafetensorsFile(bytes: resaved)
            XCTAssertEqual(a.metadata["format"], "recurrentkit.checkpoint.v1", c.name)
            var upgraded = a.metadata
            upgraded["format"] = Checkpoint.formatName
            upgraded["library_version"] = RecurrentKitVersion.string
            upgraded["kernel_level"] = Kernels.activeLevel.name
            upgraded["kernel_blocking"] = Kernels.blocking.description
            XCTAssertEqual(upgraded, b.metadata, "\(c.name): metadata differs after re-saving from Swift")
            XCTAssertEqual(Set(a.tensors.keys), Set(b.tensors.keys), c.name)
            for (name, entry) in a.tensors {
                XCTAssertEqual(entry.dtype, b.tensors[name]?.dtype, "\(c.name) \(name)")
                XCTAssertEqual(entry.shape, b.tensors[name]?.shape, "\(c.name) \(name)")
                XCTAssertEqual(entry.bytes, b.tensors[name]?.bytes, "\(c.name) \(name): bytes differ")
            }
            if original != resaved {
                print("interchange \(c.name): re-saved file is equivalent but not byte-identical")
            }
        }
    }
}
