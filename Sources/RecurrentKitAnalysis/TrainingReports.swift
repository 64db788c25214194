import RecurrentKit
import RecurrentKitText
import Foundation

/// Metrics as JSON lines (one object per epoch) and an SVG plot of perplexity per epoch, like d2l's animator.
public enum TrainingReports {
    /// One JSON object per line: epoch, step, train_perplexity, validation_perplexity (when present),
    /// gradient_norm, tokens_per_second, elapsed_seconds, learning_rate (when recorded).
    public static func jsonLines(_ history: [EpochReport]) -> String {
        history.map { r in
            var fields = [
                "\"epoch\":\(r.epoch)", "\"step\":\(r.step)", "\"train_perplexity\":\(json(r.trainPerplexity))",
            ]
            if let v = r.validationPerplexity { fields.append("\"validation_perplexity\":\(json(v))") }
            fields += [
                "\"gradient_norm\":\(json(r.gradientNorm))", "\"tokens_per_second\":\(json(r.tokensPerSecond))",
                "\"elapsed_seconds\":\(json(r.elapsedSeconds))",
            ]
            if let rate = r.learningRate { fields.append("\"learning_rate\":\(json(rate))") }
            return "{" + fields.joined(separator: ",") + "}\n"
        }.joined()
    }

    /// Reads what ``jsonLines(_:)`` writes (one object per line; `null` for a non-finite value), e.g. to plot a
    /// finished run's metrics.jsonl again.
    /// - Throws: naming the line that is not such an object.
    public static func history(fromJSONLines text: String) throws -> [EpochReport] {
        var reports: [EpochReport] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw RecurrentKitError("metrics line \(i + 1) is not a JSON object")
            }
            func number(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
            guard let epoch = object["epoch"] as? Int, let step = object["step"] as? Int, epoch >= 1, step >= 0 else {
                throw RecurrentKitError("metrics line \(i + 1) has no valid epoch and step")
            }
            reports.append(
                EpochReport(
                    epoch: epoch, step: step, trainPerplexity: number("train_perplexity") ?? .nan,
                    validationPerplexity: number("validation_perplexity"),
                    gradientNorm: number("gradient_norm") ?? .nan,
                    tokensPerSecond: number("tokens_per_second") ?? .nan,
                    elapsedSeconds: number("elapsed_seconds") ?? .nan,
                    learningRate: number("learning_rate")))
        }
        return reports
    }

    /// An SVG line plot of training (and validation) perplexity against epoch.
    public static func perplexitySVG(_ history: [EpochReport], title: String) -> String {
        var series = [(label: "train", points: history.map { ($0.epoch, $0.trainPerplexity) })]
        let validation = history.compactMap { r in r.validationPerplexity.map { (r.epoch, $0) } }
        if !validation.isEmpty { series.append((label: "validation", points: validation)) }
        return perplexitySVG(series: series, title: title)
    }

    /// An SVG line plot of several perplexity curves (label, [(epoch, perplexity)]) on shared linear axes (every
    /// second curve dashed).
    public static func perplexitySVG(series: [(label: String, points: [(Int, Double)])], title: String) -> String {
        let values = series.flatMap { $0.points.map(\.1) }.filter(\.isFinite)
        let yAxis = AxisTicks.axis(low: values.min() ?? 1, high: values.max() ?? 2)
        let plot = SVGLinePlot(
            title: title, xLabel: "epoch", yLabel: "perplexity", yAxis: yAxis,
            yTickLabel: { AxisTicks.label($0, step: yAxis.step) },
            xMax: Double(max(series.flatMap { $0.points.map(\.0) }.max() ?? 1, 1)))
        return plot.render(
            series.enumerated().map { i, s in
                SVGLinePlot.Series(
                    label: s.label, points: s.points.map { (x: Double($0.0), y: $0.1) }, dashed: i % 2 == 1)
            })
    }

    private static func json(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
}
