/// Element-wise work of one time step over a range of batch rows, handed to the kernel pool by
/// `forEachRowChunk(_:batch:width:)`. Subclasses hold the step's pointers as stored properties that the caller sets
/// before each step, so running a step allocates nothing.
class RowTask {
    /// Batch rows of the current step (set by `forEachRowChunk`).
    var rows = 0
    /// Runs the step's element-wise work on `rows`.
    func run(_ rows: Range<Int>) { fatalError("RowTask.run is abstract") }
}

/// The per-step tasks of one ``RecurrentNetwork``, built once.
final class StepRowTasks<Scalar: RecurrentScalar> {
    let rnnForward = RNNForwardRows<Scalar>()
    let rnnBackward = RNNBackwardRows<Scalar>()
    let lstmForward = LSTMForwardRows<Scalar>()
    let lstmBackward = LSTMBackwardRows<Scalar>()
    let gruForward = GRUForwardRows<Scalar>()
    let gruBackward = GRUBackwardRows<Scalar>()
}

/// h = act(h) in place (tanh, or ReLU when `relu`), rows of width H.
final class RNNForwardRows<Scalar: RecurrentScalar>: RowTask {
    var h: UnsafeMutablePointer<Scalar>!
    var width = 0
    var relu = false
    override func run(_ rows: Range<Int>) { rnnForwardRows(self, rows) }
}

/// The body of `RNNForwardRows.run`, specialized for Float and Double: a method of a generic class called through its base class
/// runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func rnnForwardRows<Scalar: RecurrentScalar>(_ t: RNNForwardRows<Scalar>, _ rows: Range<Int>) {
    let h = t.h!, width = t.width, relu = t.relu
    let start = h + rows.lowerBound * width, count = rows.count * width
    if relu { for i in 0..<count where !(start[i] > 0) { start[i] = 0 } }
    else { Scalar.tanh(start, count: count) }
}

/// d = (dh + dOut) * act'(h); activation 0 tanh, 1 ReLU, 2 identity.
final class RNNBackwardRows<Scalar: RecurrentScalar>: RowTask {
    var h: UnsafeMutablePointer<Scalar>!, dh: UnsafeMutablePointer<Scalar>!, dOut: UnsafeMutablePointer<Scalar>!
    var d: UnsafeMutablePointer<Scalar>!
    var width = 0
    var activation = 0
    override func run(_ rows: Range<Int>) { rnnBackwardRows(self, rows) }
}

/// The body of `RNNBackwardRows.run`, specialized for Float and Double: a method of a generic class called through its base class
/// runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func rnnBackwardRows<Scalar: RecurrentScalar>(_ t: RNNBackwardRows<Scalar>, _ rows: Range<Int>) {
    let h = t.h!, dh = t.dh!, dOut = t.dOut!, d = t.d!, width = t.width, activation = t.activation
    let elements = (rows.lowerBound * width)..<(rows.upperBound * width)
    if activation == 2 { for i in elements { d[i] = dh[i] + dOut[i] } }
    else if activation == 1 { for i in elements { d[i] = h[i] > 0 ? dh[i] + dOut[i] : 0 } }
    else { for i in elements { d[i] = (dh[i] + dOut[i]) * (1 - h[i] * h[i]) } }
}

/// i, f, o = sigmoid, g = tanh of the gate pre-activations (in place); c = f c_{t-1} + i g.
final class LSTMForwardRows<Scalar: RecurrentScalar>: RowTask {
    var gates: UnsafeMutablePointer<Scalar>!, c: UnsafeMutablePointer<Scalar>!, cPrev: UnsafeMutablePointer<Scalar>!
    var width = 0
    override func run(_ rows: Range<Int>) { lstmForwardRows(self, rows) }
}

/// The body of `LSTMForwardRows.run`, specialized for Float and Double: a method of a generic class called through its base class
/// runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func lstmForwardRows<Scalar: RecurrentScalar>(_ t: LSTMForwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, c = t.c!, cPrev = t.cPrev!, width = t.width
    let H = width, GH = 4 * H
    for b in rows {
        let gi = gates + b * GH, gg = gi + 2 * H, go = gg + H
        Scalar.sigmoid(gi, count: 2 * H) // i and f are adjacent
        Scalar.tanh(gg, count: H)
        Scalar.sigmoid(go, count: H)
        let gf = gi + H, row = b * H
        for j in 0..<H { c[row + j] = gf[j] * cPrev[row + j] + gi[j] * gg[j] }
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

/// The body of `LSTMBackwardRows.run`, specialized for Float and Double: a method of a generic class called through its base class
/// runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func lstmBackwardRows<Scalar: RecurrentScalar>(_ t: LSTMBackwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, dGates = t.dGates!, cPrev = t.cPrev!, tanhCell = t.tanhCell!, dh = t.dh!, dc = t.dc!, dOut = t.dOut!, width = t.width
    let tc = tanhCell
    let H = width, GH = 4 * H
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

/// r, z = sigmoid(P + R); n = tanh(P_n + r R_n); h = (1 - z) n + z h_{t-1}; keeps R_n in `recurrentNew`.
final class GRUForwardRows<Scalar: RecurrentScalar>: RowTask {
    var gates: UnsafeMutablePointer<Scalar>!, recurrent: UnsafeMutablePointer<Scalar>!, recurrentNew: UnsafeMutablePointer<Scalar>!
    var h: UnsafeMutablePointer<Scalar>!, hPrev: UnsafeMutablePointer<Scalar>!
    var width = 0
    override func run(_ rows: Range<Int>) { gruForwardRows(self, rows) }
}

/// The body of `GRUForwardRows.run`, specialized for Float and Double: a method of a generic class called through its base class
/// runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func gruForwardRows<Scalar: RecurrentScalar>(_ t: GRUForwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, recurrent = t.recurrent!, recurrentNew = t.recurrentNew!, h = t.h!, hPrev = t.hPrev!, width = t.width
    let hn = recurrentNew
    let H = width, GH = 3 * H
    for b in rows {
        let gr = gates + b * GH, gz = gr + H, gn = gz + H
        let rr = recurrent + b * GH, rn = rr + 2 * H
        let row = b * H
        for j in 0..<(2 * H) { gr[j] += rr[j] } // r and z pre-activations are adjacent
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
    var gates: UnsafeMutablePointer<Scalar>!, hPrev: UnsafeMutablePointer<Scalar>!, recurrentNew: UnsafeMutablePointer<Scalar>!
    var dOut: UnsafeMutablePointer<Scalar>!, dProjected: UnsafeMutablePointer<Scalar>!, dRecurrent: UnsafeMutablePointer<Scalar>!
    var dh: UnsafeMutablePointer<Scalar>!, dhNext: UnsafeMutablePointer<Scalar>!
    var width = 0
    override func run(_ rows: Range<Int>) { gruBackwardRows(self, rows) }
}

/// The body of `GRUBackwardRows.run`, specialized for Float and Double: a method of a generic class called through its base class
/// runs unspecialized, every scalar operation going through the protocol witness table (training 2.4x slower).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func gruBackwardRows<Scalar: RecurrentScalar>(_ t: GRUBackwardRows<Scalar>, _ rows: Range<Int>) {
    let gates = t.gates!, hPrev = t.hPrev!, recurrentNew = t.recurrentNew!, dOut = t.dOut!, dProjected = t.dProjected!, dRecurrent = t.dRecurrent!, dh = t.dh!, dhNext = t.dhNext!, width = t.width
    let hn = recurrentNew, dP = dProjected, dR = dRecurrent, dhNow = dh, dhNew = dhNext
    let H = width, GH = 3 * H
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
