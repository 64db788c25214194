import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// RMSprop against torch.optim.RMSprop in float64 (Scripts/fixtures/rmsprop.py), its state round trip, and its
/// refusals.
final class RMSpropTests: XCTestCase {
    func make(_ o: [String: Any]) throws -> RMSprop {
        func d(_ key: String, _ fallback: Double) -> Double { (o[key] as? NSNumber)?.doubleValue ?? fallback }
        return try RMSprop(
            learningRate: d("lr", 0.01), alpha: d("alpha", 0.99), epsilon: d("eps", 1e-8),
            weightDecay: d("weight_decay", 0),
            momentum: d("momentum", 0), centered: o["centered"] as? Bool ?? false)
    }

    func testMatchesPyTorchAndResumes() throws {
        let cases = try XCTUnwrap(try Fixture.load("optimizers/rmsprop.json")["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let options = c["options"] as! [String: Any]
            var layout = ParameterLayout()
            layout.append("p", shape: [7])
            let store = ParameterStore<Double>(layout: layout)
            let start = Fixture.doubles(c["start"])
            store.values.update(from: start, count: 7)
            let gradients = (c["gradients"] as! [Any]).map(Fixture.doubles),
                trajectory = (c["trajectory"] as! [Any]).map(Fixture.doubles)
            var optimizer = try make(options)
            for (t, g) in gradients.enumerated() {
                store.gradients.update(from: g, count: 7)
                try optimizer.step(store)
                for i in 0..<7 {
                    XCTAssertEqual(
                        store.values[i], trajectory[t][i], accuracy: 1e-12 * max(1, abs(trajectory[t][i])),
                        "\(options) step \(t + 1)")
                }
                if t == 2 {  // save and restore mid-way: the rest is identical
                    let saved = optimizer.stateBuffers, steps = optimizer.stepCount
                    optimizer = try make(options)
                    try optimizer.restore(stateBuffers: saved, stepCount: steps)
                }
            }
        }
        let plain = try RMSprop()
        XCTAssertThrowsError(try plain.restore(stateBuffers: ["exp_avg": [1]], stepCount: 1))
        XCTAssertThrowsError(try plain.restore(stateBuffers: [:], stepCount: 3)) {
            XCTAssertTrue("\($0)".contains("square_avg"), "\($0)")
        }
        XCTAssertThrowsError(try RMSprop(momentum: 1))
        XCTAssertThrowsError(try RMSprop(centered: true).restore(stateBuffers: ["square_avg": [1, 2]], stepCount: 1))
        XCTAssertThrowsError(try RMSprop(alpha: 1))
    }

    func testTrainerWithRMSpropResumesBitIdentically() throws {
        var o = TrainingOptions()
        o.cell = .lstm; o.hiddenSize = 8; o.initialization = .pytorch
        o.optimizer = .rmsprop; o.learningRate = 2e-3; o.momentum = 0.5
        o.epochs = 2; o.sampleEvery = 0; o.maxTokens = 1500; o.batchSize = 4; o.numSteps = 10
        let reference = try LanguageModelTrainer(options: o)
        try reference.train()
        let first = try LanguageModelTrainer(options: o)
        try first.train(shouldStop: { first.step >= 5 })
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try first.checkpoint().serialized()))
        try resumed.train()
        XCTAssertEqual(
            Array(UnsafeBufferPointer(start: resumed.model.parameters.values, count: resumed.model.parameters.count)),
            Array(
                UnsafeBufferPointer(start: reference.model.parameters.values, count: reference.model.parameters.count)))
        XCTAssertLessThan(reference.history.last!.trainPerplexity, reference.history.first!.trainPerplexity * 1.01)
    }
}
