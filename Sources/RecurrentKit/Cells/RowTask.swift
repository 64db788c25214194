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
