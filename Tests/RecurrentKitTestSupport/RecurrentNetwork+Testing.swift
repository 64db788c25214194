// The recurrent stack's public checked pair as the tests call it: a forward returning its output and final state, and
// a backward through the latest record. Public API only: the tests exercise the path users do.
import RecurrentKit

/// The latest record of each network run through
/// ``RecurrentNetwork/forwardTensors(_:initialState:lengths:training:generator:)`` (a few at most: the tests run one or
/// two networks at a time).
nonisolated(unsafe) private var latestRecords: [ObjectIdentifier: Any] = [:]

extension RecurrentNetwork {
    /// `callAsFunction` (checked) with training off unless asked, returning the record's output (T, B, D*H) and final
    /// state; the record is kept for ``backwardTensors(outputGradient:finalStateGradient:truncation:)``.
    public func forwardTensors(
        _ input: RecurrentInput<Scalar>, initialState: RecurrentState<Scalar>? = nil, lengths: [Int]? = nil,
        training: Bool = false, generator: inout SeededGenerator
    ) throws -> (output: Tensor<Scalar>, finalState: RecurrentState<Scalar>) {
        let record = try self(
            input, initialState: initialState, lengths: lengths, training: training, generator: &generator)
        if latestRecords.count > 8 { latestRecords.removeAll() }
        latestRecords[ObjectIdentifier(self)] = record
        return (try record.output, try record.finalState)
    }

    /// The public `backward(_:outputGradient:finalStateGradient:truncation:)` through the record of this network's
    /// latest ``forwardTensors(_:initialState:lengths:training:generator:)``.
    public func backwardTensors(
        outputGradient: Tensor<Scalar>, finalStateGradient: RecurrentState<Scalar>? = nil,
        truncation: BackwardTruncation = .none
    ) throws -> (inputGradient: Tensor<Scalar>?, initialStateGradient: RecurrentState<Scalar>) {
        guard let record = latestRecords[ObjectIdentifier(self)] as? RecurrentRecord<Scalar> else {
            throw RecurrentKitError("backward called without a forward pass")
        }
        return try backward(
            record, outputGradient: outputGradient, finalStateGradient: finalStateGradient, truncation: truncation)
    }
}
