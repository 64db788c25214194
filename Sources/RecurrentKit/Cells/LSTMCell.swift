// The LSTM cell (PyTorch `nn.LSTM`, gate order i|f|g|o), the only place its equations are written (cell_rows.c
// runs the Float element-wise loops below with the same operations). Forward:
//     [i, f, g, o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
//     i, f, o = sigmoid(.), g = tanh(.)
//     c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
// Backward, with dh = dOut_t + dh_next and dc_next arriving from step t+1:
//     dc = dc_next + dh o (1 - tanh^2 c_t)
//     di = dc g i (1 - i),  df = dc c_{t-1} f (1 - f),  dg = dc i (1 - g^2),  do = dh tanh(c_t) o (1 - o)
//     dc_{t-1} = dc f,  dh_{t-1} = [di, df, dg, do] W_hh,  dx_t = [di, df, dg, do] W_ih
// With a projection (PyTorch `proj_size` P): m_t = o tanh(c_t) and h_t = W_hr m_t (width P); backward
//     dW_hr += dh^T m_t,  dm = dh W_hr, and dm takes the place of dh above.

import _RecurrentKitKernels

// MARK: - Sequence loops over one layer (called by the stack for each layer and time block)

extension OneDirectionStack {
    /// gates = P_t + b_hh + h_{t-1} W_hh^T (P_t + b_ih + b_hh from `layerForward`); i, f, o = sigmoid, g = tanh;
    /// c_t = f c_{t-1} + i g; h_t = o tanh(c_t).
    func lstmForward(layer k: Int, _ steps: StepRows) {
        let H = configuration.hiddenSize, GH = 4 * H, R = configuration.stateSize
        let cache = layers[k]
        for t in 0..<steps.count {
            let B = steps.rows(t)
            let hPrev = cache.hidden.pointer + steps.previous(t) * R, h = cache.hidden.pointer + steps.output(t) * R
            let cPrev = cache.cell.pointer + steps.previous(t) * H, c = cache.cell.pointer + steps.output(t) * H
            let tc = cache.tanhCell.pointer + steps.offset(t) * H
            let gates = cache.gates.pointer + steps.offset(t) * GH
            if !startsFromZeroState(steps, t) {
                recurrentProduct(layer: k, hPrev, batch: B, beta: 1, into: gates)
            }
            let m = R == H ? h : cache.unprojected.pointer + steps.offset(t) * H
            let task = rowTasks.lstmForward
            task.width = H; task.gates = gates; task.c = c; task.cPrev = cPrev; task.tanhCell = tc; task.output = m
            forEachRowChunk(task, batch: B, width: GH)
            guard R != H else { continue }
            Scalar.gemm(
                transA: false, transB: true, m: B, n: R, k: H, alpha: 1, a: m, lda: H, b: weightHR[k], ldb: H, beta: 0,
                c: h, ldc: R)
        }
    }

    /// dh = dOut_t + dh_next; dc = dc_next + dh o (1 - tanh^2 c_t); di = dc g; df = dc c_{t-1}; dg = dc i; do = dh tanh
    /// c_t; pre-activation gradients through sigmoid/tanh; dc_next = dc f; dh_next = dGates W_hh (the hidden slice of
    /// dX).
    func lstmBackward(
        layer k: Int, _ steps: StepRows, dOutput: UnsafeMutablePointer<Scalar>, dPre: UnsafeMutablePointer<Scalar>
    ) {
        let H = configuration.hiddenSize, GH = 4 * H, R = configuration.stateSize
        let cache = layers[k]
        let dh = gradHidden.pointer, dc = gradCell.pointer
        for t in stride(from: steps.count - 1, through: 0, by: -1) {
            let B = steps.rows(t)
            let cPrev = cache.cell.pointer + steps.previous(t) * H
            let tc = cache.tanhCell.pointer + steps.offset(t) * H
            let gates = cache.gates.pointer + steps.offset(t) * GH
            let dOut = dOutput + steps.offset(t) * R
            let dGates = dPre + steps.offset(t) * GH
            recordHiddenGradient(layer: k, step: steps.first + t, rows: B, dh, dOut)
            let task = rowTasks.lstmBackward
            task.width = H; task.gates = gates; task.dGates = dGates; task.cPrev = cPrev; task.tanhCell = tc
            task.dh = dh; task.dc = dc; task.dOut = dOut
            if R != H {
                // Through the projection: dh_total = dh + dOut (B, R); dW_hr += dh_total^T m_t; dm = dh_total W_hr (B,
                // H).
                let total = projectionScratch.pointer, dm = total + B * H,
                    m = cache.unprojected.pointer + steps.offset(t) * H
                for i in 0..<(B * R) { total[i] = dh[i] + dOut[i] }
                Scalar.gemm(
                    transA: true, transB: false, m: R, n: H, k: B, alpha: 1, a: total, lda: R, b: m, ldb: H,
                    beta: 1, c: gradWeightHR[k], ldc: H)
                Scalar.gemm(
                    transA: false, transB: false, m: B, n: H, k: R, alpha: 1, a: total, lda: R, b: weightHR[k], ldb: H,
                    beta: 0, c: dm, ldc: H)
                task.dh = dm; task.dOut = zeroRows.pointer
            }
            forEachRowChunk(task, batch: B, width: GH)
            if !feedsUnwantedInitialGradient(steps, t) {
                recurrentGradientProduct(layer: k, dGates, batch: B, beta: 0, into: dh)
            }
            truncateRecurrentGradient(layer: k, step: steps.first + t, rows: B, dh, dc)
        }
    }
}

// MARK: - Element-wise step work over batch rows (split over the kernel pool by forEachRowChunk)
//
// Float runs these loops in the C kernels (`rk_lstm_forward_rows_f32` and `rk_lstm_backward_rows_f32` in
// cell_rows.c): the same operations in the same order, 16 or 8 lanes at a time, where
// the Swift compiler leaves them scalar; Double (the proofs) runs the Swift loops below.

/// i, f, o = sigmoid, g = tanh of the gate pre-activations (in place); c = f c_{t-1} + i g; tanhCell = tanh(c), kept
/// for the backward; output = o tanh(c) (h_t, or m_t before an LSTM projection). `cPrev` may be `c` (one step in place).
final class LSTMForwardRows<Scalar: RecurrentScalar>: RowTask {
    var gates: UnsafeMutablePointer<Scalar>!, c: UnsafeMutablePointer<Scalar>!, cPrev: UnsafeMutablePointer<Scalar>!
    var tanhCell: UnsafeMutablePointer<Scalar>!, output: UnsafeMutablePointer<Scalar>!
    var width = 0
    override func run(_ rows: Range<Int>) { lstmForwardRows(self, rows) }
}

/// The body of `LSTMForwardRows.run`, specialized for Float and Double: a method of a generic class called through its
/// base class runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x
/// slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func lstmForwardRows<Scalar: RecurrentScalar>(_ t: LSTMForwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, c = t.c!, cPrev = t.cPrev!, tc = t.tanhCell!, out = t.output!, width = t.width
    let H = width, GH = 4 * H
    if Scalar.self == Float.self {
        rk_lstm_forward_rows_f32(
            floats(gates), floats(c), floats(cPrev), floats(tc), floats(out), rows.lowerBound, rows.upperBound, H)
        return
    }
    for b in rows {
        let gi = gates + b * GH, gg = gi + 2 * H, go = gg + H
        Scalar.sigmoid(gi, count: 2 * H)  // i and f are adjacent
        Scalar.tanh(gg, count: H)
        Scalar.sigmoid(go, count: H)
        let gf = gi + H, row = b * H
        for j in 0..<H { c[row + j] = gf[j] * cPrev[row + j] + gi[j] * gg[j] }
        (tc + row).update(from: c + row, count: H)
        Scalar.tanh(tc + row, count: H)
        for j in 0..<H { out[row + j] = go[j] * tc[row + j] }
    }
}

/// Gate pre-activation gradients from dh + dOut and dc; dc becomes dc_next = dc f.
final class LSTMBackwardRows<Scalar: RecurrentScalar>: RowTask {
    var gates: UnsafeMutablePointer<Scalar>!, dGates: UnsafeMutablePointer<Scalar>!
    var cPrev: UnsafeMutablePointer<Scalar>!, tanhCell: UnsafeMutablePointer<Scalar>!
    var dh: UnsafeMutablePointer<Scalar>!, dc: UnsafeMutablePointer<Scalar>!, dOut: UnsafeMutablePointer<Scalar>!
    var width = 0
    override func run(_ rows: Range<Int>) { lstmBackwardRows(self, rows) }
}

/// The body of `LSTMBackwardRows.run`, specialized for Float and Double: a method of a generic class called through its
/// base class runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x
/// slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func lstmBackwardRows<Scalar: RecurrentScalar>(_ t: LSTMBackwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, dGates = t.dGates!, cPrev = t.cPrev!, tanhCell = t.tanhCell!, dh = t.dh!, dc = t.dc!,
        dOut = t.dOut!, width = t.width
    let tc = tanhCell
    let H = width, GH = 4 * H
    if Scalar.self == Float.self {
        rk_lstm_backward_rows_f32(
            floats(gates), floats(dGates), floats(cPrev), floats(tc), floats(dh), floats(dc), floats(dOut),
            rows.lowerBound, rows.upperBound, H)
        return
    }
    for b in rows {
        let gi = gates + b * GH, gf = gi + H, gg = gf + H, go = gg + H
        let di = dGates + b * GH, df = di + H, dg = df + H, dO = dg + H
        let row = b * H
        for j in 0..<H {
            let i = gi[j], f = gf[j], g = gg[j], o = go[j], tanhC = tc[row + j]
            let dhTotal = dh[row + j] + dOut[row + j]
            let dcTotal = dc[row + j] + dhTotal * o * (1 - tanhC * tanhC)
            di[j] = dcTotal * g * i * (1 - i)
            df[j] = dcTotal * cPrev[row + j] * f * (1 - f)
            dg[j] = dcTotal * i * (1 - g * g)
            dO[j] = dhTotal * tanhC * o * (1 - o)
            dc[row + j] = dcTotal * f
        }
    }
}

// MARK: - Public single-step cell

/// PyTorch `nn.LSTMCell` (gates i|f|g|o): parameters `weight_ih` (4H, I), `weight_hh` (4H, H), `bias_ih` (4H),
/// `bias_hh` (4H); the state is h and c. See ``RecurrentCell`` for the step and its backward.
public final class LSTMCell<Scalar: RecurrentScalar>: RecurrentCell<Scalar> {
    /// A cell with fresh parameters (PyTorch's U(±1/√H) by default).
    /// - Throws: when a size is below 1.
    public init(
        inputSize: Int, hiddenSize: Int, bias: Bool = true, initialization: Initialization = .pytorch,
        generator: inout SeededGenerator
    ) throws {
        try super.init(
            cell: .lstm, inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, initialization: initialization,
            generator: &generator)
    }
}

/// PyTorch `nn.LSTM` (stacked layers, dropout between them, optionally both directions): a ``RecurrentNetwork`` made
/// from PyTorch's arguments, with its own parameters (gather it into a model with ``ParameterStore/init(gathering:)``).
public final class LSTM<Scalar: RecurrentScalar>: RecurrentNetwork<Scalar> {
    /// A stack with fresh parameters (PyTorch's U(±1/√H) by default).
    /// - Throws: on invalid sizes or dropout.
    /// `projectionSize` is PyTorch's `proj_size`: 0 (default) or P < H, the width of h (see
    /// ``RecurrentConfiguration/projectionSize``).
    public init(
        inputSize: Int, hiddenSize: Int, numLayers: Int = 1, dropout: Double = 0, bias: Bool = true,
        bidirectional: Bool = false, projectionSize: Int = 0, initialization: Initialization = .pytorch,
        generator: inout SeededGenerator
    ) throws {
        let configuration = RecurrentConfiguration(
            cell: .lstm, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, dropout: dropout,
            bias: bias,
            bidirectional: bidirectional, projectionSize: projectionSize)
        try super.init(configuration, parameters: try ownParameters(configuration), prefix: "", naming: .layers)
        initialize(initialization, generator: &generator)
    }
}
