import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Models composed with `Sequential`: gradients of every parameter and input against the same models written as
/// PyTorch modules (float64, Scripts/fixtures/composition.py) and against finite differences in Double, the backward
/// chained by the container; names, mode, dropout and stale passes.
final class SequentialTests: XCTestCase {
    private func model(_ name: String) throws -> [String: Any] {
        (try Fixture.load("composition/composition.json")["models"] as! [String: Any])[name] as! [String: Any]
    }

    /// Loads a PyTorch state_dict by name: every entry must exist in the model and every parameter be set.
    private func load<Scalar: RecurrentScalar>(_ c: [String: Any], into store: ParameterStore<Scalar>) throws {
        let stateDict = c["state_dict"] as! [String: Any]
        XCTAssertEqual(Set(stateDict.keys), Set(store.entries.map(\.name)), "the model's names are PyTorch's")
        for (name, value) in stateDict { try store.setTensor(name, try Fixture.tensor(value)) }
    }

    private func assertGradients<Scalar: RecurrentScalar>(
        _ c: [String: Any], _ store: ParameterStore<Scalar>, tolerance: Double,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        for (name, value) in c["gradients"] as! [String: Any] {
            let expected: Tensor<Double> = try Fixture.tensor(value)
            assertClose(
                try store.gradientTensor(name), expected, tolerance: tolerance, "d\(name) [\(Scalar.self)]", file: file,
                line: line)
        }
    }

    private func regressor<Scalar: RecurrentScalar>(
        _: Scalar.Type
    ) throws -> Sequential<Chain<Chain<Named<LSTM<Scalar>>, Named<LastStep<Scalar>>>, Named<Linear<Scalar>>>> {
        var g = SeededGenerator(seed: 1)
        return try Sequential {
            ("lstm", try LSTM<Scalar>(inputSize: 3, hiddenSize: 5, numLayers: 2, generator: &g))
            LastStep<Scalar>()
            ("head", try Linear<Scalar>(inputSize: 5, outputSize: 2, generator: &g))
        }
    }

    func testLSTMRegressorMatchesPyTorch() throws {
        let c = try model("lstm_regressor")
        func run<Scalar: RecurrentScalar>(_: Scalar.Type, tolerance: Double) throws {
            let model = try regressor(Scalar.self)
            try load(c, into: model.parameters)
            let inputs = c["inputs"] as! [String: Any]
            let x: Tensor<Scalar> = try Fixture.tensor(inputs["x"])
            let pass = try model.forward(x)
            assertClose(pass.output, try Fixture.tensor(c["output"], as: Double.self), tolerance: tolerance, "output")
            let (loss, dPrediction) = try meanSquaredError(
                predictions: pass.output, targets: try Fixture.tensor(c["targets"], as: Scalar.self))
            XCTAssertEqual(loss, c["loss"] as! Double, accuracy: tolerance)
            model.parameters.zeroGradients()
            let dInput = try pass.backward(dPrediction)
            try assertGradients(c, model.parameters, tolerance: tolerance)
            let expected: Tensor<Double> = try Fixture.tensor((c["input_gradients"] as! [String: Any])["x"])
            assertClose(try XCTUnwrap(dInput.input), expected, tolerance: tolerance, "dx")
            XCTAssertEqual(dInput.initialState?.h.shape, [2, 3, 5])
        }
        try run(Double.self, tolerance: 1e-12)
        try run(Float.self, tolerance: 1e-5)
    }

    func testBidirectionalGRUClassifierOverPackedTokensMatchesPyTorch() throws {
        let c = try model("gru_classifier")
        var g = SeededGenerator(seed: 2)
        let model = try Sequential {
            ("emb", try Embedding<Double>(vocabularySize: 7, dimension: 4, generator: &g))
            ("gru", try GRU<Double>(inputSize: 4, hiddenSize: 5, bidirectional: true, generator: &g))
            FinalHiddenState<Double>()  // torch.cat([h_n[-2], h_n[-1]], 1)
            ("head", try Linear<Double>(inputSize: 10, outputSize: 3, generator: &g))
        }
        try load(c, into: model.parameters)
        let batch = SequenceBatch<Double>(
            tokens: c["tokens"] as! [Int], steps: 7, batch: 4, lengths: Fixture.ints(c["lengths"]))
        let pass = try model.forward(batch)
        assertClose(pass.output, try Fixture.tensor(c["output"], as: Double.self), tolerance: 1e-12, "logits")
        let (loss, dLogits) = try softmaxCrossEntropy(
            logits: pass.output, targets: c["labels"] as! [Int], ignoreIndex: nil)
        XCTAssertEqual(loss, c["loss"] as! Double, accuracy: 1e-12)
        model.parameters.zeroGradients()
        let dInput = try pass.backward(dLogits)
        XCTAssertNil(dInput.input, "tokens have no gradient")
        try assertGradients(c, model.parameters, tolerance: 1e-12)
    }

    func testBatchFirstReLUTowerOverVariableLengthsMatchesPyTorch() throws {
        let c = try model("relu_tower")
        var g = SeededGenerator(seed: 3)
        let model = try Sequential {
            ("rnn", try RNN<Double>(inputSize: 3, hiddenSize: 4, numLayers: 2, nonlinearity: .relu, generator: &g))
            LastValidStep<Double>()
            ("fc1", try Linear<Double>(inputSize: 4, outputSize: 6, generator: &g))
            Tanh<Double>()
            ("fc2", try Linear<Double>(inputSize: 6, outputSize: 2, generator: &g))
            Sigmoid<Double>()
        }
        try load(c, into: model.parameters)
        let x: Tensor<Double> = try Fixture.tensor((c["inputs"] as! [String: Any])["x"])
        let pass = try model.forward(x, lengths: Fixture.ints(c["lengths"]), layout: .batchFirst)
        assertClose(pass.output, try Fixture.tensor(c["output"], as: Double.self), tolerance: 1e-12, "output")
        let (loss, dOut) = try meanSquaredError(predictions: pass.output, targets: try Fixture.tensor(c["targets"]))
        XCTAssertEqual(loss, c["loss"] as! Double, accuracy: 1e-12)
        model.parameters.zeroGradients()
        let dInput = try pass.backward(dOut)
        try assertGradients(c, model.parameters, tolerance: 1e-12)
        let expected: Tensor<Double> = try Fixture.tensor((c["input_gradients"] as! [String: Any])["x"])
        assertClose(try XCTUnwrap(dInput.input), expected, tolerance: 1e-12, "dx (batch-first, zero at padding)")
    }

    /// Examples/Forecast's model (2-layer LSTM with dropout, last step, dropout, head) at a small size, in evaluation
    /// mode, as PyTorch's in `eval()`.
    func testForecastExampleModelMatchesPyTorch() throws {
        let c = try model("forecast_example")
        var g = SeededGenerator(seed: 1)
        let model = try Sequential(seed: 5) {
            ("lstm", try LSTM<Double>(inputSize: 1, hiddenSize: 6, numLayers: 2, dropout: 0.2, generator: &g))
            LastStep<Double>()
            try Dropout<Double>(probability: 0.1)
            ("head", try Linear<Double>(inputSize: 6, outputSize: 5, generator: &g))
        }
        try load(c, into: model.parameters)
        model.eval()
        let pass = try model.forward(try Fixture.tensor((c["inputs"] as! [String: Any])["x"], as: Double.self))
        assertClose(pass.output, try Fixture.tensor(c["output"], as: Double.self), tolerance: 1e-12, "output")
        let (loss, dOut) = try meanSquaredError(predictions: pass.output, targets: try Fixture.tensor(c["targets"]))
        XCTAssertEqual(loss, c["loss"] as! Double, accuracy: 1e-12)
        model.parameters.zeroGradients()
        let dInput = try pass.backward(dOut)
        try assertGradients(c, model.parameters, tolerance: 1e-12)
        assertClose(
            try XCTUnwrap(dInput.input),
            try Fixture.tensor((c["input_gradients"] as! [String: Any])["x"], as: Double.self),
            tolerance: 1e-12, "dx")
    }

    /// Examples/ClassifyVariableLength's model at a small size: embedding, bidirectional GRU over packed rows, both
    /// final states joined, a hidden ReLU layer, the head.
    func testClassifierExampleModelMatchesPyTorch() throws {
        let c = try model("classify_example")
        var g = SeededGenerator(seed: 2)
        let model = try Sequential(seed: 1) {
            ("embedding", try Embedding<Double>(vocabularySize: 4, dimension: 3, generator: &g))
            ("gru", try GRU<Double>(inputSize: 3, hiddenSize: 4, bidirectional: true, generator: &g))
            FinalHiddenState<Double>()
            ("hidden", try Linear<Double>(inputSize: 8, outputSize: 4, generator: &g))
            ReLU<Double>()
            ("head", try Linear<Double>(inputSize: 4, outputSize: 2, generator: &g))
        }
        try load(c, into: model.parameters)
        let pass = try model.forward(
            SequenceBatch(tokens: c["tokens"] as! [Int], steps: 6, batch: 3, lengths: Fixture.ints(c["lengths"])))
        assertClose(pass.output, try Fixture.tensor(c["output"], as: Double.self), tolerance: 1e-12, "logits")
        let (loss, dLogits) = try softmaxCrossEntropy(
            logits: pass.output, targets: c["labels"] as! [Int], ignoreIndex: nil)
        XCTAssertEqual(loss, c["loss"] as! Double, accuracy: 1e-12)
        model.parameters.zeroGradients()
        try pass.backward(dLogits)
        try assertGradients(c, model.parameters, tolerance: 1e-12)
    }

    /// Central differences of the loss over every parameter and input element, with the generator reset before each
    /// forward so the dropout masks are the same: dropout (standalone and between layers), an LSTM with a projection
    /// read through its final state, ReLU and reshapes.
    func testGradientsMatchFiniteDifferencesWithDropoutInTrainingMode() throws {
        var g = SeededGenerator(seed: 11)
        let model = try Sequential(seed: 9) {
            (
                "lstm",
                try LSTM<Double>(
                    inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.3, bidirectional: true, projectionSize: 2,
                    generator: &g)
            )
            FinalHiddenState<Double>()  // (B, 4)
            try Dropout<Double>(probability: 0.25)
            ("fc", try Linear<Double>(inputSize: 4, outputSize: 6, generator: &g))
            ReLU<Double>()
            Reshape<Double>([-1, 3, 2])
            Flatten<Double>()
            ("out", try Linear<Double>(inputSize: 6, outputSize: 2, generator: &g))
        }
        XCTAssertTrue(model.isTraining)
        let x = Tensor<Double>(shape: [5, 3, 3]) { g.normal() }
        let lengths = [5, 2, 4]
        let y = Tensor<Double>(shape: [3, 2]) { g.normal() }
        func loss() throws -> Double {
            model.generator = SeededGenerator(seed: 9)
            return try meanSquaredError(predictions: try model(x, lengths: lengths), targets: y).loss
        }
        model.generator = SeededGenerator(seed: 9)
        let pass = try model.forward(x, lengths: lengths)
        model.parameters.zeroGradients()
        let dx = try XCTUnwrap(
            try pass.backward(try meanSquaredError(predictions: pass.output, targets: y).gradient).input)
        let p = model.parameters
        var worst = 0.0
        for i in 0..<p.count {
            let saved = p.values[i]
            p.values[i] = saved + 1e-6
            let plus = try loss()
            p.values[i] = saved - 1e-6
            let minus = try loss()
            p.values[i] = saved
            worst = max(worst, abs((plus - minus) / 2e-6 - p.gradients[i]))
        }
        XCTAssertLessThan(worst, 1e-8, "parameters")
        var numeric = Tensor<Double>(zeros: x.shape)
        var xp = x
        for i in x.scalars.indices {
            xp.scalars[i] = x.scalars[i] + 1e-6
            model.generator = SeededGenerator(seed: 9)
            let plus = try meanSquaredError(predictions: try model(xp, lengths: lengths), targets: y).loss
            xp.scalars[i] = x.scalars[i] - 1e-6
            model.generator = SeededGenerator(seed: 9)
            let minus = try meanSquaredError(predictions: try model(xp, lengths: lengths), targets: y).loss
            xp.scalars[i] = x.scalars[i]
            numeric.scalars[i] = (plus - minus) / 2e-6
        }
        assertClose(dx, numeric, tolerance: 1e-8, "dx")
    }

    func testModeSwitchesDropoutAndIsPyTorchsDefault() throws {
        var g = SeededGenerator(seed: 4)
        let model = try Sequential(seed: 3) {
            ("rnn", try GRU<Float>(inputSize: 2, hiddenSize: 8, numLayers: 2, dropout: 0.5, generator: &g))
            StepOutputs<Float>()
            try Dropout<Float>(probability: 0.5)
        }
        let x = Tensor<Float>(shape: [4, 2, 2]) { Float(g.normal()) }
        let a = try model(x), b = try model(x)
        XCTAssertNotEqual(a, b, "training mode by default: each forward draws new masks")
        XCTAssertTrue(a.scalars.contains(0))
        model.eval()
        XCTAssertFalse(model.isTraining)
        let c = try model(x), d = try model(x)
        XCTAssertEqual(c, d, "evaluation: no dropout")
        XCTAssertFalse(c.scalars.contains(0))
        model.train()
        XCTAssertNotEqual(try model(x), c)
    }

    func testNamesFollowPyTorchAndNestedModelsShareOneStore() throws {
        var g = SeededGenerator(seed: 5)
        let encoder = try Sequential {
            try Linear<Float>(inputSize: 3, outputSize: 4, generator: &g)  // "0"
            Tanh<Float>()  // "1"
            try Linear<Float>(inputSize: 4, outputSize: 4, generator: &g)  // "2"
        }
        XCTAssertEqual(encoder.parameters.entries.map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias"])
        let before = try encoder.parameters.tensor("2.weight")
        let model = try Sequential {
            ("encoder", encoder)
            ("head", try Linear<Float>(inputSize: 4, outputSize: 1, bias: false, generator: &g))
        }
        XCTAssertEqual(
            model.parameters.entries.map(\.name),
            ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "head.weight"])
        XCTAssertEqual(try model.parameters.tensor("encoder.2.weight"), before, "values are kept when gathered")
        XCTAssertTrue(encoder.parameters === model.parameters, "the inner model is rebound to the outer store")
        let pass = try model.forward(Tensor(zeros: [2, 3]))
        model.parameters.zeroGradients()
        try pass.backward(Tensor(shape: [2, 1], scalars: [1, 1]))
        XCTAssertNotEqual(try model.parameters.gradientTensor("encoder.0.bias"), Tensor(zeros: [4]))
        XCTAssertThrowsError(
            try Sequential {
                ("a", try Linear<Float>(inputSize: 1, outputSize: 1, generator: &g))
                ("a", try Linear<Float>(inputSize: 1, outputSize: 1, generator: &g))
            }
        ) { XCTAssertEqual("\($0)", "layer name 'a' is used twice") }
    }

    /// Layers write their outputs and gradients into storage they reuse; a value the caller still holds keeps its
    /// contents (copy on write), through every kind of layer.
    func testValuesHeldAcrossForwardsDoNotChange() throws {
        var g = SeededGenerator(seed: 12)
        let model = try Sequential(seed: 2) {
            ("gru", try GRU<Double>(inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.5, generator: &g))
            LastStep<Double>()
            try Dropout<Double>(probability: 0.3)
            ("fc", try Linear<Double>(inputSize: 4, outputSize: 6, generator: &g))
            Tanh<Double>()
            Reshape<Double>([-1, 3, 2])
            Flatten<Double>()
            ReLU<Double>()
            ("out", try Linear<Double>(inputSize: 6, outputSize: 2, generator: &g))
            Sigmoid<Double>()
        }
        let x1 = Tensor<Double>(shape: [5, 3, 3]) { g.normal() }, x2 = Tensor<Double>(shape: [5, 3, 3]) { g.normal() }
        let first = try model.forward(x1)
        let output = first.output.scalars.map { $0 }
        let dx = try XCTUnwrap(try first.backward(Tensor(shape: [3, 2]) { 1 }).input)
        let dxValues = dx.scalars.map { $0 }
        let second = try model.forward(x2)
        _ = try second.backward(Tensor(shape: [3, 2]) { 1 })
        XCTAssertEqual(first.output.scalars, output, "an earlier output keeps its values")
        XCTAssertEqual(dx.scalars, dxValues, "an earlier input gradient keeps its values")
        XCTAssertNotEqual(second.output.scalars, output)
    }

    func testStalePassThrows() throws {
        let model = try regressor(Double.self)
        let x = Tensor<Double>(zeros: [4, 2, 3])
        let first = try model.forward(x)
        _ = try model.forward(x)
        XCTAssertThrowsError(try first.backward(Tensor(zeros: [2, 2]))) {
            XCTAssertEqual(
                "\($0)", "got a stale pass: the model has run 1 forward(s) since; use a pass before the next forward")
        }
        let current = try model.forward(x)
        XCTAssertThrowsError(try current.backward(Tensor(zeros: [3, 2]))) {
            XCTAssertTrue("\($0)".contains("shape"), "\($0)")
        }
    }
}
