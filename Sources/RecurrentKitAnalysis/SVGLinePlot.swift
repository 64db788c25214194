/// The one SVG line-plot writer behind every plot the package draws (``TrainingReports/perplexitySVG(series:title:)``,
/// ``GradientFlow/svg(_:title:)``): 640 x 400 on white, a title, two labelled axes, round ticks from ``AxisTicks``
/// with light grid lines, an x axis of integers from 0 and a legend on the right. Coordinates are written with two
/// decimals whatever the locale.
struct SVGLinePlot {
    /// One curve: its legend label, its points in data coordinates (non-finite y values are skipped), dashed or solid.
    struct Series {
        var label: String
        var points: [(x: Double, y: Double)]
        var dashed = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    /// The y axis (bounds and ticks, e.g. from ``AxisTicks/axis(low:high:target:integer:)``) and its tick labels.
    var yAxis: (low: Double, high: Double, step: Double, ticks: [Double])
    var yTickLabel: (Double) -> String
    /// The x axis runs from 0 to this (at least 1), with integer ticks.
    var xMax: Double

    /// The SVG document for `series`, drawn in order with a cycle of eight colours.
    func render(_ series: [Series]) -> String {
        let width = 640.0, height = 400.0, left = 60.0, right = 160.0, top = 40.0, bottom = 50.0
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        let xMax = max(self.xMax, 1), yMin = yAxis.low, yMax = yAxis.high
        func x(_ v: Double) -> Double { left + v / xMax * (width - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (v - yMin) / (yMax - yMin)) * (height - top - bottom) }
        func f(_ v: Double) -> String { Self.twoDecimals(v) }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f((left + width - right) / 2))" y="22" text-anchor="middle" font-size="14">\(escapeXML(title))</text>
            <line x1="\(f(left))" y1="\(f(height - bottom))" x2="\(f(width - right))" y2="\(f(height - bottom))" \
            stroke="black"/>
            <line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(height - bottom))" stroke="black"/>
            <text x="\(f((left + width - right) / 2))" y="\(f(height - 12))" text-anchor="middle">\(escapeXML(xLabel))</text>
            <text x="16" y="\(f(height / 2))" text-anchor="middle" transform="rotate(-90 16 \(f(height / 2)))">\
            \(escapeXML(yLabel))</text>

            """
        for v in yAxis.ticks {
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(yTickLabel(v))</text>\n"
            svg +=
                "<line x1=\"\(f(left))\" y1=\"\(f(y(v)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(v)))\" "
                + "stroke=\"#ddd\"/>\n"
        }
        for tick in AxisTicks.inside(low: 0, high: xMax, integer: true) {
            svg +=
                "<text x=\"\(f(x(tick)))\" y=\"\(f(height - bottom + 16))\" "
                + "text-anchor=\"middle\">\(Int(tick))</text>\n"
        }
        for (i, s) in series.enumerated() {
            let color = colors[i % colors.count]
            let path = s.points.filter { $0.y.isFinite }.enumerated().map { j, p in
                "\(j == 0 ? "M" : "L")\(f(x(p.x))),\(f(y(p.y)))"
            }
            let dash = s.dashed ? " stroke-dasharray=\"6 3\"" : ""
            svg +=
                "<path d=\"\(path.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" "
                + "stroke-width=\"2\"\(dash)/>\n"
            svg +=
                "<text x=\"\(f(width - right + 8))\" y=\"\(f(top + 4 + 16 * Double(i)))\" fill=\"\(color)\">"
                + "\(escapeXML(s.label))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// `v` with two decimals ("12.34", "-0.50"), independent of the locale.
    static func twoDecimals(_ v: Double) -> String {
        guard v.isFinite else { return "0.00" }
        let hundredths = Int((v * 100).rounded())
        let digits = String(hundredths.magnitude),
            padded = String(repeating: "0", count: max(0, 3 - digits.count)) + digits
        return (hundredths < 0 ? "-" : "") + padded.dropLast(2) + "." + padded.suffix(2)
    }
}

/// `text` with &, < and > escaped for SVG/XML text content.
func escapeXML(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
        of: ">", with: "&gt;")
}
