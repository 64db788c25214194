import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Whole training steps, clipping and optimizers against PyTorch (Scripts/fixtures/generate.py).
final class TrainingFixtureTests: XCTestCase {
    /// 2-layer LSTM + linear head + cross-entropy + clip 1.0 + Adam, 10 steps from PyTorch's initial weights.
    func runTrajectory<Scalar: RecurrentScalar>(
        _ type: Scalar.Type
    ) throws -> (losses: [Double], norms: [Double], model: LanguageModel<Scalar>, firstGrads: [String: Tensor<Scalar>])
    {
        let fixture = try Fixture.load("trajectory/lstm2_adam.json")
        let V = fixture["vocab_size"] as! Int, T = fixture["steps_per_sequence"] as! Int, B = fixture["batch"] as! Int
        let config = LanguageModelConfiguration(
            vocabularySize: V, cell: .lstm, hiddenSize: fixture["hidden_size"] as! Int,
            numLayers: fixture["num_layers"] as! Int)
        let model = try LanguageModel<Scalar>(config)
        let initial = fixture["initial_parameters"] as! [String: Any]
        XCTAssertEqual(Set(initial.keys), Set(model.parameters.entries.map(\.name)))
        for (name, value) in initial { try model.parameters.setTensor(name, try Fixture.tensor(value)) }
        let betas = Fixture.doubles(fixture["betas"])
        let adam = try Adam(
            learningRate: fixture["learning_rate"] as! Double, beta1: betas[0], beta2: betas[1],
            epsilon: fixture["eps"] as! Double)
        let inputs = fixture["inputs"] as! [[[Int]]], targets = fixture["targets"] as! [[[Int]]]
        var generator = SeededGenerator(seed: 0)
        var losses: [Double] = [], norms: [Double] = []
        var firstGrads: [String: Tensor<Scalar>] = [:]
        for step in 0..<inputs.count {
            model.parameters.zeroGradients()
            let loss = try model.loss(
                inputs: inputs[step].flatMap { $0 }, targets: targets[step].flatMap { $0 }, steps: T, batch: B,
                training: true, generator: &generator)
            if step == 0 {
                for e in model.parameters.entries { firstGrads[e.name] = try model.parameters.gradientTensor(e.name) }
            }
            norms.append(
                try clipGradientNorm(model.parameters, maxNorm: fixture["max_norm"] as! Double, style: .pytorch))
            try adam.step(model.parameters)
            losses.append(loss)
        }
        return (losses, norms, model, firstGrads)
    }

    func testTenAdamStepsMatchPyTorchInDouble() throws {
        let fixture = try Fixture.load("trajectory/lstm2_adam.json")
        let (losses, norms, model, firstGrads) = try runTrajectory(Double.self)
        let expected = Fixture.doubles(fixture["losses_float64"])
        for (a, b) in zip(losses, expected) { XCTAssertEqual(a, b, accuracy: 1e-10) }
        for (a, b) in zip(norms, Fixture.doubles(fixture["grad_norms_float64"])) {
            XCTAssertEqual(a, b, accuracy: 1e-10)
        }
        for (name, value) in fixture["first_step_grads"] as! [String: Any] {
            assertClose(
                firstGrads[name]!, try Fixture.tensor(value, as: Double.self), tolerance: 1e-10,
                "first-step grad \(name)")
        }
        for (name, value) in fixture["final_parameters"] as! [String: Any] {
            assertClose(
                try model.parameters.tensor(name), try Fixture.tensor(value, as: Double.self), tolerance: 1e-10,
                "final \(name)")
        }
        print("trajectory Double: max |loss diff| = \(zip(losses, expected).map { abs($0 - $1) }.max()!)")
    }

    func testTenAdamStepsMatchPyTorchInFloat() throws {
        let fixture = try Fixture.load("trajectory/lstm2_adam.json")
        let (losses, _, _, _) = try runTrajectory(Float.self)
        let expected = Fixture.doubles(fixture["losses_float64"])
        for (a, b) in zip(losses, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        print("trajectory Float: max |loss diff| vs float64 = \(zip(losses, expected).map { abs($0 - $1) }.max()!)")
    }

    func testOptimizersMatchPyTorch() throws {
        let fixture = try Fixture.load("optimizers/optimizers.json")
        let p0 = Fixture.doubles(fixture["p0"])
        let grads = (fixture["grads"] as! [Any]).map { Fixture.doubles($0) }
        for case let c as [String: Any] in fixture["cases"] as! [Any] {
            let options = c["options"] as! [String: Any]
            let lr = options["lr"] as! Double, wd = options["weight_decay"] as! Double
            let optimizer: Optimizer
            switch c["optimizer"] as! String {
            case "sgd":
                optimizer = try SGD(
                    learningRate: lr, momentum: options["momentum"] as! Double,
                    dampening: options["dampening"] as! Double,
                    weightDecay: wd, nesterov: options["nesterov"] as! Bool)
            case "adam", "adamw":
                let betas = Fixture.doubles(options["betas"])
                optimizer = try Adam(
                    learningRate: lr, beta1: betas[0], beta2: betas[1], epsilon: options["eps"] as! Double,
                    weightDecay: wd, decoupled: c["optimizer"] as! String == "adamw")
            default: XCTFail("unknown optimizer"); continue
            }
            var layout = ParameterLayout()
            layout.append("p", shape: [p0.count])
            let store = ParameterStore<Double>(layout: layout)
            try store.setTensor("p", Tensor(shape: [p0.count], scalars: p0))
            let trajectory = (c["trajectory"] as! [Any]).map { Fixture.doubles($0) }
            for (step, g) in grads.enumerated() {
                for i in 0..<g.count { store.gradients[i] = g[i] }
                try optimizer.step(store)
                let p = try store.tensor("p").scalars
                for i in 0..<p.count {
                    XCTAssertEqual(
                        p[i], trajectory[step][i], accuracy: 1e-12, "\(c["optimizer"]!) \(options) step \(step)")
                }
            }
        }
    }

    func testClippingMatchesPyTorch() throws {
        let fixture = try Fixture.load("optimizers/clip.json")
        for case let c as [String: Any] in fixture["cases"] as! [Any] {
            let grads = try (c["grads"] as! [Any]).map { try Fixture.tensor($0, as: Double.self) }
            let clipped = try (c["clipped_grads"] as! [Any]).map { try Fixture.tensor($0, as: Double.self) }
            var layout = ParameterLayout()
            for (i, g) in grads.enumerated() { layout.append("g\(i)", shape: g.shape) }
            let store = ParameterStore<Double>(layout: layout)
            for (i, g) in grads.enumerated() {
                let e = store.entry(named: "g\(i)")!
                for j in 0..<g.count { store.gradients[e.offset + j] = g.scalars[j] }
            }
            let norm = try clipGradientNorm(store, maxNorm: c["max_norm"] as! Double, style: .pytorch)
            XCTAssertEqual(norm, c["total_norm"] as! Double, accuracy: 1e-12)
            for (i, expected) in clipped.enumerated() {
                assertClose(try store.gradientTensor("g\(i)"), expected, tolerance: 1e-12, "clipped g\(i)")
            }
        }
    }

    func testD2LClippingAndNonFiniteNorm() throws {
        var layout = ParameterLayout()
        layout.append("w", shape: [2])
        let store = ParameterStore<Float>(layout: layout)
        store.gradients[0] = 3; store.gradients[1] = 4
        XCTAssertEqual(try clipGradientNorm(store, maxNorm: 10), 5)  // below the threshold: untouched
        XCTAssertEqual(store.gradients[0], 3)
        XCTAssertEqual(try clipGradientNorm(store, maxNorm: 1), 5)
        XCTAssertEqual(store.gradients[0], 0.6, accuracy: 1e-7)
        XCTAssertEqual(store.gradients[1], 0.8, accuracy: 1e-7)
        store.gradients[1] = .nan
        XCTAssertThrowsError(try clipGradientNorm(store, maxNorm: 1)) { XCTAssertTrue("\($0)".contains("nan")) }
        XCTAssertEqual(store.gradients[0], 0.6, accuracy: 1e-7, "a non-finite norm must not scale the gradients")
        store.gradients[1] = .infinity
        XCTAssertThrowsError(try clipGradientNorm(store, maxNorm: 1))
        XCTAssertThrowsError(try clipGradientNorm(store, maxNorm: 0)) { XCTAssertTrue("\($0)".contains("maxNorm")) }
    }
}
