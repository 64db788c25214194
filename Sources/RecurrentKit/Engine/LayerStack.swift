// What runs a network's layers, chosen once when the network is made: one direction's layer loop
// (OneDirectionStack.swift), or PyTorch's bidirectional=True as a composition of two one-direction stacks per layer
// (BidirectionalStack.swift). The network checks every argument and hands the work to its stack, so none of its methods
// branches on the direction.

/// A network's layers over caller buffers (time-major), with the outputs and final states they leave.
class LayerStack<Scalar: RecurrentScalar> {
    /// Runs every layer over T steps of B rows. `input` is (T, B, I) dense, or nil with `tokens` (T*B indices) or
    /// `inputProjections` (T, B, G*H); `h0` (directions x L, B, R) and `c0` (directions x L, B, H) or nil for zeros;
    /// `lengths` (B values in [1, T], already checked) for a variable-length batch. The network has checked every
    /// argument; nothing here throws on input it accepted.
    func forward(
        steps T: Int, batch B: Int, input: UnsafePointer<Scalar>?, tokens: [Int]?, h0: UnsafePointer<Scalar>?,
        c0: UnsafePointer<Scalar>?, lengths: [Int]?, inputProjections: UnsafePointer<Scalar>?, training: Bool,
        recomputeInterval: Int?, dropoutShard: BatchShard?, generator: inout SeededGenerator
    ) throws { fatalError("LayerStack.forward is abstract") }

    /// Backpropagates through the last forward: `outputGradient` (T, B, directions x R), the final-state gradients
    /// (directions x L, B, R / H) or nil for zeros; overwrites the non-nil input and initial-state gradients (the
    /// network passes no input gradient after one-hot input) and adds every parameter gradient into the store.
    /// `recorder` receives dL/dh_t of every step (analysis only).
    func backward(
        steps T: Int, batch B: Int, outputGradient: UnsafePointer<Scalar>, finalHiddenGradient: UnsafePointer<Scalar>?,
        finalCellGradient: UnsafePointer<Scalar>?, inputGradient: UnsafeMutablePointer<Scalar>?,
        initialHiddenGradient: UnsafeMutablePointer<Scalar>?, initialCellGradient: UnsafeMutablePointer<Scalar>?,
        truncation: BackwardTruncation, recorder: HiddenGradientRecorder<Scalar>?
    ) throws { fatalError("LayerStack.backward is abstract") }

    /// Every h_t of the last layer after a forward, (T, B, directions x R).
    var output: UnsafeMutablePointer<Scalar> { fatalError("LayerStack.output is abstract") }
    /// Final hidden state of state row `k`, (B, R).
    func finalHidden(layer k: Int) -> UnsafeMutablePointer<Scalar> { fatalError("LayerStack.finalHidden is abstract") }
    /// Final cell state of state row `k`, (B, H) (LSTM).
    func finalCell(layer k: Int) -> UnsafeMutablePointer<Scalar> { fatalError("LayerStack.finalCell is abstract") }
    /// The one-direction loops this stack is made of, in `state_dict` order (itself for one direction).
    var engines: [OneDirectionStack<Scalar>] { fatalError("LayerStack.engines is abstract") }
    /// Bytes of the forward caches and backward scratch (parameters and packed weights excluded).
    var activationMemoryBytes: Int { fatalError("LayerStack.activationMemoryBytes is abstract") }
}
