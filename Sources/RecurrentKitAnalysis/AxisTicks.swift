import RecurrentKit
import RecurrentKitText
import Foundation

/// Round ("nice") tick values for plot axes: steps of 1, 2 or 5 x 10^k, as a reader expects, and labels with just
/// the decimals the step needs. Used by every SVG the package writes (``TrainingReports``, ``GradientFlow``).
public enum AxisTicks {
    /// The smallest step of 1, 2 or 5 x 10^k that cuts `span` into at most `target` intervals (1 for an empty or
    /// non-finite span).
    public static func step(span: Double, target: Int = 5) -> Double {
        guard span > 0, span.isFinite else { return 1 }
        let raw = span / Double(max(target, 1))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        let nice: Double = fraction <= 1 + 1e-9 ? 1 : fraction <= 2 + 1e-9 ? 2 : fraction <= 5 + 1e-9 ? 5 : 10
        return nice * magnitude
    }

    /// The range [low, high] widened to multiples of a round step, with the ticks at every multiple in it.
    /// - Parameters:
    ///   - low: smallest data value.
    ///   - high: largest data value (>= low; an empty range is widened by 1).
    ///   - target: at most this many intervals.
    ///   - integer: steps of at least 1 (counts, epochs, exponents).
    /// - Returns: the widened bounds, the step and the tick values, lowest first.
    public static func axis(
        low: Double, high: Double, target: Int = 5, integer: Bool = false
    )
        -> (low: Double, high: Double, step: Double, ticks: [Double])
    {
        var low = low.isFinite ? low : 0, high = high.isFinite ? high : low + 1
        if high < low { swap(&low, &high) }
        if high == low { high = low + 1 }
        var step = step(span: high - low, target: target)
        if integer { step = max(step, 1) }
        let first = (low / step + 1e-9).rounded(.down), last = (high / step - 1e-9).rounded(.up)
        let ticks = stride(from: first, through: last, by: 1).map { k -> Double in
            let v = k * step
            return v == 0 ? 0 : v  // no -0
        }
        return (first * step, last * step, step, ticks)
    }

    /// Ticks inside [low, high] only (the range is not widened), e.g. for an axis that must start at 0 and end at
    /// the last epoch.
    public static func inside(low: Double, high: Double, target: Int = 5, integer: Bool = false) -> [Double] {
        let widened = axis(low: low, high: high, target: target, integer: integer)
        return widened.ticks.filter { $0 >= low - widened.step * 1e-9 && $0 <= high + widened.step * 1e-9 }
    }

    /// `value` with as many decimals as `step` needs (0 for steps >= 1): 0.05 -> "0.05", 20 -> "20".
    public static func label(_ value: Double, step: Double) -> String {
        let decimals = step >= 1 || !(step > 0) ? 0 : Int((-log10(step) - 1e-9).rounded(.up))
        let text = String(format: "%.\(min(decimals, 12))f", value)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }
}
