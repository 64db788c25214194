import RecurrentKit
/// How an epoch cuts the token list into minibatches (d2l 0.17 `seq_data_iter_sequential` / `seq_data_iter_random`).
public enum SamplingStrategy: String, CaseIterable, Codable, Sendable {
    /// Each batch row reads on from where it stopped in the previous minibatch, so the hidden
    /// state is carried (detached) across the minibatches of an epoch and reset at its start.
    case sequential
    /// Non-overlapping subsequences in shuffled order; the hidden state is reset for every minibatch.
    case random
}
