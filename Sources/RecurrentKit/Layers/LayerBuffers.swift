// Storage a layer reuses for the values it returns, so that a warm training loop through a container allocates
// nothing: each forward writes its output into the same tensor, each backward its input gradient. A returned value
// shares that storage; when the caller still holds it at the next call, copy-on-write gives the caller's copy its own
// storage (one allocation), so values never change behind anyone's back.

/// The tensors a layer reuses between calls.
final class LayerBuffers<Scalar: RecurrentScalar> {
    /// The forward's output.
    var output = Tensor<Scalar>(zeros: [0])
    /// The backward's input gradient.
    var inputGradient = Tensor<Scalar>(zeros: [0])
    /// A gradient the layer builds for an inner backward (e.g. zeros with one step set).
    var innerGradient = Tensor<Scalar>(zeros: [0])
    /// A dropout mask.
    var mask = Tensor<Scalar>(zeros: [0])
    /// A final state (recurrent layers).
    var state: RecurrentState<Scalar>? = nil
    /// The initial-state gradient (recurrent layers).
    var stateGradient: RecurrentState<Scalar>? = nil
}

extension Tensor {
    /// Gives this tensor the shape (d0, d1), keeping its storage when it has that shape already (contents are then
    /// left as they are) and allocating zeros otherwise.
    mutating func prepare(_ d0: Int, _ d1: Int) {
        if !(shape.count == 2 && shape[0] == d0 && shape[1] == d1) { self = Tensor(zeros: [d0, d1]) }
    }

    /// Gives this tensor the shape (d0, d1, d2) (see ``prepare(_:_:)``).
    mutating func prepare(_ d0: Int, _ d1: Int, _ d2: Int) {
        if !hasShape(d0, d1, d2) { self = Tensor(zeros: [d0, d1, d2]) }
    }

    /// Gives this tensor `other`'s shape (see ``prepare(_:_:)``).
    mutating func prepare(like other: [Int]) {
        if shape != other { self = Tensor(zeros: other) }
    }

    /// Gives this tensor `leading`'s shape with the last dimension replaced by `last` (see ``prepare(_:_:)``).
    mutating func prepare(like leading: [Int], last: Int) {
        if !Tensor.sameLeading(shape, leading) || shape.last != last {
            self = Tensor(zeros: Array(leading.dropLast()) + [last])
        }
    }

    /// Whether `a` and `b` have the same rank and agree on every dimension but the last (allocates nothing).
    static func sameLeading(_ a: [Int], _ b: [Int]) -> Bool {
        guard a.count == b.count, !a.isEmpty else { return false }
        for i in 0..<(a.count - 1) where a[i] != b[i] { return false }
        return true
    }

    /// Sets every element to zero in place.
    mutating func zeroAll() {
        scalars.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }
}
