import _RecurrentKitKernels

/// How ``clipGradientNorm(_:maxNorm:style:)`` scales.
public enum ClipStyle: String, Codable, CaseIterable, Sendable {
    /// d2l `grad_clipping` and Pascanu et al.: when norm > maxNorm, g *= maxNorm / norm; otherwise untouched.
    case d2l
    /// `torch.nn.utils.clip_grad_norm_`: g *= min(1, maxNorm / (norm + 1e-6)), always multiplied.
    case pytorch
}

/// Clips all gradients of `store` by their global L2 norm and returns the norm before clipping.
/// - Parameters:
///   - store: the parameters whose gradients are scaled in place.
///   - maxNorm: threshold, > 0 and finite.
///   - style: ``ClipStyle/d2l`` (default) or ``ClipStyle/pytorch``; they differ only by PyTorch's 1e-6.
/// - Throws: when maxNorm is invalid, or when the norm is NaN or infinite (the gradients are left untouched,
///   never silently scaled by NaN).
@discardableResult
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func clipGradientNorm<Scalar: RecurrentScalar>(
    _ store: ParameterStore<Scalar>, maxNorm: Double, style: ClipStyle = .d2l
) throws -> Double {
    guard maxNorm.isFinite, maxNorm > 0 else {
        throw RecurrentKitError.invalidArgument("maxNorm", maxNorm, "must be a positive finite number")
    }
    let norm = store.gradientSquaredNorm().squareRoot()
    guard norm.isFinite else {
        throw RecurrentKitError("gradient norm is \(norm): a NaN or infinite gradient reached clipping")
    }
    let coefficient: Double
    switch style {
    case .d2l: coefficient = norm > maxNorm ? maxNorm / norm : 1
    case .pytorch: coefficient = min(1, maxNorm / (norm + 1e-6))
    }
    if coefficient != 1 || style == .pytorch {
        let c = Scalar(coefficient)
        for i in 0..<store.count { store.gradients[i] *= c }
    }
    return norm
}

/// An optimizer updates every value of a ``ParameterStore`` from its gradients in one loop.
public protocol Optimizer: AnyObject {
    /// Learning rate (>= 0); may be changed between steps (schedules).
    var learningRate: Double { get set }
    /// Applies one update from `store.gradients` (which it does not zero).
    func step<Scalar: RecurrentScalar>(_ store: ParameterStore<Scalar>) throws
    /// Number of updates applied so far.
    var stepCount: Int { get }
    /// Internal buffers (momentum, moments) for checkpoints, name -> values; empty for plain SGD.
    var stateBuffers: [String: [Double]] { get }
    /// Restores buffers saved by `stateBuffers` and the step count.
    func restore(stateBuffers: [String: [Double]], stepCount: Int) throws
}

/// Stochastic gradient descent with PyTorch's `torch.optim.SGD` semantics.
///
/// d_p = g + weightDecay * p; buf = momentum * buf + (1 - dampening) * d_p (buf = d_p on the first step);
/// d_p = nesterov ? d_p + momentum * buf : buf; p -= lr * d_p. d2l's `sgd(params, lr, batch_size=1)` is lr only.
public final class SGD: Optimizer {
    /// Learning rate, >= 0.
    public var learningRate: Double
    /// Momentum in [0, 1); 0 disables the buffer. Default 0.
    public let momentum: Double
    /// Dampening in [0, 1]; default 0.
    public let dampening: Double
    /// L2 penalty added to the gradient, >= 0; default 0.
    public let weightDecay: Double
    /// Nesterov momentum (needs momentum > 0 and dampening 0); default false.
    public let nesterov: Bool
    /// Updates applied so far.
    public private(set) var stepCount = 0
    private let buffer = StateBuffer(name: "SGD momentum")

    /// Creates SGD; throws an error naming the first invalid argument.
    public init(
        learningRate: Double, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
        nesterov: Bool = false
    ) throws {
        try checkLearningRate(learningRate)
        try checkMomentum(momentum)
        guard dampening.isFinite, dampening >= 0, dampening <= 1 else {
            throw RecurrentKitError.invalidArgument("dampening", dampening, "must be in [0, 1]")
        }
        try checkWeightDecay(weightDecay)
        guard !nesterov || (momentum > 0 && dampening == 0) else {
            throw RecurrentKitError("nesterov momentum needs momentum > 0 and dampening 0")
        }
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    /// One SGD update.
    // Called through the `Optimizer` existential, so without these the loop would run unspecialized (boxed scalars).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func step<Scalar: RecurrentScalar>(_ store: ParameterStore<Scalar>) throws {
        try checkLearningRate(learningRate)
        let p = store.values, g = store.gradients, n = store.count
        let lr = Scalar(learningRate), wd = Scalar(weightDecay)
        if momentum == 0 {
            if weightDecay == 0 {
                for i in 0..<n { p[i] -= lr * g[i] }
            } else {
                for i in 0..<n { p[i] -= lr * (g[i] + wd * p[i]) }
            }
        } else {
            let buf = try buffer.values(Scalar.self, count: n, afterSteps: stepCount)
            let mu = Scalar(momentum), keep = Scalar(1 - dampening)
            let first = stepCount == 0
            for i in 0..<n {
                let d = g[i] + wd * p[i]
                let b = first ? d : mu * buf[i] + keep * d
                buf[i] = b
                p[i] -= lr * (nesterov ? d + mu * b : b)
            }
        }
        stepCount += 1
    }

    /// The momentum buffer, when there is one.
    public var stateBuffers: [String: [Double]] { buffer.isEmpty ? [:] : ["momentum_buffer": buffer.doubles] }

    /// Restores the momentum buffer and step count.
    /// - Throws: on a negative step count, an unknown buffer name, or a non-finite value; a buffer whose size differs
    ///   from the parameters' is refused by the next ``step(_:)``.
    public func restore(stateBuffers: [String: [Double]], stepCount: Int) throws {
        try checkOptimizerState(stateBuffers, names: ["momentum_buffer"], stepCount: stepCount)
        buffer.restore(stateBuffers["momentum_buffer"] ?? [])
        self.stepCount = stepCount
    }
}

/// Adam (Kingma and Ba) with PyTorch's `torch.optim.Adam` arithmetic and bias correction; `decoupled` gives AdamW.
///
/// g += weightDecay * p (Adam) or p *= 1 - lr * weightDecay (AdamW); m = lerp(m, g, 1 - beta1);
/// v = beta2 v + (1 - beta2) g^2; p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
public final class Adam: Optimizer {
    /// Learning rate, >= 0. Default 0.001.
    public var learningRate: Double
    /// Exponential decay of the first moment, in [0, 1). Default 0.9.
    public let beta1: Double
    /// Exponential decay of the second moment, in [0, 1). Default 0.999.
    public let beta2: Double
    /// Added to the denominator, > 0. Default 1e-8.
    public let epsilon: Double
    /// Weight decay, >= 0. Default 0 (Adam) / 0.01 (AdamW, PyTorch's default).
    public let weightDecay: Double
    /// True for AdamW (decoupled weight decay).
    public let decoupled: Bool
    /// Updates applied so far (t in the bias corrections).
    public private(set) var stepCount = 0
    // Moments kept in the parameters' precision, as PyTorch does.
    private let firstMoment = StateBuffer(name: "Adam exp_avg")
    private let secondMoment = StateBuffer(name: "Adam exp_avg_sq")

    /// Creates Adam (or AdamW when `decoupled`); throws an error naming the first invalid argument.
    public init(
        learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
        weightDecay: Double = 0, decoupled: Bool = false
    ) throws {
        try checkLearningRate(learningRate)
        guard beta1.isFinite, beta1 >= 0, beta1 < 1 else {
            throw RecurrentKitError.invalidArgument("beta1", beta1, "must be in [0, 1)")
        }
        guard beta2.isFinite, beta2 >= 0, beta2 < 1 else {
            throw RecurrentKitError.invalidArgument("beta2", beta2, "must be in [0, 1)")
        }
        guard epsilon.isFinite, epsilon > 0 else {
            throw RecurrentKitError.invalidArgument("epsilon", epsilon, "must be > 0")
        }
        try checkWeightDecay(weightDecay)
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupled = decoupled
    }

    /// AdamW (Loshchilov and Hutter) with PyTorch's defaults (weight decay 0.01).
    public static func adamW(
        learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
        epsilon: Double = 1e-8, weightDecay: Double = 0.01
    ) throws -> Adam {
        try Adam(
            learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay,
            decoupled: true)
    }

    /// One Adam update.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func step<Scalar: RecurrentScalar>(_ store: ParameterStore<Scalar>) throws {
        try checkLearningRate(learningRate)
        let n = store.count
        let mBuf = try firstMoment.values(Scalar.self, count: n, afterSteps: stepCount)
        let vBuf = try secondMoment.values(Scalar.self, count: n, afterSteps: stepCount)
        stepCount += 1
        let t = Double(stepCount)
        let biasCorrection1 = 1 - rk_pow(beta1, t)
        let biasCorrection2Sqrt = (1 - rk_pow(beta2, t)).squareRoot()
        let stepSize = Scalar(learningRate / biasCorrection1)
        let b1 = Scalar(1 - beta1), b2 = Scalar(beta2), oneMinusB2 = Scalar(1 - beta2)
        let eps = Scalar(epsilon), wd = Scalar(weightDecay), bc2 = Scalar(biasCorrection2Sqrt)
        let decay = Scalar(1 - learningRate * weightDecay)
        let p = store.values, g = store.gradients
        let decoupled = self.decoupled, hasDecay = weightDecay != 0
        if Scalar.self == Float.self {
            // The loop below in the C kernels (optimizer_steps.c), vectorised and split over the pool: the same
            // operations, so the same bits.
            var args = rk_adam_f32_args(
                b1: Float(b1), b2: Float(b2), oneMinusB2: Float(oneMinusB2), bc2: Float(bc2), eps: Float(eps),
                stepSize: Float(stepSize), wd: Float(wd), decay: Float(decay),
                decayMode: hasDecay ? (decoupled ? 2 : 1) : 0)
            rk_adam_f32(floats(p), floats(g), floats(mBuf), floats(vBuf), n, &args)
            return
        }
        for i in 0..<n {
            var grad = g[i]
            if hasDecay {
                if decoupled { p[i] *= decay } else { grad += wd * p[i] }
            }
            var m = mBuf[i], v = vBuf[i]
            m += (grad - m) * b1
            v = v * b2 + oneMinusB2 * grad * grad
            mBuf[i] = m; vBuf[i] = v
            let denominator = v.squareRoot() / bc2 + eps
            p[i] -= stepSize * (m / denominator)
        }
    }

    /// `exp_avg` and `exp_avg_sq` (PyTorch's names).
    public var stateBuffers: [String: [Double]] {
        firstMoment.isEmpty ? [:] : ["exp_avg": firstMoment.doubles, "exp_avg_sq": secondMoment.doubles]
    }

    /// Restores the moments and step count.
    /// - Throws: on a negative step count, unknown or mismatched buffers, or a non-finite value; buffers whose size
    ///   differs from the parameters' are refused by the next ``step(_:)``.
    public func restore(stateBuffers: [String: [Double]], stepCount: Int) throws {
        try checkOptimizerState(stateBuffers, names: ["exp_avg", "exp_avg_sq"], stepCount: stepCount)
        let m = stateBuffers["exp_avg"] ?? [], v = stateBuffers["exp_avg_sq"] ?? []
        guard m.count == v.count else {
            throw RecurrentKitError("Adam state buffers have different sizes (\(m.count), \(v.count))")
        }
        firstMoment.restore(m)
        secondMoment.restore(v)
        self.stepCount = stepCount
    }
}

/// RMSprop (Hinton; char-rnn's default) with PyTorch's `torch.optim.RMSprop` arithmetic:
///
/// g += weightDecay * p; s = alpha s + (1 - alpha) g^2; centered: a = lerp(a, g, 1 - alpha), d = sqrt(s - a^2) + eps,
/// else d = sqrt(s) + eps; with momentum b = momentum b + g / d, p -= lr b; without, p -= lr g / d.
public final class RMSprop: Optimizer {
    /// Learning rate, >= 0. Default 0.01 (PyTorch's).
    public var learningRate: Double
    /// Decay of the running mean of squared gradients, in [0, 1). Default 0.99 (PyTorch); char-rnn uses 0.95.
    public let alpha: Double
    /// Added to the denominator, > 0. Default 1e-8.
    public let epsilon: Double
    /// Weight decay (L2 added to the gradient), >= 0. Default 0.
    public let weightDecay: Double
    /// Momentum, in [0, 1). Default 0.
    public let momentum: Double
    /// Whether the squared mean is centered by the running mean of the gradients (PyTorch `centered`).
    public let centered: Bool
    /// Updates applied so far.
    public private(set) var stepCount = 0
    private let squareAverage = StateBuffer(name: "RMSprop square_avg")
    private let gradientAverage = StateBuffer(name: "RMSprop grad_avg")
    private let momentumBuffer = StateBuffer(name: "RMSprop momentum_buffer")

    /// Creates RMSprop; throws an error naming the first invalid argument.
    public init(
        learningRate: Double = 0.01, alpha: Double = 0.99, epsilon: Double = 1e-8, weightDecay: Double = 0,
        momentum: Double = 0, centered: Bool = false
    ) throws {
        try checkLearningRate(learningRate)
        guard alpha.isFinite, alpha >= 0, alpha < 1 else {
            throw RecurrentKitError.invalidArgument("alpha", alpha, "must be in [0, 1)")
        }
        guard epsilon.isFinite, epsilon > 0 else {
            throw RecurrentKitError.invalidArgument("epsilon", epsilon, "must be > 0")
        }
        try checkWeightDecay(weightDecay)
        try checkMomentum(momentum)
        self.learningRate = learningRate
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
    }

    /// One RMSprop update.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func step<Scalar: RecurrentScalar>(_ store: ParameterStore<Scalar>) throws {
        try checkLearningRate(learningRate)
        let n = store.count
        let square = try squareAverage.values(Scalar.self, count: n, afterSteps: stepCount)
        let average = centered ? try gradientAverage.values(Scalar.self, count: n, afterSteps: stepCount) : nil
        let buffer = momentum > 0 ? try momentumBuffer.values(Scalar.self, count: n, afterSteps: stepCount) : nil
        stepCount += 1
        let a = Scalar(alpha), oneMinusA = Scalar(1 - alpha), eps = Scalar(epsilon), wd = Scalar(weightDecay)
        let lr = Scalar(learningRate), mu = Scalar(momentum)
        let p = store.values, g = store.gradients
        for i in 0..<n {
            var grad = g[i]
            if weightDecay != 0 { grad += wd * p[i] }
            square[i] = square[i] * a + oneMinusA * grad * grad
            var denominator: Scalar
            if let average {
                average[i] += (grad - average[i]) * oneMinusA
                denominator = (square[i] - average[i] * average[i]).squareRoot()
            } else {
                denominator = square[i].squareRoot()
            }
            denominator += eps
            if let buffer {
                buffer[i] = buffer[i] * mu + grad / denominator
                p[i] -= lr * buffer[i]
            } else {
                p[i] -= lr * (grad / denominator)
            }
        }
    }

    /// `square_avg`, and `grad_avg` (centered) and `momentum_buffer` (momentum) (PyTorch's names).
    public var stateBuffers: [String: [Double]] {
        var buffers: [String: [Double]] = [:]
        if !squareAverage.isEmpty { buffers["square_avg"] = squareAverage.doubles }
        if !gradientAverage.isEmpty { buffers["grad_avg"] = gradientAverage.doubles }
        if !momentumBuffer.isEmpty { buffers["momentum_buffer"] = momentumBuffer.doubles }
        return buffers
    }

    /// Restores the running averages and the step count.
    /// - Throws: on a negative step count, unknown, missing or mismatched buffers, or a non-finite value.
    public func restore(stateBuffers: [String: [Double]], stepCount: Int) throws {
        try checkOptimizerState(
            stateBuffers, names: ["square_avg", "grad_avg", "momentum_buffer"], stepCount: stepCount)
        let s = stateBuffers["square_avg"] ?? []
        if stepCount > 0 {
            guard !s.isEmpty else {
                throw RecurrentKitError("RMSprop state has no square_avg after \(stepCount) step(s)")
            }
            if centered, stateBuffers["grad_avg"]?.count != s.count {
                throw RecurrentKitError("centered RMSprop state needs grad_avg of \(s.count) values")
            }
            if momentum > 0, stateBuffers["momentum_buffer"]?.count != s.count {
                throw RecurrentKitError("RMSprop with momentum needs momentum_buffer of \(s.count) values")
            }
        }
        squareAverage.restore(s)
        gradientAverage.restore(stateBuffers["grad_avg"] ?? [])
        momentumBuffer.restore(stateBuffers["momentum_buffer"] ?? [])
        self.stepCount = stepCount
    }
}

/// The learning-rate check of every optimizer's initializer and step.
private func checkLearningRate(_ learningRate: Double) throws {
    guard learningRate.isFinite, learningRate >= 0 else {
        throw RecurrentKitError.invalidArgument("learning rate", learningRate, "must be >= 0")
    }
}

/// The weight-decay check of every optimizer.
private func checkWeightDecay(_ weightDecay: Double) throws {
    guard weightDecay.isFinite, weightDecay >= 0 else {
        throw RecurrentKitError.invalidArgument("weight decay", weightDecay, "must be >= 0")
    }
}

/// The momentum check of SGD and RMSprop.
private func checkMomentum(_ momentum: Double) throws {
    guard momentum.isFinite, momentum >= 0, momentum < 1 else {
        throw RecurrentKitError.invalidArgument("momentum", momentum, "must be in [0, 1)")
    }
}

/// The checks every optimizer's `restore` makes: known buffer names, finite values, a non-negative step count.
private func checkOptimizerState(_ buffers: [String: [Double]], names: Set<String>, stepCount: Int) throws {
    guard stepCount >= 0 else {
        throw RecurrentKitError.invalidArgument("optimizer step count", stepCount, "must be >= 0")
    }
    for (name, values) in buffers {
        guard names.contains(name) else { throw RecurrentKitError("unknown optimizer state buffer '\(name)'") }
        guard values.allSatisfy(\.isFinite) else {
            throw RecurrentKitError("optimizer state buffer '\(name)' holds a non-finite value")
        }
    }
}

/// One optimizer state buffer (a momentum, a moment) in the parameters' precision: `count` values of the store's
/// scalar type in a 64-byte aligned block, created on the first step. Restored values (Double, from a checkpoint) are
/// converted on the first step that knows the type; Float values round-trip through Double exactly, so saving and
/// restoring never changes a bit.
final class StateBuffer {
    private let name: String
    private var storage: UnsafeMutableRawPointer? = nil
    private var storedType: Any.Type? = nil
    private(set) var count = 0
    private var restored: [Double]? = nil

    init(name: String) { self.name = name }
    deinit { if let storage { freeAligned(storage.assumingMemoryBound(to: UInt8.self)) } }

    /// True before the first step and without restored values.
    var isEmpty: Bool { storage == nil && (restored?.isEmpty ?? true) }

    /// The values as `S`, `count` of them: zeros on the first step, restored values converted, or the existing block.
    /// - Throws: when the buffer holds another number of values, or none after `steps` > 0 (it belongs to another model).
    func values<S: RecurrentScalar>(
        _ type: S.Type, count n: Int, afterSteps steps: Int
    ) throws -> UnsafeMutablePointer<S> {
        if let storage, storedType == S.self, count == n { return storage.assumingMemoryBound(to: S.self) }
        let source: [Double]
        if let restored, !restored.isEmpty {
            source = restored
        } else if storage != nil {
            source = doubles
        } else {
            source = []
        }
        guard source.isEmpty ? steps == 0 : source.count == n else {
            throw RecurrentKitError(
                "\(name) state holds \(source.count) values after \(steps) steps, but the parameters have \(n); it was "
                    + "restored from or used with another model"
            )
        }
        if let storage { freeAligned(storage.assumingMemoryBound(to: UInt8.self)) }
        let typed = allocateAligned(S.self, count: max(n, 1))
        for i in 0..<source.count { typed[i] = S(source[i]) }
        storage = UnsafeMutableRawPointer(typed)
        storedType = S.self
        count = n
        restored = nil
        return typed
    }

    /// The values as Double (for checkpoints).
    var doubles: [Double] {
        if let restored { return restored }
        guard let storage else { return [] }
        if storedType == Float.self {
            return (0..<count).map { Double(storage.assumingMemoryBound(to: Float.self)[$0]) }
        }
        return Array(UnsafeBufferPointer(start: storage.assumingMemoryBound(to: Double.self), count: count))
    }

    /// Replaces the values with `values` (converted on the next step); empty clears the buffer.
    func restore(_ values: [Double]) {
        if let storage { freeAligned(storage.assumingMemoryBound(to: UInt8.self)) }
        storage = nil
        storedType = nil
        count = 0
        restored = values
    }
}
