// What runs a network's layers, chosen once when the network is made: its own layer loop in one direction
// (RecurrentNetwork+Forward.swift, +Backward.swift), or PyTorch's bidirectional=True as a composition of two
// one-direction networks per layer (RecurrentNetwork+Bidirectional.swift). The network's calls go through the stack,
// so none of its methods branches on the direction.

/// A network's layer loop over caller buffers (time-major), with the outputs and final states it leaves.
class LayerStack<Scalar: RecurrentScalar> {
    /// Runs every layer; the network has checked the arguments and configured `lengths`' packing (`packed`).
    func forward(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?, h0: UnsafePointer<Scalar>?,
        c0: UnsafePointer<Scalar>?, lengths: [Int]?, packed: Bool, inputProjections: UnsafePointer<Scalar>?,
        training: Bool, generator: inout SeededGenerator
    ) throws { fatalError("LayerStack.forward is abstract") }

    /// Backpropagates through the last forward (see `RecurrentNetwork.backward(outputGradient:...)`).
    func backward(
        steps T: Int, batch B: Int, outputGradient: UnsafePointer<Scalar>, finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?, inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?, initialCellGradient: UnsafeMutablePointer<Scalar>?,
        truncation: BackwardTruncation
    ) throws { fatalError("LayerStack.backward is abstract") }

    /// Every h_t of the last layer after a forward, (T, B, D*R).
    var output: UnsafeMutablePointer<Scalar> { fatalError("LayerStack.output is abstract") }
    /// Final hidden state of state row `k`, (B, R).
    func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> { fatalError("LayerStack.finalHidden is abstract") }
    /// Final cell state of state row `k`, (B, H) (LSTM).
    func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> { fatalError("LayerStack.finalCell is abstract") }
    /// The one-direction networks this stack is made of (none when it is the network's own loop).
    var directions: [RecurrentNetwork<Scalar>] { [] }
    /// Bytes of the buffers the stack holds beyond the network's own workspaces.
    var extraActivationBytes: Int { 0 }
}

/// The network's own layer loop, in one direction.
final class OneDirectionStack<Scalar: RecurrentScalar>: LayerStack<Scalar> {
    private unowned let network: RecurrentNetwork<Scalar>

    init(_ network: RecurrentNetwork<Scalar>) { self.network = network }

    override func forward(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?, h0: UnsafePointer<Scalar>?,
        c0: UnsafePointer<Scalar>?, lengths: [Int]?, packed: Bool, inputProjections: UnsafePointer<Scalar>?,
        training: Bool, generator: inout SeededGenerator
    ) throws {
        try network.forwardOneDirection(
            steps: T, batch: B, input: input, tokens: tokens, h0: h0, c0: c0, packed: packed,
            inputProjections: inputProjections, training: training, generator: &generator)
    }

    override func backward(
        steps T: Int, batch B: Int, outputGradient: UnsafePointer<Scalar>, finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?, inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?, initialCellGradient: UnsafeMutablePointer<Scalar>?,
        truncation: BackwardTruncation
    ) throws {
        try network.backwardOneDirection(
            steps: T, batch: B, outputGradient: outputGradient, finalHiddenGradient: finalHiddenGradient,
            finalCellGradient: finalCellGradient, inputGradient: inputGradient,
            initialHiddenGradient: initialHiddenGradient, initialCellGradient: initialCellGradient,
            truncation: truncation)
    }

    override var output: UnsafeMutablePointer<Scalar> { network.oneDirectionOutput }
    override func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> {
        network.oneDirectionFinalHidden(layer: k)
    }
    override func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> { network.oneDirectionFinalCell(layer: k) }
}
