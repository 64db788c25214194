/// Softmax cross-entropy averaged over rows (PyTorch `F.cross_entropy`, reduction "mean"), log-sum-exp stable.
///
/// - Parameters:
///   - logits: (rows, V) scores, not modified.
///   - rows: number of predictions (>= 1).
///   - V: number of classes (>= 1).
///   - targets: `rows` class indices in [0, V).
///   - gradient: when non-nil, (rows, V) receives dL/dlogits = (softmax - onehot) / rows (overwritten).
///   - gradientScale: multiplies the gradient (1 by default), e.g. to fold a loss weight in.
/// - Returns: mean cross-entropy in nats, accumulated in Double.
/// - Throws: when a target is outside [0, V) or rows/V are not positive.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func softmaxCrossEntropy<Scalar: RecurrentScalar>(
    logits: UnsafePointer<Scalar>, rows: Int, classes V: Int, targets: [Int],
    gradient: UnsafeMutablePointer<Scalar>?, gradientScale: Double = 1
) throws -> Double {
    guard rows >= 1 else { throw RecurrentKitError.invalidArgument("rows", rows, "must be at least 1") }
    guard V >= 1 else { throw RecurrentKitError.invalidArgument("classes", V, "must be at least 1") }
    guard targets.count == rows else {
        throw RecurrentKitError("cross-entropy got \(targets.count) targets for \(rows) rows")
    }
    for (i, y) in targets.enumerated() where y < 0 || y >= V {
        throw RecurrentKitError("target \(y) at position \(i) is outside [0, \(V))")
    }
    var total = 0.0
    let scale = Scalar(gradientScale / Double(rows))
    for r in 0..<rows {
        let g = gradient.map { $0 + r * V }
        total += Double(crossEntropyRow(logits + r * V, classes: V, target: targets[r], gradient: g, scale: scale))
    }
    return total / Double(rows)
}

/// The one softmax cross-entropy of a row, which every cross-entropy in the library runs: returns
/// l = logsumexp(z) - z[target] and, when `gradient` is non-nil, writes scale * (softmax(z) - onehot(target)) into it
/// (classes values, overwritten). `Sum` is the precision of the sums and of l: the scalar itself for the language
/// model's fused loss (its bits are the trained weights'), Double for the tensor losses of
/// ``softmaxCrossEntropy(logits:targets:ignoreIndex:weights:)``. The largest logit is subtracted in `Scalar` before
/// the exponentials (log-sum-exp stable).
@inline(__always)
func crossEntropyRow<Scalar: RecurrentScalar, Sum: RecurrentScalar>(
    _ z: UnsafePointer<Scalar>, classes V: Int, target: Int, gradient g: UnsafeMutablePointer<Scalar>?, scale: Sum
) -> Sum {
    var maxLogit = z[0]
    for j in 1..<max(V, 1) where z[j] > maxLogit { maxLogit = z[j] }
    var sum: Sum = 0
    for j in 0..<V { sum += Sum.exp(Sum(z[j] - maxLogit)) }
    let logSum = Sum.log(sum) + Sum(maxLogit)
    if let g {
        for j in 0..<V { g[j] = Scalar(Sum.exp(Sum(z[j]) - logSum) * scale) }
        g[target] -= Scalar(scale)
    }
    return logSum - Sum(z[target])
}

/// Tensor form of ``softmaxCrossEntropy(logits:rows:classes:targets:gradient:gradientScale:)``:
/// logits (rows, V); returns the mean loss and dL/dlogits (rows, V).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func softmaxCrossEntropy<Scalar: RecurrentScalar>(
    logits: Tensor<Scalar>, targets: [Int]
) throws -> (loss: Double, gradient: Tensor<Scalar>) {
    guard logits.shape.count == 2 else {
        throw RecurrentKitError("logits must be (rows, classes), got shape \(logits.shape)")
    }
    var gradient = Tensor<Scalar>(zeros: logits.shape)
    let loss = try logits.scalars.withUnsafeBufferPointer { z in
        try gradient.scalars.withUnsafeMutableBufferPointer { g in
            try softmaxCrossEntropy(
                logits: z.baseAddress!, rows: logits.shape[0], classes: logits.shape[1],
                targets: targets, gradient: g.baseAddress!)
        }
    }
    return (loss, gradient)
}

/// Perplexity = exp(mean cross-entropy in nats).
public func perplexity(meanCrossEntropy: Double) -> Double {
    Double.exp(meanCrossEntropy)
}
