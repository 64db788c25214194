// A model that carries its recurrent state from one batch to the next (truncated BPTT over a stream, d2l 8.5's
// sequential sampling): the Trainer decides when the state restarts from zeros and when it carries on.

/// A model whose forward starts from the state the previous forward ended in, as a value: the gradient path is cut
/// at the batch boundary (d2l's `state.detach_()`), so each backward stays within its batch.
///
/// A ``Trainer`` drives it: ``resetCarriedState()`` at the start of every epoch, before every batch whose
/// ``Batch/resetsState`` is true, and after a skipped update (the state may hold NaN then);
/// ``carryFinalState()`` after every update it applies. Validation through the trainer's own loop runs inside
/// ``withCarriedStateSaved(_:)``, so it neither sees nor changes the training state. A trainer's checkpoint holds the
/// carried state (``writeCarriedState(into:prefix:)``), so a run saved in the middle of an epoch resumes exactly.
public protocol StatefulLayer: AnyObject {
    /// Whether the next forward starts from a carried state (false: zeros).
    var isCarryingState: Bool { get }
    /// The next forward starts from zeros (the state's storage may be kept for reuse).
    func resetCarriedState()
    /// The next forward starts from the final state of the latest forward (a copy: later forwards do not change it).
    /// - Throws: when no forward has run since the model was built or its record went stale.
    func carryFinalState() throws
    /// Runs `body` from a zero state and puts the carried state back afterwards, whatever `body` does to it.
    func withCarriedStateSaved<R>(_ body: () throws -> R) rethrows -> R
    /// Adds the carried state to a checkpoint file as tensors named `prefix` + `h` (and `c`), in the model's
    /// precision; adds nothing when the model is not carrying a state.
    func writeCarriedState(into file: inout SafetensorsFile, prefix: String) throws
    /// Sets the carried state from the tensors ``writeCarriedState(into:prefix:)`` wrote (none: not carrying).
    /// - Throws: one line when a tensor's shape is not a state of this model or a value is not finite; the carried
    ///   state is then unchanged.
    func readCarriedState(from file: SafetensorsFile, prefix: String) throws
}
