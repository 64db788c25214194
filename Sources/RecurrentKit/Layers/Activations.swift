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

    private let buffers = LayerBuffers<Scalar>()

    /// A tanh layer.
    public init() {}

    /// tanh(x), in the layer's storage.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        elementwise(input, into: &buffers.output) { Scalar(Double.tanh(Double($0))) }
        return (buffers.output, buffers.output)
    }

    /// dy (1 - y^2), in the layer's storage.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.requireShape(record.shape, name: "Tanh outputGradient")
        elementwise(outputGradient, record, into: &buffers.inputGradient) { dy, y in dy * (1 - y * y) }
        return buffers.inputGradient
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

    private let buffers = LayerBuffers<Scalar>()

    /// A ReLU layer.
    public init() {}

    /// max(x, 0), in the layer's storage.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        elementwise(input, into: &buffers.output) { $0 > 0 ? $0 : 0 }
        return (buffers.output, buffers.output)
    }

    /// dy where x > 0, else 0, in the layer's storage.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.requireShape(record.shape, name: "ReLU outputGradient")
        elementwise(outputGradient, record, into: &buffers.inputGradient) { dy, y in y > 0 ? dy : 0 }
        return buffers.inputGradient
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

    private let buffers = LayerBuffers<Scalar>()

    /// A sigmoid layer.
    public init() {}

    /// sigmoid(x), in the layer's storage.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        elementwise(input, into: &buffers.output) { Scalar(1 / (1 + Double.exp(-Double($0)))) }
        return (buffers.output, buffers.output)
    }

    /// dy y (1 - y), in the layer's storage.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        try outputGradient.requireShape(record.shape, name: "Sigmoid outputGradient")
        elementwise(outputGradient, record, into: &buffers.inputGradient) { dy, y in dy * (y * (1 - y)) }
        return buffers.inputGradient
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
        guard probability >= 0 && probability <= 1 else {
            throw RecurrentKitError.invalidArgument("dropout probability", probability, "must be in [0, 1]")
        }
        self.probability = probability
    }

    private let buffers = LayerBuffers<Scalar>()

    /// x m / (1 - p) in training mode (all zeros when p = 1), x otherwise; in the layer's storage.
    public func forward(_ input: Input, generator: inout SeededGenerator) throws -> (output: Output, record: Record) {
        guard isTraining, probability > 0 else { return (input, nil) }
        let scale = probability < 1 ? Scalar(1 / (1 - probability)) : 0
        buffers.mask.prepare(like: input.shape)
        buffers.mask.scalars.withUnsafeMutableBufferPointer { m in
            for i in m.indices { m[i] = generator.nextUnit() < probability ? 0 : scale }
        }
        elementwise(input, buffers.mask, into: &buffers.output) { x, m in x * m }
        return (buffers.output, buffers.mask)
    }

    /// dy m / (1 - p), or dy for an identity forward.
    public func backward(_ record: Record, outputGradient: Tensor<Scalar>) throws -> Tensor<Scalar> {
        guard let mask = record else { return outputGradient }
        try outputGradient.requireShape(mask.shape, name: "Dropout outputGradient")
        elementwise(outputGradient, mask, into: &buffers.inputGradient) { dy, m in dy * m }
        return buffers.inputGradient
    }

    /// Training mode switches dropout on.
    public func setTraining(_ training: Bool) { isTraining = training }
}

/// out[i] = f(x[i]), out taking x's shape (its storage reused when the shape matches).
func elementwise<Scalar>(_ x: Tensor<Scalar>, into out: inout Tensor<Scalar>, _ f: (Scalar) -> Scalar) {
    out.prepare(like: x.shape)
    x.scalars.withUnsafeBufferPointer { xs in
        out.scalars.withUnsafeMutableBufferPointer { o in for i in o.indices { o[i] = f(xs[i]) } }
    }
}

/// out[i] = f(a[i], b[i]) for tensors of one shape, out taking that shape.
func elementwise<Scalar>(
    _ a: Tensor<Scalar>, _ b: Tensor<Scalar>, into out: inout Tensor<Scalar>, _ f: (Scalar, Scalar) -> Scalar
) {
    out.prepare(like: a.shape)
    a.scalars.withUnsafeBufferPointer { xs in
        b.scalars.withUnsafeBufferPointer { ys in
            out.scalars.withUnsafeMutableBufferPointer { o in for i in o.indices { o[i] = f(xs[i], ys[i]) } }
        }
    }
}
