// The GRU cell (PyTorch `nn.GRU`, gate order r|z|n, reset applied after the product), the only place its equations
// are written. Forward, with P = W_ih x_t + b_ih and R = W_hh h_{t-1} + b_hh:
//     r = sigmoid(P_r + R_r),  z = sigmoid(P_z + R_z),  n = tanh(P_n + r R_n)
//     h_t = (1 - z) n + z h_{t-1}
// Backward, with dh = dOut_t + dh_next:
//     dn_pre = dh (1 - z)(1 - n^2),  dz_pre = dh (h_{t-1} - n) z (1 - z),  dr_pre = dn_pre R_n r (1 - r)
//     dP = [dr_pre, dz_pre, dn_pre],  dR = [dr_pre, dz_pre, dn_pre r]
//     dh_{t-1} = dR W_hh + dh z,  dx_t = dP W_ih

import _RecurrentKitKernels

// MARK: - Sequence loops over one layer (called by the stack for each layer and time block)

extension OneDirectionStack {
    /// r, z = sigmoid(P + R), R = h_{t-1} W_hh^T + b_hh; n = tanh(P_n + r R_n); h_t = (1 - z) n + z h_{t-1}.
    func gruForward(layer k: Int, _ steps: StepRows) {
        let H = configuration.hiddenSize, GH = 3 * H
        let cache = layers[k]
        let recurrent = stepScratch.pointer
        let bhh = biasHH[k]
        for t in 0..<steps.count {
            let B = steps.rows(t)
            let hPrev = cache.hidden.pointer + steps.previous(t) * H, h = cache.hidden.pointer + steps.output(t) * H
            let gates = cache.gates.pointer + steps.offset(t) * GH
            let hn = cache.recurrentNew.pointer + steps.offset(t) * H
            fillRows(recurrent, rows: B, with: bhh, width: GH)
            if !startsFromZeroState(steps, t) {
                recurrentProduct(layer: k, hPrev, batch: B, beta: 1, into: recurrent)
            }
            let task = rowTasks.gruForward
            task.width = H; task.gates = gates; task.recurrent = recurrent; task.recurrentNew = hn; task.h = h;
            task.hPrev = hPrev
            forEachRowChunk(task, batch: B, width: GH)
        }
    }

    /// dn = dh (1 - z); dz = dh (h_{t-1} - n); dn_pre = dn (1 - n^2); dr = dn_pre R_n;
    /// dP = [dr_pre, dz_pre, dn_pre]; dR = [dr_pre, dz_pre, dn_pre r]; dh_next = dR W_hh + dh z.
    func gruBackward(
        layer k: Int, _ steps: StepRows, dOutput: UnsafeMutablePointer<Scalar>,
        dProjected: UnsafeMutablePointer<Scalar>, dRecurrent: UnsafeMutablePointer<Scalar>
    ) {
        let H = configuration.hiddenSize, GH = 3 * H, allRows = steps.batch
        let cache = layers[k]
        var dh = gradHidden.pointer, dhNext = gradHiddenNext.pointer
        for t in stride(from: steps.count - 1, through: 0, by: -1) {
            let B = steps.rows(t)
            let hPrev = cache.hidden.pointer + steps.previous(t) * H
            let gates = cache.gates.pointer + steps.offset(t) * GH
            let hn = cache.recurrentNew.pointer + steps.offset(t) * H
            let dOut = dOutput + steps.offset(t) * H
            let dP = dProjected + steps.offset(t) * GH, dR = dRecurrent + steps.offset(t) * GH
            recordHiddenGradient(layer: k, step: steps.first + t, rows: B, dh, dOut)
            let task = rowTasks.gruBackward
            task.width = H; task.gates = gates; task.hPrev = hPrev; task.recurrentNew = hn; task.dOut = dOut
            task.dProjected = dP; task.dRecurrent = dR; task.dh = dh; task.dhNext = dhNext
            forEachRowChunk(task, batch: B, width: GH)
            if !feedsUnwantedInitialGradient(steps, t) {
                recurrentGradientProduct(layer: k, dR, batch: B, beta: 1, into: dhNext)
            }
            // Rows whose sequence ended before step t keep their pending final-state gradient.
            if B < allRows { (dhNext + B * H).update(from: dh + B * H, count: (allRows - B) * H) }
            truncateRecurrentGradient(layer: k, step: steps.first + t, rows: B, dhNext, nil)
            swap(&dh, &dhNext)
        }
        if dh != gradHidden.pointer { gradHidden.pointer.update(from: dh, count: allRows * H) }
    }
}

// MARK: - Element-wise step work over batch rows (split over the kernel pool by forEachRowChunk)
//
// Float runs these loops in the C kernels (`rk_gru_forward_rows_f32` and `rk_gru_backward_rows_f32` in cell_rows.c):
// the same operations in the same order, 16 or 8 lanes at a time, where the Swift compiler leaves them scalar; Double
// (the proofs) runs the Swift loops below.

/// r, z = sigmoid(P + R); n = tanh(P_n + r R_n); h = (1 - z) n + z h_{t-1}; keeps R_n in `recurrentNew`.
final class GRUForwardRows<Scalar: RecurrentScalar>: RowTask {
    var gates: UnsafeMutablePointer<Scalar>!, recurrent: UnsafeMutablePointer<Scalar>!,
        recurrentNew: UnsafeMutablePointer<Scalar>!
    var h: UnsafeMutablePointer<Scalar>!, hPrev: UnsafeMutablePointer<Scalar>!
    var width = 0
    override func run(_ rows: Range<Int>) { gruForwardRows(self, rows) }
}

/// The body of `GRUForwardRows.run`, specialized for Float and Double: a method of a generic class called through its
/// base class runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x
/// slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func gruForwardRows<Scalar: RecurrentScalar>(_ t: GRUForwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, recurrent = t.recurrent!, recurrentNew = t.recurrentNew!, h = t.h!, hPrev = t.hPrev!,
        width = t.width
    let hn = recurrentNew
    let H = width, GH = 3 * H
    if Scalar.self == Float.self {
        rk_gru_forward_rows_f32(
            floats(gates), floats(recurrent), floats(hn), floats(h), floats(hPrev), rows.lowerBound, rows.upperBound, H)
        return
    }
    for b in rows {
        let gr = gates + b * GH, gz = gr + H, gn = gz + H
        let rr = recurrent + b * GH, rn = rr + 2 * H
        let row = b * H
        for j in 0..<(2 * H) { gr[j] += rr[j] }  // r and z pre-activations are adjacent
        Scalar.sigmoid(gr, count: 2 * H)
        for j in 0..<H {
            hn[row + j] = rn[j]
            gn[j] += gr[j] * rn[j]
        }
        Scalar.tanh(gn, count: H)
        for j in 0..<H { h[row + j] = (1 - gz[j]) * gn[j] + gz[j] * hPrev[row + j] }
    }
}

/// dP = [dr_pre, dz_pre, dn_pre], dR = [dr_pre, dz_pre, dn_pre r]; dh and dhNext both receive the direct path dh z
/// (the matrix path dR W_hh is added to dhNext afterwards).
final class GRUBackwardRows<Scalar: RecurrentScalar>: RowTask {
    var gates: UnsafeMutablePointer<Scalar>!, hPrev: UnsafeMutablePointer<Scalar>!,
        recurrentNew: UnsafeMutablePointer<Scalar>!
    var dOut: UnsafeMutablePointer<Scalar>!, dProjected: UnsafeMutablePointer<Scalar>!,
        dRecurrent: UnsafeMutablePointer<Scalar>!
    var dh: UnsafeMutablePointer<Scalar>!, dhNext: UnsafeMutablePointer<Scalar>!
    var width = 0
    override func run(_ rows: Range<Int>) { gruBackwardRows(self, rows) }
}

/// The body of `GRUBackwardRows.run`, specialized for Float and Double: a method of a generic class called through its
/// base class runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x
/// slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func gruBackwardRows<Scalar: RecurrentScalar>(_ t: GRUBackwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, hPrev = t.hPrev!, recurrentNew = t.recurrentNew!, dOut = t.dOut!, dProjected = t.dProjected!,
        dRecurrent = t.dRecurrent!, dh = t.dh!, dhNext = t.dhNext!, width = t.width
    let hn = recurrentNew, dP = dProjected, dR = dRecurrent, dhNow = dh, dhNew = dhNext
    let H = width, GH = 3 * H
    if Scalar.self == Float.self {
        rk_gru_backward_rows_f32(
            floats(gates), floats(hPrev), floats(hn), floats(dOut), floats(dP), floats(dR), floats(dhNow),
            floats(dhNew), rows.lowerBound, rows.upperBound, H)
        return
    }
    for b in rows {
        let row = b * H
        for j in 0..<H {
            let r = gates[b * GH + j], z = gates[b * GH + H + j], n = gates[b * GH + 2 * H + j]
            let dhTotal = dhNow[row + j] + dOut[row + j]
            let dnPre = dhTotal * (1 - z) * (1 - n * n)
            let dzPre = dhTotal * (hPrev[row + j] - n) * z * (1 - z)
            let drPre = dnPre * hn[row + j] * r * (1 - r)
            dP[b * GH + j] = drPre; dP[b * GH + H + j] = dzPre; dP[b * GH + 2 * H + j] = dnPre
            dR[b * GH + j] = drPre; dR[b * GH + H + j] = dzPre; dR[b * GH + 2 * H + j] = dnPre * r
            let direct = dhTotal * z
            dhNow[row + j] = direct
            dhNew[row + j] = direct
        }
    }
}

// MARK: - Public single-step cell

/// PyTorch `nn.GRUCell` (gates r|z|n, reset after the product): parameters `weight_ih` (3H, I), `weight_hh` (3H, H),
/// `bias_ih` (3H), `bias_hh` (3H). See ``RecurrentCell`` for the step and its backward.
public final class GRUCell<Scalar: RecurrentScalar>: RecurrentCell<Scalar> {
    /// A cell with fresh parameters (PyTorch's U(±1/√H) by default).
    /// - Throws: when a size is below 1.
    public init(
        inputSize: Int, hiddenSize: Int, bias: Bool = true, initialization: Initialization = .pytorch,
        generator: inout SeededGenerator
    ) throws {
        try super.init(
            cell: .gru, inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, initialization: initialization,
            generator: &generator)
    }
}

/// PyTorch `nn.GRU` (stacked layers, dropout between them, optionally both directions): a ``RecurrentNetwork`` made
/// from PyTorch's arguments, with its own parameters (gather it into a model with ``ParameterStore/init(gathering:)``).
public final class GRU<Scalar: RecurrentScalar>: RecurrentNetwork<Scalar> {
    /// A stack with fresh parameters (PyTorch's U(±1/√H) by default).
    /// - Throws: on invalid sizes or dropout.
    public init(
        inputSize: Int, hiddenSize: Int, numLayers: Int = 1, dropout: Double = 0, bias: Bool = true,
        bidirectional: Bool = false, initialization: Initialization = .pytorch, generator: inout SeededGenerator
    ) throws {
        let configuration = RecurrentConfiguration(
            cell: .gru, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, dropout: dropout,
            bias: bias,
            bidirectional: bidirectional)
        try super.init(configuration, parameters: try ownParameters(configuration), prefix: "", naming: .layers)
        initialize(initialization, generator: &generator)
    }
}
