import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Public losses and the Linear/Embedding layers: finite differences in Double and PyTorch float64 fixtures.
final class LossAndLayerTests: XCTestCase {
    /// Central five-point derivative of `f` with respect to element i of `x`.
    private func numericGradient(_ x: Tensor<Double>, _ f: (Tensor<Double>) throws -> Double) rethrows -> Tensor<Double>
    {
        var g = Tensor<Double>(zeros: x.shape)
        let h = 1e-5
        for i in x.scalars.indices {
            func at(_ d: Double) throws -> Double { var y = x; y.scalars[i] += d; return try f(y) }
            g.scalars[i] = try (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h)
        }
        return g
    }

    private func random(_ shape: [Int], _ g: inout SeededGenerator, scale: Double = 1) -> Tensor<Double> {
        Tensor(shape: shape) { scale * g.normal() }
    }

    func testSoftmaxCrossEntropyIgnoreIndexAndWeightsMatchFiniteDifferences() throws {
        var g = SeededGenerator(seed: 21)
        let logits = random([7, 5], &g, scale: 2)
        let targets = [0, 4, -100, 2, 2, -100, 1]
        let weights = [0.5, 1, 3, 2, 0, 1, 0.25]
        for (ignore, w) in [(nil as Int?, nil as [Double]?), (-100, nil), (-100, weights)] {
            let t = ignore == nil ? targets.map { max($0, 0) } : targets
            let (loss, gradient) = try softmaxCrossEntropy(logits: logits, targets: t, ignoreIndex: ignore, weights: w)
            let numeric = try numericGradient(logits) {
                try softmaxCrossEntropy(logits: $0, targets: t, ignoreIndex: ignore, weights: w).loss
            }
            assertClose(
                gradient, numeric, tolerance: 1e-9,
                "dL/dlogits ignore \(String(describing: ignore)) weights \(w != nil)")
            // The definition, term by term.
            var expected = 0.0, total = 0.0
            for r in 0..<7 where t[r] != ignore {
                let row = Array(logits.scalars[(r * 5)..<(r * 5 + 5)])
                let lse = Double.log(row.map { Double.exp($0) }.reduce(0, +))
                expected += (w?[r] ?? 1) * (lse - row[t[r]]); total += w?[r] ?? 1
            }
            XCTAssertEqual(loss, expected / total, accuracy: 1e-12)
        }
        // Every row ignored: zero loss and gradient, no division by zero.
        let none = try softmaxCrossEntropy(logits: logits, targets: Array(repeating: -1, count: 7), ignoreIndex: -1)
        XCTAssertEqual(none.loss, 0)
        XCTAssertTrue(none.gradient.scalars.allSatisfy { $0 == 0 })
        XCTAssertThrowsError(try softmaxCrossEntropy(logits: logits, targets: [5, 0, 0, 0, 0, 0, 0], ignoreIndex: nil))
        XCTAssertThrowsError(
            try softmaxCrossEntropy(logits: logits, targets: t7, ignoreIndex: nil, weights: [1, 1, 1, 1, 1, 1, -1]))
        XCTAssertThrowsError(
            try softmaxCrossEntropy(logits: logits, targets: t7, ignoreIndex: nil, weights: [1, 1, 1, 1, 1, 1, .nan]))
    }
    private let t7 = [0, 0, 0, 0, 0, 0, 0]

    func testMeanSquaredErrorAndBinaryCrossEntropyMatchFiniteDifferences() throws {
        var g = SeededGenerator(seed: 22)
        let p = random([4, 3, 2], &g), y = random([4, 3, 2], &g)
        let (mse, dMSE) = try meanSquaredError(predictions: p, targets: y)
        assertClose(
            dMSE, try numericGradient(p) { try meanSquaredError(predictions: $0, targets: y).loss }, tolerance: 1e-9,
            "dMSE")
        XCTAssertEqual(mse, zip(p.scalars, y.scalars).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 24, accuracy: 1e-12)
        // Logits large enough to overflow a naive exp; soft targets.
        var x = random([5, 4], &g, scale: 3)
        x.scalars[0] = 800; x.scalars[1] = -800
        let targets = Tensor<Double>(shape: [5, 4]) { g.nextUnit() }
        let (bce, dBCE) = try binaryCrossEntropyWithLogits(logits: x, targets: targets)
        XCTAssertTrue(bce.isFinite)
        assertClose(
            dBCE, try numericGradient(x) { try binaryCrossEntropyWithLogits(logits: $0, targets: targets).loss },
            tolerance: 1e-9, "dBCE")
        XCTAssertThrowsError(try meanSquaredError(predictions: p, targets: Tensor(zeros: [24])))
        XCTAssertThrowsError(try binaryCrossEntropyWithLogits(logits: x, targets: Tensor(shape: [5, 4]) { 2 }))
    }

    func testLinearAndEmbeddingBackwardMatchFiniteDifferences() throws {
        var g = SeededGenerator(seed: 23)
        var layout = ParameterLayout()
        Linear<Double>.declareParameters(prefix: "head.", inputSize: 3, outputSize: 4, into: &layout)
        Embedding<Double>.declareParameters(prefix: "embed.", vocabularySize: 6, dimension: 3, into: &layout)
        let store = ParameterStore<Double>(layout: layout)
        let head = try Linear(prefix: "head.", inputSize: 3, outputSize: 4, store: store)
        let embed = try Embedding(prefix: "embed.", vocabularySize: 6, dimension: 3, store: store)
        head.initialize(.pytorch, generator: &g)
        embed.initialize(.pytorch, generator: &g)
        let tokens = [5, 0, 2, 2, 1], dy = random([5, 4], &g)
        // L = sum(head(embed(tokens)) * dy)
        func loss() throws -> Double { zip(try head(try embed(tokens)).scalars, dy.scalars).map(*).reduce(0, +) }
        store.zeroGradients()
        let x = try embed(tokens)
        let dx = try head.backward(input: x, outputGradient: dy)
        try embed.backward(tokens: tokens, outputGradient: dx)
        for entry in store.entries {
            for i in 0..<entry.count {
                let p = store.values + entry.offset + i, original = p.pointee, h = 1e-5
                func at(_ d: Double) throws -> Double {
                    p.pointee = original + d; defer { p.pointee = original }; return try loss()
                }
                let numeric = try (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h)
                XCTAssertEqual(store.gradients[entry.offset + i], numeric, accuracy: 1e-9, "\(entry.name)[\(i)]")
            }
        }
        // Any leading shape: (T, B, In).
        XCTAssertEqual(try head(Tensor(zeros: [2, 3, 3])).shape, [2, 3, 4])
        XCTAssertThrowsError(try head(Tensor(zeros: [2, 5])))
        XCTAssertThrowsError(try embed([6]))
        XCTAssertThrowsError(try head.backward(input: x, outputGradient: Tensor(zeros: [5, 3])))
    }

    func testLossesAndLayersMatchPyTorch() throws {
        let f = try Fixture.load("losses/losses.json")
        func tensor(_ c: String, _ k: String) throws -> Tensor<Double> {
            try Fixture.tensor((f[c] as! [String: Any])[k])
        }
        func value(_ c: String, _ k: String) -> Any? { (f[c] as! [String: Any])[k] }
        for name in ["cross_entropy_ignore", "cross_entropy_weighted"] {
            let result = try softmaxCrossEntropy(
                logits: try tensor(name, "logits"), targets: value(name, "targets") as! [Int],
                ignoreIndex: value(name, "ignore_index") as? Int,
                weights: value(name, "weights").map { Fixture.doubles($0) })
            XCTAssertEqual(result.loss, (value(name, "loss") as! NSNumber).doubleValue, accuracy: 1e-12, name)
            assertClose(result.gradient, try tensor(name, "gradient"), tolerance: 1e-12, name)
        }
        let mse = try meanSquaredError(
            predictions: try tensor("mse", "predictions"), targets: try tensor("mse", "targets"))
        XCTAssertEqual(mse.loss, (value("mse", "loss") as! NSNumber).doubleValue, accuracy: 1e-12)
        assertClose(mse.gradient, try tensor("mse", "gradient"), tolerance: 1e-12, "mse")
        let bce = try binaryCrossEntropyWithLogits(
            logits: try tensor("bce_with_logits", "logits"), targets: try tensor("bce_with_logits", "targets"))
        XCTAssertEqual(bce.loss, (value("bce_with_logits", "loss") as! NSNumber).doubleValue, accuracy: 1e-12)
        assertClose(bce.gradient, try tensor("bce_with_logits", "gradient"), tolerance: 1e-12, "bce")

        let c = "embedding_linear"
        var layout = ParameterLayout()
        Embedding<Double>.declareParameters(prefix: "embed.", vocabularySize: 6, dimension: 3, into: &layout)
        Linear<Double>.declareParameters(prefix: "head.", inputSize: 3, outputSize: 4, into: &layout)
        let store = ParameterStore<Double>(layout: layout)
        for name in ["embed.weight", "head.weight", "head.bias"] {
            let t = try tensor(c, name), entry = store.entry(named: name)!
            for i in t.scalars.indices { store.values[entry.offset + i] = t.scalars[i] }
        }
        let embed = try Embedding(prefix: "embed.", vocabularySize: 6, dimension: 3, store: store)
        let head = try Linear(prefix: "head.", inputSize: 3, outputSize: 4, store: store)
        let tokens = value(c, "tokens") as! [Int]
        let x = try embed(tokens)
        assertClose(try head(x), try tensor(c, "output"), tolerance: 1e-12, "Linear(Embedding) output")
        store.zeroGradients()
        try embed.backward(
            tokens: tokens,
            outputGradient: try head.backward(input: x, outputGradient: try tensor(c, "output_gradient")))
        for name in ["embed.weight", "head.weight", "head.bias"] {
            let entry = store.entry(named: name)!
            let got = try Tensor(
                shape: entry.shape,
                scalars: Array(UnsafeBufferPointer(start: store.gradients + entry.offset, count: entry.count)))
            assertClose(got, try tensor(c, "grad." + name), tolerance: 1e-12, "grad " + name)
        }
    }
}
