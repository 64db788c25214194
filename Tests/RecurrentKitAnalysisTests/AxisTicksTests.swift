import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitAnalysis
@testable import RecurrentKitText

/// Round tick values on every plot axis.
final class AxisTicksTests: XCTestCase {
    /// True when x is 1, 2 or 5 times a power of ten.
    private func isRound(_ x: Double) -> Bool {
        let m = x / pow(10, log10(x).rounded(.down))
        return [1.0, 2, 5, 10].contains { abs(m - $0) < 1e-9 }
    }

    func testStepsAreOneTwoFiveTimesPowersOfTen() {
        XCTAssertEqual(AxisTicks.step(span: 99, target: 5), 20)
        XCTAssertEqual(AxisTicks.step(span: 11.67, target: 5), 5)
        XCTAssertEqual(AxisTicks.step(span: 1, target: 5), 0.2)
        XCTAssertEqual(AxisTicks.step(span: 0.003, target: 3), 0.001)
        var g = SeededGenerator(seed: 3)
        for _ in 0..<2000 {
            let span = pow(10, 8 * g.nextUnit() - 4), target = 1 + g.nextInt(below: 10)
            let step = AxisTicks.step(span: span, target: target)
            XCTAssertTrue(isRound(step), "\(step)")
            XCTAssertLessThanOrEqual(span / step, Double(target) + 1e-9)
            XCTAssertGreaterThan(span / step, Double(target) / 5 - 1e-9, "not needlessly coarse")
        }
    }

    func testPerplexityAxisFromTheIssue() {
        // The old plot labelled 24.37, 18.54, 12.70 for perplexities between about 1 and 24.4.
        let axis = AxisTicks.axis(low: 1.03, high: 24.37)
        XCTAssertEqual(axis.step, 5)
        XCTAssertEqual(axis.ticks, [0, 5, 10, 15, 20, 25])
        XCTAssertEqual(axis.low, 0)
        XCTAssertEqual(axis.high, 25)
        XCTAssertEqual(AxisTicks.inside(low: 0, high: 99, integer: true), [0, 20, 40, 60, 80])
        XCTAssertEqual(AxisTicks.inside(low: 0, high: 3, integer: true), [0, 1, 2, 3])
        XCTAssertEqual(
            AxisTicks.axis(low: -13.4, high: -0.2, target: 8, integer: true).ticks, [-14, -12, -10, -8, -6, -4, -2, 0])
    }

    func testAxisCoversDataWithRoundTicksAndCleanLabels() {
        var g = SeededGenerator(seed: 4)
        for _ in 0..<2000 {
            let a = (g.nextUnit() - 0.5) * pow(10, 6 * g.nextUnit() - 2), b = a + pow(10, 6 * g.nextUnit() - 3)
            let axis = AxisTicks.axis(low: a, high: b)
            XCTAssertLessThanOrEqual(axis.low, a)
            XCTAssertGreaterThanOrEqual(axis.high, b)
            XCTAssertTrue(isRound(axis.step))
            XCTAssertGreaterThanOrEqual(axis.ticks.count, 2)
            XCTAssertLessThanOrEqual(axis.ticks.count, 7)
            for t in axis.ticks {
                let k = t / axis.step
                XCTAssertEqual(k, k.rounded(), accuracy: 1e-6, "tick \(t) not a multiple of \(axis.step)")
                let label = AxisTicks.label(t, step: axis.step)
                XCTAssertEqual(Double(label)!, t, accuracy: axis.step * 1e-6)
                XCTAssertFalse(label.hasPrefix("-0") && Double(label) == 0)
                XCTAssertLessThanOrEqual(label.count, 16, label)
            }
        }
        XCTAssertEqual(AxisTicks.label(0.30000000000000004, step: 0.1), "0.3")
        XCTAssertEqual(AxisTicks.label(20, step: 5), "20")
        XCTAssertEqual(AxisTicks.label(-1e-17, step: 0.05), "0.00")
        let degenerate = AxisTicks.axis(low: 5, high: 5)
        XCTAssertLessThan(degenerate.low, degenerate.high)
    }

    func testPlotsUseRoundTicks() {
        let history = (1...99).map {
            EpochReport(
                epoch: $0, step: $0, trainPerplexity: 24.37 - Double($0) * 0.2, validationPerplexity: nil,
                gradientNorm: 1, tokensPerSecond: 1, elapsedSeconds: 1)
        }
        let svg = TrainingReports.perplexitySVG(history, title: "t")
        XCTAssertTrue(svg.contains(">20</text>"))
        XCTAssertFalse(svg.contains(">24.37<"))
        XCTAssertFalse(svg.contains(">74<"))
        let flow = GradientFlow.svg([(label: "a", norms: (0..<100).map { pow(10, -Double($0) / 10) })], title: "f")
        XCTAssertTrue(flow.contains(">1e-10</text>"))
        XCTAssertTrue(flow.contains(">80</text>"))
    }

    func testMetricsRoundTripForReplotting() throws {
        let history = [
            EpochReport(
                epoch: 1, step: 8, trainPerplexity: 24.5, validationPerplexity: nil, gradientNorm: 0.2,
                tokensPerSecond: 1000, elapsedSeconds: 0.1),
            EpochReport(
                epoch: 2, step: 16, trainPerplexity: .infinity, validationPerplexity: 30, gradientNorm: .nan,
                tokensPerSecond: 900, elapsedSeconds: 0.2),
        ]
        let back = try TrainingReports.history(fromJSONLines: TrainingReports.jsonLines(history))
        XCTAssertEqual(back.count, 2)
        XCTAssertEqual(back[0], history[0])
        XCTAssertTrue(back[1].trainPerplexity.isNaN)  // null comes back as NaN: not finite, not plotted
        XCTAssertEqual(back[1].validationPerplexity, 30)
        XCTAssertThrowsError(try TrainingReports.history(fromJSONLines: "{\"epoch\": 1}\n"))
        XCTAssertThrowsError(try TrainingReports.history(fromJSONLines: "not json\n"))
    }
}
