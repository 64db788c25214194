/// Forecasting batches from one series: the inputs are `window` consecutive steps and the targets the `horizon`
/// values right after them (PyTorch: `series[idx]` with `idx = starts[:, None] + arange(window)`).
///
/// ```swift
/// let series = try Tensor<Float>(shape: [1000], scalars: (0..<1000).map { Float(sin(0.1 * Double($0))) })
/// let windows = try SlidingWindows(series: series, window: 24, horizon: 1)
/// let (x, y) = try windows.batch(starts: [0, 10, 20])   // x (24, 3, 1), y (3, 1)
/// ```
public struct SlidingWindows<Scalar: RecurrentScalar>: Sendable {
    /// The series, (N, F) (a one-dimensional series is read as (N, 1)).
    public let series: Tensor<Scalar>
    /// Steps per input window, T.
    public let window: Int
    /// Values predicted after each window.
    public let horizon: Int

    /// Windows over `series`, (N) or (N, F).
    /// - Throws: when the series is not one- or two-dimensional, a size is below 1, or the series is shorter than
    ///   `window + horizon` steps.
    public init(series: Tensor<Scalar>, window: Int, horizon: Int = 1) throws {
        guard series.shape.count == 1 || series.shape.count == 2 else {
            throw RecurrentKitError("a series must be (N) or (N, F), got shape \(series.shape)")
        }
        guard window >= 1, horizon >= 1 else {
            throw RecurrentKitError("window \(window) and horizon \(horizon) must be at least 1")
        }
        let n = series.shape[0]
        guard n >= window + horizon else {
            throw RecurrentKitError("a series of \(n) steps has no window of \(window) + \(horizon) steps")
        }
        self.series = series.shape.count == 1 ? try series.reshaped([n, 1]) : series
        (self.window, self.horizon) = (window, horizon)
    }

    /// Features per step, F.
    public var features: Int { series.shape[1] }

    /// Number of windows: valid starts are 0 ..< count.
    public var count: Int { series.shape[0] - window - horizon + 1 }

    /// The windows starting at `starts`.
    /// - Parameters:
    ///   - starts: B first steps, each in [0, ``count``).
    ///   - layout: of the inputs.
    /// - Returns: inputs (T, B, F) time-major or (B, T, F) batch-first, and targets (B, horizon x F): row b holds
    ///   steps starts[b] + T ..< starts[b] + T + horizon, feature by feature.
    /// - Throws: when a start is outside [0, ``count``) or `starts` is empty.
    public func batch(
        starts: [Int], layout: SequenceLayout = .timeMajor
    ) throws -> (inputs: Tensor<Scalar>, targets: Tensor<Scalar>) {
        var inputs = Tensor<Scalar>(zeros: [0]), targets = Tensor<Scalar>(zeros: [0])
        try fill(starts: starts[...], offset: 0, layout: layout, inputs: &inputs, targets: &targets)
        return (inputs, targets)
    }

    /// Writes the windows starting at `offset + starts[b]` into `inputs` and `targets` (see ``batch(starts:layout:)``),
    /// reusing their storage when their shapes match.
    func fill(
        starts: ArraySlice<Int>, offset: Int, layout: SequenceLayout, inputs: inout Tensor<Scalar>,
        targets: inout Tensor<Scalar>
    ) throws {
        guard !starts.isEmpty else { throw RecurrentKitError("a batch needs at least one window start") }
        for (b, s) in starts.enumerated() where offset + s < 0 || offset + s >= count {
            throw RecurrentKitError("window start \(offset + s) of row \(b) is outside [0, \(count))")
        }
        let (B, T, F) = (starts.count, window, features)
        if layout == .timeMajor { inputs.prepare(T, B, F) } else { inputs.prepare(B, T, F) }
        targets.prepare(B, horizon * F)
        series.scalars.withUnsafeBufferPointer { x in
            inputs.scalars.withUnsafeMutableBufferPointer { i in
                targets.scalars.withUnsafeMutableBufferPointer { y in
                    for (b, start) in starts.enumerated() {
                        let s = offset + start
                        for t in 0..<T {
                            let to = layout == .timeMajor ? (t * B + b) * F : (b * T + t) * F
                            for f in 0..<F { i[to + f] = x[(s + t) * F + f] }
                        }
                        for k in 0..<(horizon * F) { y[b * horizon * F + k] = x[(s + T) * F + k] }
                    }
                }
            }
        }
    }
}
