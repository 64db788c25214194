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

    /// An SVG line plot of several perplexity curves (label, [(epoch, perplexity)]) on shared linear axes.
    public static func perplexitySVG(series: [(label: String, points: [(Int, Double)])], title: String) -> String {
        let width = 640.0, height = 400.0, left = 60.0, right = 170.0, top = 40.0, bottom = 50.0
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
        let values = series.flatMap { $0.points.map(\.1) }.filter(\.isFinite)
        let maxEpoch = Double(max(series.flatMap { $0.points.map(\.0) }.max() ?? 1, 1))
        let yAxis = AxisTicks.axis(low: values.min() ?? 1, high: values.max() ?? 2)
        let yMin = yAxis.low, yMax = yAxis.high
        func x(_ e: Int) -> Double { left + (Double(e) / maxEpoch) * (width - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (v - yMin) / (yMax - yMin)) * (height - top - bottom) }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(fmt((left + width - right) / 2))" y="22" text-anchor="middle" font-size="14">\(escapeXML(title))</text>
            <line x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)" stroke="black"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="black"/>
            <text x="\(fmt((left + width - right) / 2))" y="\(fmt(height - 12))" text-anchor="middle">epoch</text>
            <text x="16" y="\(fmt(height / 2))" text-anchor="middle" transform="rotate(-90 16 \(fmt(height / 2)))">perplexity</text>

            """
        for v in yAxis.ticks {
            svg +=
                "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(y(v) + 4))\" text-anchor=\"end\">\(AxisTicks.label(v, step: yAxis.step))</text>\n"
            svg +=
                "<line x1=\"\(left)\" y1=\"\(fmt(y(v)))\" x2=\"\(width - right)\" y2=\"\(fmt(y(v)))\" stroke=\"#ddd\"/>\n"
        }
        for tick in AxisTicks.inside(low: 0, high: maxEpoch, integer: true) {
            let e = Int(tick)
            svg += "<text x=\"\(fmt(x(e)))\" y=\"\(fmt(height - bottom + 16))\" text-anchor=\"middle\">\(e)</text>\n"
        }
        for (i, s) in series.enumerated() {
            let color = colors[i % colors.count]
            let path = s.points.filter { $0.1.isFinite }.enumerated().map { j, p in
                "\(j == 0 ? "M" : "L")\(fmt(x(p.0))),\(fmt(y(p.1)))"
            }
            svg +=
                "<path d=\"\(path.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(i % 2 == 1 ? " stroke-dasharray=\"6 3\"" : "")/>\n"
            svg +=
                "<text x=\"\(fmt(width - right + 8))\" y=\"\(fmt(top + 4 + 16 * Double(i)))\" fill=\"\(color)\">\(escapeXML(s.label))</text>\n"
        }
        return svg + "</svg>\n"
    }

    private static func json(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
    private static func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
}
