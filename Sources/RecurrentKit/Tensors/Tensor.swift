/// A dense row-major array with a shape: the value type the public API takes and returns.
///
/// Hot loops never go through `Tensor`; they work on flat buffers. `Tensor` is for inputs,
/// outputs, fixtures and checkpoints, where clarity matters more than a copy.
public struct Tensor<Scalar: RecurrentScalar>: Equatable, Sendable {
    /// Dimensions, outermost first, e.g. (T, B, H) for a sequence of hidden states.
    public internal(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.product`.
    public var scalars: [Scalar]

    /// Creates a tensor; throws if `scalars.count` is not the product of `shape` or a dimension is negative.
    public init(shape: [Int], scalars: [Scalar]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw RecurrentKitError("tensor shape \(shape) has a negative dimension")
        }
        let count = shape.reduce(1, *)
        guard count == scalars.count else {
            throw RecurrentKitError("tensor of shape \(shape) needs \(count) values, got \(scalars.count)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of zeros with the given shape (negative dimensions are treated as 0).
    public init(zeros shape: [Int]) {
        self.shape = shape.map { max(0, $0) }
        self.scalars = Array(repeating: 0, count: self.shape.reduce(1, *))
    }

    /// A tensor filled from a closure called once per element in row-major order.
    public init(shape: [Int], generating element: () -> Scalar) {
        self.shape = shape.map { max(0, $0) }
        self.scalars = (0..<self.shape.reduce(1, *)).map { _ in element() }
    }

    /// Number of elements.
    public var count: Int { scalars.count }

    /// The same values in another precision.
    public func converted<Other: RecurrentScalar>(to: Other.Type = Other.self) -> Tensor<Other> {
        // Shapes are already valid, so this cannot fail.
        try! Tensor<Other>(shape: shape, scalars: scalars.map { Other($0) })
    }

    /// Throws a shape-mismatch error naming `name` unless the shape is `expected`.
    public func requireShape(_ expected: [Int], name: String) throws {
        guard shape == expected else { throw RecurrentKitError.shapeMismatch(name, expected: expected, got: shape) }
    }

    /// Whether the shape is (d0, d1, d2); allocates nothing (an array literal would, on every call).
    public func hasShape(_ d0: Int, _ d1: Int, _ d2: Int) -> Bool {
        shape.count == 3 && shape[0] == d0 && shape[1] == d1 && shape[2] == d2
    }

    /// Throws a shape mismatch naming `name` unless the shape is (d0, d1, d2); allocates nothing when it is.
    public func requireShape(_ d0: Int, _ d1: Int, _ d2: Int, name: String) throws {
        guard hasShape(d0, d1, d2) else {
            throw RecurrentKitError.shapeMismatch(name, expected: [d0, d1, d2], got: shape)
        }
    }

    /// Largest absolute element difference and its flat index; throws if shapes differ.
    public func maxAbsDifference(_ other: Tensor) throws -> (value: Double, index: Int) {
        try other.requireShape(shape, name: "compared tensor")
        var worst = (value: 0.0, index: 0)
        for i in scalars.indices {
            let d = abs(Double(scalars[i]) - Double(other.scalars[i]))
            if d > worst.value || d.isNaN { worst = (d, i) }
        }
        return worst
    }

    /// Multi-index (one per dimension) of a flat row-major index, for error messages.
    public func multiIndex(ofFlat index: Int) -> [Int] { Tensor.multiIndex(ofFlat: index, shape: shape) }

    /// Multi-index of a flat row-major index in `shape` (any element type's tensors use it for their messages).
    static func multiIndex(ofFlat index: Int, shape: [Int]) -> [Int] {
        var rest = index
        var result = Array(repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
            result[d] = rest % shape[d]
            rest /= shape[d]
        }
        return result
    }
}
