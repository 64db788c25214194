import RecurrentKit
/// One minibatch of token indices, time-major: element (t, b) is at index `t * batchSize + b`.
///
/// This is d2l's `X.T` / `Y.T`: the model consumes (T, B) directly and the loss is averaged over
/// `targets` in this order, like d2l's `Y.T.reshape(-1)`.
public struct Minibatch: Equatable, Sendable {
    /// Number of time steps T (> 0).
    public let numSteps: Int
    /// Number of sequences B (> 0).
    public let batchSize: Int
    /// Input token indices, shape (T, B) time-major, `numSteps * batchSize` elements.
    public let inputs: [Int]
    /// Target token indices, shape (T, B) time-major: each is the token that follows the input at the same place.
    public let targets: [Int]
    /// True when the hidden state must start from zero: the first minibatch of a sequential epoch and every random one.
    public let resetsState: Bool

    /// Creates a minibatch (normally made by ``MinibatchSchedule/epoch(using:)``).
    ///
    /// Throws a `RecurrentKitError` unless `numSteps > 0`, `batchSize > 0` and `inputs` and
    /// `targets` both have `numSteps * batchSize` elements.
    public init(numSteps: Int, batchSize: Int, inputs: [Int], targets: [Int], resetsState: Bool) throws {
        guard numSteps > 0 else { throw RecurrentKitError.invalidArgument("numSteps", numSteps, "must be > 0") }
        guard batchSize > 0 else { throw RecurrentKitError.invalidArgument("batchSize", batchSize, "must be > 0") }
        let (elements, overflow) = numSteps.multipliedReportingOverflow(by: batchSize)
        guard !overflow, inputs.count == elements, targets.count == elements else {
            throw RecurrentKitError(
                "minibatch inputs have \(inputs.count) and targets \(targets.count) elements,"
                    + " expected numSteps * batchSize = \(numSteps) * \(batchSize)")
        }
        self.numSteps = numSteps
        self.batchSize = batchSize
        self.inputs = inputs
        self.targets = targets
        self.resetsState = resetsState
    }

    /// Builds without checks (the schedule guarantees the sizes).
    init(unchecked numSteps: Int, batchSize: Int, inputs: [Int], targets: [Int], resetsState: Bool) {
        self.numSteps = numSteps
        self.batchSize = batchSize
        self.inputs = inputs
        self.targets = targets
        self.resetsState = resetsState
    }

    /// Input at time step `t` (0..<numSteps) of batch row `b` (0..<batchSize).
    public func input(step t: Int, row b: Int) -> Int { inputs[t * batchSize + b] }

    /// Target at time step `t` (0..<numSteps) of batch row `b` (0..<batchSize).
    public func target(step t: Int, row b: Int) -> Int { targets[t * batchSize + b] }
}
