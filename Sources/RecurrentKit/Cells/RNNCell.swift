// The Elman RNN cell (PyTorch `nn.RNN`, `nonlinearity` tanh or relu; `rnn_linear` has no activation), the only place
// its equations are written. Forward, per step t and layer input x_t:
//     h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
// Backward, with dh the gradient arriving at h_t (from the output and from step t+1):
//     dPre_t = dh * act'(h_t)        (tanh: 1 - h_t^2; ReLU: 1 where h_t > 0, PyTorch's 0 at the kink)
//     dW_ih += dPre_t^T x_t, dW_hh += dPre_t^T h_{t-1}, db_ih = db_hh += sum dPre_t   (products over time, in the stack)
//     dh_{t-1} = dPre_t W_hh,  dx_t = dPre_t W_ih

// MARK: - Sequence loops over one layer (called by the stack for each layer and time block)

extension OneDirectionStack {
    /// h_t = act(P_t + b_hh + h_{t-1} W_hh^T), P_t = W_ih x_t + b_ih already in `gates`.
    func rnnForward(layer k: Int, _ steps: StepRows) {
        let H = configuration.hiddenSize
        let cache = layers[k]
        let activation = RNNActivation(configuration.cell)
        for t in 0..<steps.count {
            let B = steps.rows(t)
            let hPrev = cache.hidden.pointer + steps.previous(t) * H
            let h = cache.hidden.pointer + steps.output(t) * H
            let p = cache.gates.pointer + steps.offset(t) * H
            for b in 0..<B {
                let row = h + b * H, pRow = p + b * H
                for j in 0..<H { row[j] = pRow[j] + biasHH[k][j] }
            }
            if !startsFromZeroState(steps, t) {
                recurrentProduct(layer: k, hPrev, batch: B, beta: 1, into: h)
            }
            guard activation != .identity else { continue }
            let task = rowTasks.rnnForward
            task.h = h; task.width = H; task.activation = activation
            forEachRowChunk(task, batch: B, width: H)
        }
    }

    /// dPre_t = (dOut_t + dh_next) * act'(h_t); dh_next = dPre_t W_hh. Starts from `gradHidden` (dL/dh_T).
    func rnnBackward(
        layer k: Int, _ steps: StepRows, dOutput: UnsafeMutablePointer<Scalar>, dPre: UnsafeMutablePointer<Scalar>
    ) {
        let H = configuration.hiddenSize
        let cache = layers[k]
        let task = rowTasks.rnnBackward
        task.width = H
        task.activation = RNNActivation(configuration.cell)
        for t in stride(from: steps.count - 1, through: 0, by: -1) {
            let B = steps.rows(t)
            let h = cache.hidden.pointer + steps.output(t) * H
            let dh = gradHidden.pointer, dOut = dOutput + steps.offset(t) * H, d = dPre + steps.offset(t) * H
            recordHiddenGradient(layer: k, step: steps.first + t, rows: B, dh, dOut)
            task.h = h; task.dh = dh; task.dOut = dOut; task.d = d
            forEachRowChunk(task, batch: B, width: H)
            if !feedsUnwantedInitialGradient(steps, t) {
                recurrentGradientProduct(layer: k, d, batch: B, beta: 0, into: dh)
            }
            truncateRecurrentGradient(layer: k, step: steps.first + t, rows: B, dh, nil)
        }
    }
}

// MARK: - Element-wise step work over batch rows (split over the kernel pool by forEachRowChunk)

/// The vanilla cell's activation, one value for the forward and the backward step.
enum RNNActivation {
    case tanh, relu, identity

    init(_ cell: CellKind) {
        switch cell {
        case .rnnReLU: self = .relu
        case .rnnLinear: self = .identity
        default: self = .tanh
        }
    }
}

/// h = act(h) in place, rows of width H (identity: nothing to do, never scheduled).
final class RNNForwardRows<Scalar: RecurrentScalar>: RowTask {
    var h: UnsafeMutablePointer<Scalar>!
    var width = 0
    var activation = RNNActivation.tanh
    override func run(_ rows: Range<Int>) { rnnForwardRows(self, rows) }
}

/// The body of `RNNForwardRows.run`, specialized for Float and Double: a method of a generic class called through its
/// base class runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x
/// slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func rnnForwardRows<Scalar: RecurrentScalar>(_ t: RNNForwardRows<Scalar>, _ rows: Range<Int>) {
    let h = t.h!, width = t.width
    let start = h + rows.lowerBound * width, count = rows.count * width
    switch t.activation {
    case .relu: for i in 0..<count where !(start[i] > 0) { start[i] = 0 }
    case .tanh: Scalar.tanh(start, count: count)
    case .identity: break
    }
}

/// d = (dh + dOut) * act'(h).
final class RNNBackwardRows<Scalar: RecurrentScalar>: RowTask {
    var h: UnsafeMutablePointer<Scalar>!, dh: UnsafeMutablePointer<Scalar>!, dOut: UnsafeMutablePointer<Scalar>!
    var d: UnsafeMutablePointer<Scalar>!
    var width = 0
    var activation = RNNActivation.tanh
    override func run(_ rows: Range<Int>) { rnnBackwardRows(self, rows) }
}

/// The body of `RNNBackwardRows.run`, specialized for Float and Double: a method of a generic class called through its
/// base class runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x
/// slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func rnnBackwardRows<Scalar: RecurrentScalar>(_ t: RNNBackwardRows<Scalar>, _ rows: Range<Int>) {
    let h = t.h!, dh = t.dh!, dOut = t.dOut!, d = t.d!, width = t.width
    let elements = (rows.lowerBound * width)..<(rows.upperBound * width)
    switch t.activation {
    case .identity: for i in elements { d[i] = dh[i] + dOut[i] }
    case .relu: for i in elements { d[i] = h[i] > 0 ? dh[i] + dOut[i] : 0 }
    case .tanh: for i in elements { d[i] = (dh[i] + dOut[i]) * (1 - h[i] * h[i]) }
    }
}

// MARK: - Public single-step cell

/// PyTorch `nn.RNNCell`: `h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)`, act tanh or ReLU; parameters `weight_ih`
/// (H, I), `weight_hh` (H, H), `bias_ih` (H), `bias_hh` (H). See ``RecurrentCell`` for the step and its backward.
public final class RNNCell<Scalar: RecurrentScalar>: RecurrentCell<Scalar> {
    /// A cell with fresh parameters (PyTorch's U(±1/√H) by default).
    /// - Throws: when a size is below 1.
    public init(
        inputSize: Int, hiddenSize: Int, nonlinearity: RNNNonlinearity = .tanh, bias: Bool = true,
        initialization: Initialization = .pytorch, generator: inout SeededGenerator
    ) throws {
        try super.init(
            cell: nonlinearity.cell, inputSize: inputSize, hiddenSize: hiddenSize, bias: bias,
            initialization: initialization,
            generator: &generator)
    }
}

/// PyTorch `nn.RNN` (tanh or ReLU, stacked layers, dropout between them, optionally both directions): a
/// ``RecurrentNetwork`` made from PyTorch's arguments, with its own parameters (gather it into a model with
/// ``ParameterStore/init(gathering:)``).
public final class RNN<Scalar: RecurrentScalar>: RecurrentNetwork<Scalar> {
    /// A stack with fresh parameters (PyTorch's U(±1/√H) by default).
    /// - Throws: on invalid sizes or dropout.
    public init(
        inputSize: Int, hiddenSize: Int, numLayers: Int = 1, nonlinearity: RNNNonlinearity = .tanh, dropout: Double = 0,
        bias: Bool = true, bidirectional: Bool = false, initialization: Initialization = .pytorch,
        generator: inout SeededGenerator
    ) throws {
        let configuration = RecurrentConfiguration(
            cell: nonlinearity.cell, inputSize: inputSize, hiddenSize: hiddenSize,
            numLayers: numLayers, dropout: dropout, bias: bias,
            bidirectional: bidirectional)
        try super.init(configuration, parameters: try ownParameters(configuration), prefix: "", naming: .layers)
        initialize(initialization, generator: &generator)
    }
}
