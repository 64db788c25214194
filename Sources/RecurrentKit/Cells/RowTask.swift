import _RecurrentKitKernels

/// Element-wise work of one time step over a range of batch rows, handed to the kernel pool by
/// `forEachRowChunk(_:batch:width:)`. Subclasses hold the step's pointers as stored properties that the caller sets
/// before each step, so running a step allocates nothing.
class RowTask {
    /// Batch rows of the current step (set by `forEachRowChunk`).
    var rows = 0
    /// Runs the step's element-wise work on `rows`.
    func run(_ rows: Range<Int>) { fatalError("RowTask.run is abstract") }
}

/// The per-step tasks of one `OneDirectionStack`, built once.
final class StepRowTasks<Scalar: RecurrentScalar> {
    let rnnForward = RNNForwardRows<Scalar>()
    let rnnBackward = RNNBackwardRows<Scalar>()
    let lstmForward = LSTMForwardRows<Scalar>()
    let lstmBackward = LSTMBackwardRows<Scalar>()
    let gruForward = GRUForwardRows<Scalar>()
    let gruBackward = GRUBackwardRows<Scalar>()
}

/// Runs `task` over batch rows [0, B) in two halves on the kernel pool when the step is large enough (B >= 2,
/// B * width >= 16384). The split depends on the sizes only, never on the thread count, and each row's arithmetic is
/// the same either way, so results are identical for any thread count. The task is an object built once per stack
/// (`StepRowTasks`) and re-pointed each step, and the pool receives it as an unretained pointer, so a step
/// allocates nothing (a closure here would box its captures on the heap at every step).
@inline(__always)
func forEachRowChunk(_ task: RowTask, batch B: Int, width: Int) {
    guard B >= 2, B * width >= 16384 else { task.run(0..<B); return }
    task.rows = B
    rk_parallel(
        2,
        { context, chunk, chunks in
            let task = Unmanaged<RowTask>.fromOpaque(context!).takeUnretainedValue()
            task.run((Int(chunk) * task.rows / Int(chunks))..<((Int(chunk) + 1) * task.rows / Int(chunks)))
        }, Unmanaged.passUnretained(task).toOpaque())
}

/// `p` as a Float pointer, for the Float branch (`Scalar.self == Float.self`) of a generic row loop that hands its
/// arrays to a C kernel.
@inline(__always)
func floats<Scalar>(_ p: UnsafePointer<Scalar>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(mutating: p).assumingMemoryBound(to: Float.self)
}

@inline(__always)
func floats<Scalar>(_ p: UnsafeMutablePointer<Scalar>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}
