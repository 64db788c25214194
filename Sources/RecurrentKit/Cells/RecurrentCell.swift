// Single-step cells (PyTorch `nn.RNNCell`, `nn.GRUCell`, `nn.LSTMCell`): one layer, one step, run by the same code as
// the stack (a one-layer network over T = 1), so their equations are the ones in this folder and nowhere else.

/// One step of a single-layer recurrent cell: `h' = cell(x, h)` (and `c'` for the LSTM), with PyTorch's parameter
/// names (`weight_ih` (G*H, I), `weight_hh` (G*H, H), `bias_ih`, `bias_hh`), gate orders and initialisation.
/// Make one with ``RNNCell``, ``GRUCell`` or ``LSTMCell``.
///
/// For loops you write yourself (a decoder that feeds back its own output, attention over a sequence): call the cell
/// once per step and keep each step's input and state; ``backward(input:state:outputGradient:)`` recomputes that step
/// from them (one cheap step) and adds the parameter gradients, so steps can be backpropagated in any order and
/// nothing is cached between calls. For whole sequences, ``RNN``, ``GRU`` and ``LSTM`` are faster.
///
/// A cell is also a ``Layer`` (input ``CellInput``: x and the state; output the next ``RecurrentState``), so it can sit
/// in a ``Sequential`` model; its record is the step's input, so one cell applied several times in a pass keeps one
/// independent record per step.
public class RecurrentCell<Scalar: RecurrentScalar>: ParameterizedLayer {
    /// The one-layer, one-step network doing the work (names without the `_l0` suffix).
    let network: RecurrentNetwork<Scalar>
    private var generator = SeededGenerator(seed: 0)  // no dropout in a single layer: never drawn from

    init(
        cell: CellKind, inputSize: Int, hiddenSize: Int, bias: Bool, initialization: Initialization,
        generator: inout SeededGenerator
    ) throws {
        let configuration = RecurrentConfiguration(
            cell: cell, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: 1, bias: bias)
        network = try RecurrentNetwork(
            configuration, parameters: try ownParameters(configuration, naming: .cell), prefix: "", naming: .cell)
        network.initialize(initialization, generator: &generator)
    }

    /// Which cell.
    public var cell: CellKind { network.configuration.cell }
    /// Input features I.
    public var inputSize: Int { network.configuration.inputSize }
    /// Hidden units H.
    public var hiddenSize: Int { network.configuration.hiddenSize }

    /// The store holding the cell's parameters.
    public var parameters: ParameterStore<Scalar> { network.parameters }
    /// The prefix of the cell's names in ``parameters``.
    public var parameterPrefix: String { network.parameterPrefix }
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` (PyTorch's `nn.*Cell` `state_dict` order; no biases with `bias: false`).
    public var parameterDeclarations: ParameterLayout { network.parameterDeclarations }
    /// Rebinds to `store` under `prefix` (``ParameterStore/init(gathering:)`` calls it after copying the values).
    public func _bind(to store: ParameterStore<Scalar>, prefix: String) throws {
        try network._bind(to: store, prefix: prefix)
    }

    /// `weight_ih`, (G*H, I), and its gradient.
    public var weightIH: ParameterView<Scalar> {
        ParameterView(store: parameters, name: network.parameterName("weight_ih", 0))
    }
    /// `weight_hh`, (G*H, H), and its gradient.
    public var weightHH: ParameterView<Scalar> {
        ParameterView(store: parameters, name: network.parameterName("weight_hh", 0))
    }
    /// `bias_ih`, (G*H), and its gradient; nil for a cell made with `bias: false`.
    public var biasIH: ParameterView<Scalar>? { try? network.biasIH(layer: 0) }
    /// `bias_hh`, (G*H), and its gradient; nil for a cell made with `bias: false`.
    public var biasHH: ParameterView<Scalar>? { try? network.biasHH(layer: 0) }

    /// One step: the next state from `input` and `state`.
    /// - Parameters:
    ///   - input: x, (B, I).
    ///   - state: h (B, H) and, for the LSTM, c (B, H); zeros when nil (or when `c` is nil).
    /// - Returns: h' (B, H) and, for the LSTM, c' (B, H).
    public func callAsFunction(
        _ input: Tensor<Scalar>, state: RecurrentState<Scalar>? = nil
    ) throws -> RecurrentState<Scalar> {
        let record = try step(input, state)
        var next: RecurrentState<Scalar>? = nil
        try record.copyFinalState(into: &next)
        let B = input.shape[0], H = hiddenSize
        return RecurrentState(
            h: try Tensor(shape: [B, H], scalars: next!.h.scalars),
            c: try next!.c.map { try Tensor(shape: [B, H], scalars: $0.scalars) })
    }

    /// Backpropagates through the step from `state` with `input`: adds dL/dparameters into the store's gradients
    /// (zero them first) and returns dL/dx (B, I) and dL/d`state`. The step is recomputed from its arguments.
    /// - Parameters:
    ///   - input: x (B, I) given to the step.
    ///   - state: the state given to the step (nil for zeros).
    ///   - outputGradient: dL/dh' (B, H) and, for the LSTM, dL/dc' (B, H) (nil for zero).
    public func backward(
        input: Tensor<Scalar>, state: RecurrentState<Scalar>? = nil, outputGradient: RecurrentState<Scalar>
    ) throws
        -> (inputGradient: Tensor<Scalar>, stateGradient: RecurrentState<Scalar>)
    {
        let record = try step(input, state)
        let B = input.shape[0], H = hiddenSize, I = inputSize
        try outputGradient.h.requireShape([B, H], name: "outputGradient.h")
        let lstm = cell.hasCellState
        if lstm, let dc = outputGradient.c { try dc.requireShape([B, H], name: "outputGradient.c") }
        var dx = [Scalar](repeating: 0, count: B * I), dh = [Scalar](repeating: 0, count: B * H)
        var dc = [Scalar](repeating: 0, count: lstm ? B * H : 0)
        try outputGradient.h.scalars.withUnsafeBufferPointer { dOut in
            try withOptionalPointer(lstm ? outputGradient.c : nil) { dcNext in
                try dx.withUnsafeMutableBufferPointer { dxp in
                    try dh.withUnsafeMutableBufferPointer { dhp in
                        try dc.withUnsafeMutableBufferPointer { dcp in
                            try network.backward(
                                record, outputGradient: dOut.baseAddress!, finalCellGradient: dcNext,
                                inputGradient: dxp.baseAddress!, initialHiddenGradient: dhp.baseAddress!,
                                initialCellGradient: lstm ? dcp.baseAddress! : nil)
                        }
                    }
                }
            }
        }
        return (
            try Tensor(shape: [B, I], scalars: dx),
            RecurrentState(
                h: try Tensor(shape: [B, H], scalars: dh), c: lstm ? try Tensor(shape: [B, H], scalars: dc) : nil)
        )
    }

    /// Runs the one-step network on checked arguments.
    private func step(_ input: Tensor<Scalar>, _ state: RecurrentState<Scalar>?) throws -> RecurrentRecord<Scalar> {
        guard input.shape.count == 2, input.shape[0] >= 1, input.shape[1] == inputSize else {
            throw RecurrentKitError.shapeMismatch("cell input", expected: [-1, inputSize], got: input.shape)
        }
        let B = input.shape[0], H = hiddenSize
        if let state {
            try state.h.requireShape([B, H], name: "state.h")
            if cell.hasCellState, let c = state.c { try c.requireShape([B, H], name: "state.c") }
        }
        return try input.scalars.withUnsafeBufferPointer { x in
            try withOptionalPointer(state?.h) { h0 in
                try withOptionalPointer(cell.hasCellState ? state?.c : nil) { c0 in
                    try network.forward(
                        steps: 1, batch: B, input: x.baseAddress!, tokens: nil, initialHidden: h0, initialCell: c0,
                        training: false, generator: &generator)  // one layer: no dropout
                }
            }
        }
    }
}

/// Whether a vanilla RNN applies tanh or ReLU (PyTorch's `nonlinearity`).
public enum RNNNonlinearity: String, CaseIterable, Codable, Sendable {
    /// `tanh` (PyTorch's default).
    case tanh
    /// `relu`.
    case relu

    /// The matching ``CellKind``.
    public var cell: CellKind { self == .tanh ? .rnnTanh : .rnnReLU }
}
