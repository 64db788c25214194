// Element-wise layers: tanh, ReLU, sigmoid and dropout, each forward beside its backward.
//     tanh:    y = tanh(x),            dx = dy (1 - y^2)
//     ReLU:    y = max(x, 0),          dx = dy [x > 0]
//     sigmoid: y = 1 / (1 + e^-x),     dx = dy y (1 - y)
//     dropout: y = x m / (1 - p),      dx = dy m / (1 - p),  m ~ Bernoulli(1 - p) per element (training mode only)

import RealModule

/// y = tanh(x) element-wise (PyTorch `nn.Tanh`).
public final class Tanh<Scalar: RecurrentScalar>: Layer {
    /// Any shape.
    public typealias Input = Tensor<Scalar>
    /// The input's shape.
    public typealias Output = Tensor<Scalar>
    /// The output y, which the derivative 1 - y^2 needs.
    public typealias Record = Tensor<Scalar>

    /// A tanh layer.
    public init() {}

    /// tanh(x).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        var y = input
        for i in y.scalars.indices { y.scalars[i] = Scalar(Double.tanh(Double(input.scalars[i]))) }
        return (y, y)
    }

    /// dy (1 - y^2).
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.requireShape(record.shape, name: "Tanh outputGradient")
        var dx = outputGradient
        for i in dx.scalars.indices { dx.scalars[i] *= 1 - record.scalars[i] * record.scalars[i] }
        return dx
    }
}

/// y = max(x, 0) element-wise (PyTorch `nn.ReLU`; the derivative at 0 is 0, as PyTorch's).
public final class ReLU<Scalar: RecurrentScalar>: Layer {
    /// Any shape.
    public typealias Input = Tensor<Scalar>
    /// The input's shape.
    public typealias Output = Tensor<Scalar>
    /// The output, positive exactly where the input was.
    public typealias Record = Tensor<Scalar>

    /// A ReLU layer.
    public init() {}

    /// max(x, 0).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        var y = input
        for i in y.scalars.indices where !(y.scalars[i] > 0) { y.scalars[i] = 0 }
        return (y, y)
    }

    /// dy where x > 0, else 0.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.requireShape(record.shape, name: "ReLU outputGradient")
        var dx = outputGradient
        for i in dx.scalars.indices where !(record.scalars[i] > 0) { dx.scalars[i] = 0 }
        return dx
    }
}

/// y = 1 / (1 + e^-x) element-wise (PyTorch `nn.Sigmoid`).
public final class Sigmoid<Scalar: RecurrentScalar>: Layer {
    /// Any shape.
    public typealias Input = Tensor<Scalar>
    /// The input's shape.
    public typealias Output = Tensor<Scalar>
    /// The output y, which the derivative y (1 - y) needs.
    public typealias Record = Tensor<Scalar>

    /// A sigmoid layer.
    public init() {}

    /// sigmoid(x).
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        var y = input
        for i in y.scalars.indices { y.scalars[i] = Scalar(1 / (1 + Double.exp(-Double(input.scalars[i])))) }
        return (y, y)
    }

    /// dy y (1 - y).
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.requireShape(record.shape, name: "Sigmoid outputGradient")
        var dx = outputGradient
        for i in dx.scalars.indices { dx.scalars[i] *= record.scalars[i] * (1 - record.scalars[i]) }
        return dx
    }
}

/// Zeroes each element with probability p in training mode and scales the rest by 1 / (1 - p) (PyTorch
/// `nn.Dropout`, inverted dropout); the identity in evaluation mode. Masks come from the generator the forward is
/// given (a ``Sequential`` model's own).
public final class Dropout<Scalar: RecurrentScalar>: Layer {
    /// Any shape.
    public typealias Input = Tensor<Scalar>
    /// The input's shape.
    public typealias Output = Tensor<Scalar>
    /// The scaled mask (0 or 1 / (1 - p) per element), or nil when the forward was the identity.
    public typealias Record = Tensor<Scalar>?
    /// The probability p of zeroing an element, in [0, 1].
    public let probability: Double
    /// Training mode (dropout acts); true until ``setTraining(_:)`` turns it off.
    public private(set) var isTraining = true

    /// A dropout layer.
    /// - Throws: when `probability` is outside [0, 1].
    public init(probability: Double) throws {
        guard probability >= 0 && probability <= 1 else { throw RecurrentKitError.invalidArgument("dropout probability", probability, "must be in [0, 1]") }
        self.probability = probability
    }

    /// x m / (1 - p) in training mode (all zeros when p = 1), x otherwise.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        guard isTraining, probability > 0 else { return (input, nil) }
        let scale = probability < 1 ? Scalar(1 / (1 - probability)) : 0
        var mask = input
        for i in mask.scalars.indices { mask.scalars[i] = generator.nextUnit() < probability ? 0 : scale }
        var y = input
        for i in y.scalars.indices { y.scalars[i] *= mask.scalars[i] }
        return (y, mask)
    }

    /// dy m / (1 - p), or dy for an identity forward.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        guard let mask = record else { return outputGradient }
        try outputGradient.requireShape(mask.shape, name: "Dropout outputGradient")
        var dx = outputGradient
        for i in dx.scalars.indices { dx.scalars[i] *= mask.scalars[i] }
        return dx
    }

    /// Training mode switches dropout on.
    public func setTraining(_ training: Bool) { isTraining = training }
}
