/// Records dL/dh_t, the quantity d2l 8.7 eq. (8) recurses on, during a ``RecurrentNetwork`` backward: attach one to
/// ``RecurrentNetwork/hiddenGradientRecorder`` where an analysis asks for it (training never does), run the backward,
/// read ``gradients`` or ``norms``.
///
/// At each step t of layer k the backward's cell loop stores dL/dh_t = dOut_t + dh_recurrent (the output's gradient
/// plus the gradient that step t+1 sends back), before the step's own backward uses it. Not available for a
/// variable-length batch (the backward throws).
public final class HiddenGradientRecorder<Scalar: RecurrentScalar> {
    /// Per layer, dL/dh_t for every step of the last backward, (T, B, R) flattened (R = the state size).
    public private(set) var gradients: [[Scalar]] = []
    /// Batch rows B of the last backward.
    public private(set) var batch = 1
    /// Width R of a state row.
    public private(set) var stateSize = 1

    /// A recorder with nothing recorded.
    public init() {}

    /// [layer][t] = ||dL/dh_t|| over the batch (the Euclidean norm of its (B, R) rows), from ``gradients``.
    public var norms: [[Double]] {
        let rowBlock = batch * stateSize
        return gradients.map { g in
            stride(from: 0, to: g.count, by: rowBlock).map { start in
                (start..<(start + rowBlock)).reduce(0.0) { $0 + Double(g[$1]) * Double(g[$1]) }.squareRoot()
            }
        }
    }

    /// Starts a backward of `layers` layers over T steps of B rows of width R (zeros until recorded).
    func begin(layers: Int, steps T: Int, batch B: Int, stateSize R: Int) {
        (batch, stateSize) = (B, R)
        gradients = Array(repeating: Array(repeating: 0, count: T * B * R), count: layers)
    }

    /// Stores dL/dh_t = dh[i] + dOut[i] for the `rows` x R values of layer k at step t.
    @inline(__always)
    func record(layer k: Int, step t: Int, rows: Int, _ dh: UnsafePointer<Scalar>, _ dOut: UnsafePointer<Scalar>) {
        let count = rows * stateSize
        gradients[k].withUnsafeMutableBufferPointer { g in
            for i in 0..<count { g[t * count + i] = dh[i] + dOut[i] }
        }
    }
}
