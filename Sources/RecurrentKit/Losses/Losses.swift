// Losses for sequence models beyond language modelling: each returns the mean loss and its gradient with respect to
// the predictions, ready for a layer's `backward`. PyTorch's definitions and reductions ("mean").

/// Softmax cross-entropy over any number of classes (PyTorch `F.cross_entropy`), optionally ignoring a padding class
/// and weighting each position.
///
/// The loss is sum_i w_i l_i / sum_i w_i over the rows whose target is not `ignoreIndex`, with
/// l_i = logsumexp(z_i) - z_i[y_i] and w_i = 1 without `weights` (PyTorch's mean over non-ignored targets).
/// - Parameters:
///   - logits: (rows, classes) scores.
///   - targets: `rows` class indices in [0, classes), or `ignoreIndex`.
///   - ignoreIndex: a target value whose rows contribute neither loss nor gradient (e.g. padding).
///   - weights: `rows` non-negative finite weights, one per position.
/// - Returns: the loss (0 when every row is ignored or weighs 0) and dL/dlogits (rows, classes).
/// - Throws: on a shape mismatch, a target outside [0, classes), or an invalid weight.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func softmaxCrossEntropy<Scalar: RecurrentScalar>(
    logits: Tensor<Scalar>, targets: [Int], ignoreIndex: Int?,
    weights: [Double]? = nil
) throws -> (loss: Double, gradient: Tensor<Scalar>) {
    var gradient = Tensor<Scalar>(zeros: [0])
    let loss = try softmaxCrossEntropy(
        logits: logits, targets: targets, ignoreIndex: ignoreIndex, weights: weights, gradient: &gradient)
    return (loss, gradient)
}

/// ``softmaxCrossEntropy(logits:targets:ignoreIndex:weights:)`` writing the gradient into `gradient` (its storage
/// reused when it has the logits' shape).
func softmaxCrossEntropy<Scalar: RecurrentScalar>(
    logits: Tensor<Scalar>, targets: [Int], ignoreIndex: Int?, weights: [Double]?,
    gradient: inout Tensor<Scalar>
) throws -> Double {
    guard logits.shape.count == 2, logits.shape[0] >= 1, logits.shape[1] >= 1 else {
        throw RecurrentKitError("logits must be (rows, classes) with both at least 1, got shape \(logits.shape)")
    }
    let (rows, classes) = (logits.shape[0], logits.shape[1])
    guard targets.count == rows else {
        throw RecurrentKitError("cross-entropy got \(targets.count) targets for \(rows) rows")
    }
    if let weights { try checkWeights(weights, rows: rows, loss: "cross-entropy") }
    var total = 0.0
    for (i, y) in targets.enumerated() where y != ignoreIndex {
        guard y >= 0 && y < classes else {
            throw RecurrentKitError("target \(y) at position \(i) is outside [0, \(classes))")
        }
        total += weights?[i] ?? 1
    }
    gradient.prepare(like: logits.shape)
    gradient.zeroAll()
    guard total > 0 else { return 0 }
    var loss = 0.0
    logits.scalars.withUnsafeBufferPointer { z in
        gradient.scalars.withUnsafeMutableBufferPointer { g in
            for r in 0..<rows where targets[r] != ignoreIndex {
                let w = (weights?[r] ?? 1) / total
                loss +=
                    w
                    * crossEntropyRow(
                        z.baseAddress! + r * classes, classes: classes, target: targets[r],
                        gradient: g.baseAddress! + r * classes, scale: w)
            }
        }
    }
    return loss
}

/// Mean squared error (PyTorch `F.mse_loss`): mean over every element of (p - y)^2; gradient 2 (p - y) / count.
/// With `weights` (one per row of the last axis, e.g. ``sequenceMask(lengths:steps:layout:)`` for a variable-length
/// batch): sum_i w_i sum_j (p_ij - y_ij)^2 / (width sum_i w_i), so a 0/1 mask gives the mean over the valid rows.
/// - Parameters:
///   - predictions: any shape; its last axis is the width of a row.
///   - targets: the same shape.
///   - weights: `count / width` non-negative finite weights, or nil for the plain mean.
/// - Returns: the loss (0 when every weight is 0) and dL/dpredictions (the predictions' shape).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func meanSquaredError<Scalar: RecurrentScalar>(
    predictions: Tensor<Scalar>, targets: Tensor<Scalar>, weights: [Double]? = nil
) throws
    -> (loss: Double, gradient: Tensor<Scalar>)
{
    var gradient = Tensor<Scalar>(zeros: [0])
    let loss = try meanSquaredError(predictions: predictions, targets: targets, weights: weights, gradient: &gradient)
    return (loss, gradient)
}

/// ``meanSquaredError(predictions:targets:weights:)`` writing the gradient into `gradient` (its storage reused when
/// it has the predictions' shape).
func meanSquaredError<Scalar: RecurrentScalar>(
    predictions: Tensor<Scalar>, targets: Tensor<Scalar>, weights: [Double]?,
    gradient: inout Tensor<Scalar>
) throws -> Double {
    let n = try elementCount(predictions, targets, loss: "mean squared error")
    let width = predictions.shape.last ?? 1, rows = n / width
    if let weights { try checkWeights(weights, rows: rows, loss: "mean squared error") }
    let total = (weights?.reduce(0, +) ?? Double(rows)) * Double(width)
    gradient.prepare(like: predictions.shape)
    gradient.zeroAll()
    guard total > 0 else { return 0 }
    var loss = 0.0
    predictions.scalars.withUnsafeBufferPointer { p in
        targets.scalars.withUnsafeBufferPointer { y in
            gradient.scalars.withUnsafeMutableBufferPointer { g in
                for i in 0..<n {
                    let w = weights?[i / width] ?? 1
                    guard w != 0 else { continue }
                    let d = Double(p[i]) - Double(y[i])
                    loss += w * d * d
                    g[i] = Scalar(2 * w * d / total)
                }
            }
        }
    }
    return loss / total
}

/// Mean squared error (PyTorch `nn.MSELoss`) that reuses the storage of the gradient it returns, for a training loop
/// that allocates nothing once warm (e.g. a ``Trainer``'s loss: `{ try mse($0, $1) }`). Values as
/// ``meanSquaredError(predictions:targets:weights:)``.
public final class MeanSquaredErrorLoss<Scalar: RecurrentScalar> {
    private var gradient = Tensor<Scalar>(zeros: [0])

    /// A loss with empty storage.
    public init() {}

    /// The mean of (p - y)^2 over every element and dL/dp, (the predictions' shape).
    public func callAsFunction(
        _ predictions: Tensor<Scalar>, _ targets: Tensor<Scalar>
    ) throws -> (loss: Double, gradient: Tensor<Scalar>) {
        let loss = try meanSquaredError(predictions: predictions, targets: targets, weights: nil, gradient: &gradient)
        return (loss, gradient)
    }
}

/// Softmax cross-entropy (PyTorch `nn.CrossEntropyLoss`) that reuses the storage of the gradient it returns (see
/// ``MeanSquaredErrorLoss``). Values as ``softmaxCrossEntropy(logits:targets:ignoreIndex:weights:)``.
public final class CrossEntropyLoss<Scalar: RecurrentScalar> {
    private var gradient = Tensor<Scalar>(zeros: [0])
    /// A target value whose rows contribute neither loss nor gradient, or nil.
    public let ignoreIndex: Int?

    /// A loss with empty storage, ignoring `ignoreIndex` when given.
    public init(ignoreIndex: Int? = nil) { self.ignoreIndex = ignoreIndex }

    /// The mean cross-entropy of logits (rows, classes) against class indices, and dL/dlogits.
    public func callAsFunction(
        _ logits: Tensor<Scalar>, _ targets: [Int]
    ) throws -> (loss: Double, gradient: Tensor<Scalar>) {
        let loss = try softmaxCrossEntropy(
            logits: logits, targets: targets, ignoreIndex: ignoreIndex, weights: nil, gradient: &gradient)
        return (loss, gradient)
    }
}

/// Loss weights for a variable-length batch: 1 at each row's valid steps (t < lengths[b]) and 0 at padded ones, one per
/// output row: T*B in time-major order, or B*T with ``SequenceLayout/batchFirst``. Pass them as the `weights` of
/// ``softmaxCrossEntropy(logits:targets:ignoreIndex:weights:)`` or ``meanSquaredError(predictions:targets:weights:)``
/// to average over valid positions only, as a loss on `pad_packed_sequence`'s output masked by length does in PyTorch.
/// - Throws: when a length is outside [1, T].
public func sequenceMask(lengths: [Int], steps T: Int, layout: SequenceLayout = .timeMajor) throws -> [Double] {
    let B = lengths.count
    for (row, length) in lengths.enumerated() where length < 1 || length > T {
        throw RecurrentKitError("sequence length \(length) of row \(row) is outside [1, \(T)] (T = \(T) steps)")
    }
    var mask = [Double](repeating: 0, count: T * B)
    for b in 0..<B {
        for t in 0..<lengths[b] { mask[layout == .timeMajor ? t * B + b : b * T + t] = 1 }
    }
    return mask
}

/// Checks one weight per row: count, finite and non-negative.
func checkWeights(_ weights: [Double], rows: Int, loss: String) throws {
    guard weights.count == rows else {
        throw RecurrentKitError("\(loss) got \(weights.count) weights for \(rows) rows")
    }
    for (i, w) in weights.enumerated() where !(w.isFinite && w >= 0) {
        throw RecurrentKitError("weight \(w) at position \(i) must be finite and >= 0")
    }
}

/// Binary cross-entropy on logits (PyTorch `F.binary_cross_entropy_with_logits`), stable for any logit:
/// mean of max(x, 0) - x y + log(1 + exp(-|x|)); gradient (sigmoid(x) - y) / count.
/// - Parameters:
///   - logits: any shape.
///   - targets: the same shape, values in [0, 1].
/// - Returns: the loss and dL/dlogits (the logits' shape).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func binaryCrossEntropyWithLogits<Scalar: RecurrentScalar>(
    logits: Tensor<Scalar>, targets: Tensor<Scalar>
) throws
    -> (loss: Double, gradient: Tensor<Scalar>)
{
    let n = try elementCount(logits, targets, loss: "binary cross-entropy")
    var gradient = Tensor<Scalar>(zeros: logits.shape)
    var loss = 0.0
    for i in 0..<n {
        let x = Double(logits.scalars[i]), y = Double(targets.scalars[i])
        guard y >= 0 && y <= 1 else { throw RecurrentKitError("target \(y) at position \(i) is outside [0, 1]") }
        loss += max(x, 0) - x * y + Double.log(1 + Double.exp(-abs(x)))
        gradient.scalars[i] = Scalar((Double.sigmoid(x) - y) / Double(n))
    }
    return (loss / Double(n), gradient)
}

/// The element count of an element-wise loss's predictions, after checking that the targets have their shape and that
/// there is at least one element.
private func elementCount<Scalar>(_ predictions: Tensor<Scalar>, _ targets: Tensor<Scalar>, loss: String) throws -> Int
{
    guard predictions.shape == targets.shape else {
        throw RecurrentKitError.shapeMismatch("targets", expected: predictions.shape, got: targets.shape)
    }
    guard !predictions.scalars.isEmpty else { throw RecurrentKitError("\(loss) of an empty tensor") }
    return predictions.scalars.count
}
