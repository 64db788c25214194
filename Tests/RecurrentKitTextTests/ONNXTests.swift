import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// ONNX export and import against ONNX Runtime and PyTorch (fixtures from Scripts/onnx/make_fixtures.py, pinned onnx
/// and onnxruntime; no ONNX Runtime needed here): our logits and states equal what ONNX Runtime computed from our
/// exported files, PyTorch-exported files import with PyTorch's logits, and malformed files are refused with one line.
final class ONNXTests: XCTestCase {
    static let directory = Fixture.directory.appendingPathComponent("onnx")
    static let interchange = Fixture.directory.appendingPathComponent("interchange")

    func json(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: Self.directory.appendingPathComponent(name)))
            as! [String: Any]
    }

    func doubles(_ value: Any?) -> [Double] { (value as! [Any]).map { ($0 as! NSNumber).doubleValue } }

    func worst(_ a: [Float], _ b: [Double]) -> Double {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).reduce(0) { max($0, abs(Double($1.0) - $1.1)) }
    }

    func testExportedFilesRunInONNXRuntimeLikeRecurrentKit() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter {
            $0.hasPrefix("export_")
        }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 11, "run Scripts/onnx/make_fixtures.py")
        var report: [String] = []
        for file in files {
            let doc = try json(file)
            let checkpoint = try Checkpoint.load(
                from: Self.interchange.appendingPathComponent(doc["checkpoint"] as! String).path)
            let model = checkpoint.model, c = model.configuration
            let rows = (doc["tokens"] as! [[Int]])
            let T = rows.count, B = rows[0].count
            let tokens = rows.flatMap { $0 }
            var worstDifference = 0.0
            for variant in ["default", "given_state"] {
                let expected = doc[variant] as! [String: Any]
                var state: RecurrentState<Float>? = nil
                if variant == "given_state" {
                    let S = c.recurrent.stateLayers
                    state = RecurrentState(
                        h: try Tensor(
                            shape: [S, B, c.recurrent.stateSize], scalars: doubles(doc["h0"]).map(Float.init)),
                        c: c.cell == .lstm
                            ? try Tensor(shape: [S, B, c.hiddenSize], scalars: doubles(doc["c0"]).map(Float.init)) : nil
                    )
                }
                let logits = try model.logits(inputs: tokens, steps: T, batch: B, state: state)
                let final = try model.finalState()
                worstDifference = max(worstDifference, worst(logits.scalars, doubles(expected["logits"])))
                worstDifference = max(worstDifference, worst(final.h.scalars, doubles(expected["hn"])))
                if let cn = final.c {
                    worstDifference = max(worstDifference, worst(cn.scalars, doubles(expected["cn"])))
                }
            }
            XCTAssertLessThanOrEqual(worstDifference, 1e-5, file)
            report.append("\(file): \(worstDifference)")

            // Our own reader restores the exported model exactly (weights, configuration and vocabulary).
            let bytes = try ONNX.export(model, vocabulary: checkpoint.vocabulary)
            let (imported, vocabulary) = try ONNX.importLanguageModel(bytes)
            XCTAssertEqual(vocabulary, checkpoint.vocabulary, file)
            var expectedConfiguration = c
            expectedConfiguration.dropout = 0
            XCTAssertEqual(imported.configuration, expectedConfiguration, file)
            for entry in model.parameters.entries {
                XCTAssertEqual(
                    try imported.parameters.tensor(entry.name), try model.parameters.tensor(entry.name),
                    "\(file) \(entry.name)")
            }
        }
        print(
            "ONNX Runtime vs RecurrentKit, worst |difference| of logits and final states per exported file:\n"
                + report.joined(separator: "\n"))
    }

    func testPyTorchExportedFilesImport() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter {
            $0.hasPrefix("torch_") && $0.hasSuffix(".json")
        }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 6, "run Scripts/onnx/make_fixtures.py")
        var report: [String] = []
        for file in files {
            let doc = try json(file)
            let bytes = try [UInt8](Data(contentsOf: Self.directory.appendingPathComponent(doc["onnx"] as! String)))
            let (model, vocabulary) = try ONNX.importLanguageModel(bytes)
            XCTAssertNil(vocabulary, "a PyTorch file carries no vocabulary")
            let tokens = doc["tokens"] as! [Int]
            let logits = try model.logits(inputs: tokens, steps: tokens.count, batch: 1)
            let difference = worst(logits.scalars, doubles(doc["logits"]))
            XCTAssertLessThanOrEqual(difference, 1e-5, file)
            let c = doc["case"] as! [String: Any]
            XCTAssertEqual(model.configuration.cell.rawValue, c["cell"] as? String, file)
            XCTAssertEqual(model.configuration.numLayers, c["numLayers"] as? Int, file)
            XCTAssertEqual(model.configuration.embeddingSize, c["embeddingSize"] as? Int, file)
            XCTAssertEqual(model.configuration.bidirectional, c["bidirectional"] as? Bool ?? false, file)
            XCTAssertEqual(model.configuration.bias, c["bias"] as? Bool ?? true, file)
            report.append("\(file): \(difference) (\((doc["operators"] as! [String]).joined(separator: ",")))")
        }
        print(
            "PyTorch-exported ONNX files imported, worst |logit difference| against PyTorch:\n"
                + report.joined(separator: "\n"))
    }

    func testRefusalsAndHostileBytes() throws {
        var g = SeededGenerator(seed: 60)
        let projected = try LanguageModel<Float>(
            .init(vocabularySize: 5, cell: .lstm, hiddenSize: 6, projectionSize: 2), generator: &g)
        XCTAssertThrowsError(try ONNX.export(projected)) { XCTAssertTrue("\($0)".contains("proj_size"), "\($0)") }
        let linear = try LanguageModel<Float>(.init(vocabularySize: 5, cell: .rnnLinear, hiddenSize: 6), generator: &g)
        XCTAssertThrowsError(try ONNX.export(linear))

        let model = try LanguageModel<Float>(
            .init(vocabularySize: 7, cell: .gru, hiddenSize: 4, numLayers: 2, embeddingSize: 3), generator: &g)
        let bytes = try ONNX.export(model)
        XCTAssertNoThrow(try ONNX.importLanguageModel(bytes))
        // Every truncation and a sweep of single-byte corruptions: an error or a model, never a trap or a hang.
        var refused = 0
        for n in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 300)) {
            do { _ = try ONNX.importLanguageModel(Array(bytes[..<n])) } catch {
                refused += 1; XCTAssertFalse("\(error)".contains("\n"))
            }
        }
        XCTAssertGreaterThan(refused, 250)
        for i in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 500)) {
            for value: UInt8 in [0x00, 0xFF, 0x80, 0x0A] {
                var mutated = bytes
                mutated[i] = value
                do { _ = try ONNX.importLanguageModel(mutated) } catch {
                    XCTAssertFalse("\(error)".contains("\n"), "\(error)")
                }
            }
        }
        for junk: [UInt8] in [
            [], [0x08], [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            Array(repeating: 0xFF, count: 64),
            Array("not an onnx file".utf8),
        ] {
            XCTAssertThrowsError(try ONNX.importLanguageModel(junk))
        }
    }
}
