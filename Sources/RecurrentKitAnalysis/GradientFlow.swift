import RecurrentKit
import RecurrentKitText
/// How gradients travel back through time in a trained or fresh model (d2l 8.7, Pascanu et al. 2013).
public enum GradientFlow {
    /// The result of one analysis.
    public struct Report: Sendable {
        /// Recurrent cell.
        public var cell: CellKind
        /// Steps T analysed.
        public var steps: Int
        /// [layer][t]: ||dL/dh_t|| for a loss on the last step only; index T-1-t is the time distance to the loss.
        public var hiddenGradientNorms: [[Double]]
        /// [layer][gate]: spectral radius of each H x H gate block of `weight_hh` (power iteration on W^T W gives the
        /// largest singular value; the radius is estimated by power iteration on W itself).
        public var spectralRadius: [[Double]]
        /// [layer][gate]: largest singular value of each gate block (the operator norm that bounds one step's growth).
        public var largestSingularValue: [[Double]]
    }

    /// Runs the model over `tokens` (at least 2), puts the cross-entropy on the last prediction only, and records
    /// ||dL/dh_t|| for every step and layer, with the spectral radius of every recurrent gate block.
    public static func analyze(model: LanguageModel<Float>, tokens: [Int]) throws -> Report {
        guard tokens.count >= 2 else {
            throw RecurrentKitError("analysis needs at least 2 tokens, got \(tokens.count)")
        }
        let T = tokens.count - 1
        let V = model.configuration.vocabularySize, H = model.configuration.hiddenSize,
            L = model.configuration.numLayers
        let logits = try model.logits(inputs: Array(tokens.dropLast()), steps: T, batch: 1)
        let last = try Tensor<Float>(shape: [1, V], scalars: Array(logits.scalars[((T - 1) * V)...]))
        let (_, dLogits) = try softmaxCrossEntropy(logits: last, targets: [tokens[T]])
        // dL/dh_T = W_out^T dLogits; every other step's output gradient is 0.
        var dOut = Tensor<Float>(zeros: [T, 1, H])
        let w = try model.output.weight.tensor()  // (V, H)
        for j in 0..<H {
            dOut.scalars[(T - 1) * H + j] = (0..<V).reduce(0) { $0 + w.scalars[$1 * H + j] * dLogits.scalars[$1] }
        }
        let recorder = HiddenGradientRecorder<Float>()
        model.recurrent.hiddenGradientRecorder = recorder
        defer { model.recurrent.hiddenGradientRecorder = nil }
        // The forward above cached the sequence; backward reuses it (the model's gradients are restored afterwards).
        let saved = Array(UnsafeBufferPointer(start: model.parameters.gradients, count: model.parameters.count))
        defer { model.parameters.gradients.update(from: saved, count: saved.count) }
        guard let record = model.record else { throw RecurrentKitError("the model has not run a forward") }
        _ = try model.recurrent.backward(record, outputGradient: dOut)
        var radius: [[Double]] = [], singular: [[Double]] = []
        for k in 0..<L {
            let whh = try model.recurrent.weightHH(layer: k).tensor().scalars.map(Double.init)
            var r: [Double] = [], s: [Double] = []
            for g in 0..<model.configuration.cell.gateCount {
                let block = Array(whh[(g * H * H)..<((g + 1) * H * H)])
                r.append(spectralRadius(block, size: H))
                s.append(largestSingularValue(block, size: H))
            }
            radius.append(r); singular.append(s)
        }
        return Report(
            cell: model.configuration.cell, steps: T, hiddenGradientNorms: recorder.norms,
            spectralRadius: radius, largestSingularValue: singular)
    }

    /// |largest eigenvalue| of a square row-major matrix by power iteration (the ratio ||W^k v|| growth, averaged
    /// over the last iterations so complex eigenvalue pairs do not oscillate the estimate).
    public static func spectralRadius(_ matrix: [Double], size n: Int, iterations: Int = 500) -> Double {
        guard n > 0, matrix.count == n * n else { return 0 }
        var v = (0..<n).map { 1.0 + 0.01 * Double($0) }
        var logGrowth = 0.0, counted = 0
        for i in 0..<iterations {
            var w = [Double](repeating: 0, count: n)
            for r in 0..<n { for c in 0..<n { w[r] += matrix[r * n + c] * v[c] } }
            let norm = w.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm == 0 || !norm.isFinite { return 0 }
            if i >= iterations / 2 { logGrowth += Double.log(norm); counted += 1 }
            v = w.map { $0 / norm }
        }
        return Double.exp(logGrowth / Double(max(counted, 1)))
    }

    /// Largest singular value of a square row-major matrix (power iteration on W^T W).
    public static func largestSingularValue(_ matrix: [Double], size n: Int, iterations: Int = 300) -> Double {
        guard n > 0, matrix.count == n * n else { return 0 }
        var v = (0..<n).map { 1.0 + 0.01 * Double($0) }
        var sigma = 0.0
        for _ in 0..<iterations {
            var w = [Double](repeating: 0, count: n)
            for r in 0..<n { for c in 0..<n { w[r] += matrix[r * n + c] * v[c] } }
            var u = [Double](repeating: 0, count: n)
            for r in 0..<n { for c in 0..<n { u[c] += matrix[r * n + c] * w[r] } }
            let norm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm == 0 || !norm.isFinite { return 0 }
            sigma = norm.squareRoot()
            v = u.map { $0 / norm }
        }
        return sigma
    }

    /// Rescales every H x H gate block of every `weight_hh` so that its spectral radius becomes `radius` (> 0):
    /// the knob that moves a fresh model between vanishing and exploding gradients.
    public static func setRecurrentSpectralRadius(_ model: LanguageModel<Float>, radius: Double) throws {
        guard radius > 0, radius.isFinite else {
            throw RecurrentKitError.invalidArgument("radius", radius, "must be > 0")
        }
        let H = model.configuration.hiddenSize
        for k in 0..<model.configuration.numLayers {
            var w = try model.recurrent.weightHH(layer: k).tensor()
            for g in 0..<model.configuration.cell.gateCount {
                let range = (g * H * H)..<((g + 1) * H * H)
                let current = spectralRadius(w.scalars[range].map(Double.init), size: H)
                guard current > 0 else { continue }
                let scale = Float(radius / current)
                for i in range { w.scalars[i] *= scale }
            }
            try model.recurrent.weightHH(layer: k).set(w)
        }
    }

    /// CSV with columns layer, t, distance (T-1-t), grad_norm.
    public static func csv(_ report: Report) -> String {
        var out = "layer,t,distance,grad_norm\n"
        for (k, norms) in report.hiddenGradientNorms.enumerated() {
            for (t, n) in norms.enumerated() { out += "\(k),\(t),\(report.steps - 1 - t),\(n)\n" }
        }
        return out
    }

    /// SVG plot of log10 ||dL/dh|| against time distance, one line per (label, layer) series: norms[t] is drawn at
    /// distance T - 1 - t from the loss (zero or non-finite norms are skipped).
    public static func svg(_ series: [(label: String, norms: [Double])], title: String) -> String {
        let logs = series.flatMap { $0.norms.filter { $0 > 0 && $0.isFinite }.map { Double.log($0) / Double.log(10) } }
        // A log axis: ticks at powers of ten, every 1, 2 or 5 decades.
        let yAxis = AxisTicks.axis(low: logs.min() ?? -1, high: logs.max() ?? 0, target: 8, integer: true)
        let plot = SVGLinePlot(
            title: title, xLabel: "time distance to the loss (steps)", yLabel: "||dL/dh_t|| (log scale)",
            yAxis: yAxis, yTickLabel: { "1e\(Int($0))" },
            xMax: Double(max(series.map { $0.norms.count }.max() ?? 1, 2) - 1))
        return plot.render(
            series.map { s in
                let T = s.norms.count
                let points = s.norms.enumerated().filter { $0.element > 0 && $0.element.isFinite }.map {
                    (x: Double(T - 1 - $0.offset), y: Double.log($0.element) / Double.log(10))
                }
                return SVGLinePlot.Series(label: s.label, points: points)
            })
    }
}
