// The single-step cells (RNNCell, GRUCell, LSTMCell) as ``Layer``s, for step-by-step decoders: the input is x and the
// optional state (PyTorch `cell(x, (h, c))`), the output the next state. The record is the step's input itself and the
// backward recomputes the step from it (RecurrentCell.backward(input:state:outputGradient:)), so the same cell can be
// applied several times in one pass and each record backpropagated on its own, in any order.

/// What a single-step cell reads: x (B, I) and the state it starts from (PyTorch `nn.LSTMCell(x, (h, c))`,
/// `nn.GRUCell(x, h)`, `nn.RNNCell(x, h)`).
public struct CellInput<Scalar: RecurrentScalar>: LayerValue, Equatable, Sendable {
    /// x, (B, I).
    public var x: Tensor<Scalar>
    /// h (B, H) and, for the LSTM, c (B, H); nil (or a nil `c`) for zeros, as PyTorch's omitted state.
    public var state: RecurrentState<Scalar>?

    /// dL/dx and dL/dstate.
    public typealias Gradient = CellInputGradient<Scalar>

    /// dL/dx and the state gradients added.
    public static func accumulate(_ a: Gradient, _ b: Gradient) throws -> Gradient {
        Gradient(x: try Tensor.accumulate(a.x, b.x), state: try RecurrentState.accumulate(a.state, b.state))
    }

    /// A step's input: x (B, I) and the state, h (B, H) and for the LSTM c (B, H); zeros when nil.
    public init(_ x: Tensor<Scalar>, state: RecurrentState<Scalar>? = nil) {
        (self.x, self.state) = (x, state)
    }
}

/// The gradient of a ``CellInput``.
public struct CellInputGradient<Scalar: RecurrentScalar>: Equatable, Sendable {
    /// dL/dx, (B, I).
    public var x: Tensor<Scalar>
    /// dL/dh (B, H) and, for the LSTM, dL/dc (B, H) (`c` nil for RNN and GRU cells). Present also when the input's
    /// state was nil: it is then the gradient at the zero state.
    public var state: RecurrentState<Scalar>

    /// A gradient from its parts: dL/dx (B, I) and dL/dstate (each (B, H)).
    public init(x: Tensor<Scalar>, state: RecurrentState<Scalar>) {
        (self.x, self.state) = (x, state)
    }
}

extension RecurrentState: LayerValue {
    /// dL/dh' (B, H) and, for the LSTM, dL/dc' (B, H); a nil `c` is zero (a loss that reads only h'). RNN and GRU
    /// cells ignore `c`.
    public typealias Gradient = RecurrentState<Scalar>

    /// h and c added element-wise, a missing c counting as zeros.
    public static func accumulate(
        _ a: RecurrentState<Scalar>, _ b: RecurrentState<Scalar>
    ) throws -> RecurrentState<Scalar> {
        RecurrentState(h: try Tensor.accumulate(a.h, b.h), c: try Tensor.accumulate(a.c, b.c))
    }
}

extension RecurrentCell: Layer {
    /// x (B, I) and the state (h (B, H), c (B, H) for the LSTM), or nil for zeros.
    public typealias Input = CellInput<Scalar>
    /// h' (B, H) and, for the LSTM, c' (B, H).
    public typealias Output = RecurrentState<Scalar>
    /// The step's input and state: the backward recomputes the step from them, so each record stays valid after
    /// later forwards of the same cell (a decoder loop keeps one per step).
    public typealias Record = CellInput<Scalar>

    /// One step, `h' = cell(x, h)` (and `c'` for the LSTM) as ``callAsFunction(_:state:)``; the record is the input.
    /// - Throws: when x is not (B, I) or a state tensor is not (B, H).
    public func forward(
        _ input: CellInput<Scalar>, generator: inout SeededGenerator
    ) throws -> (output: RecurrentState<Scalar>, record: CellInput<Scalar>) {
        (try self(input.x, state: input.state), input)
    }

    /// Recomputes the step of `record` and backpropagates through it (``backward(input:state:outputGradient:)``):
    /// adds dL/dparameters into the store's gradients (zero them first) and returns dL/dx (B, I) and dL/dstate
    /// (B, H each).
    /// - Throws: when a gradient is not (B, H).
    public func backward(
        _ record: CellInput<Scalar>, outputGradient: RecurrentState<Scalar>
    ) throws -> CellInputGradient<Scalar> {
        let (dx, dState) = try backward(input: record.x, state: record.state, outputGradient: outputGradient)
        return CellInputGradient(x: dx, state: dState)
    }
}
