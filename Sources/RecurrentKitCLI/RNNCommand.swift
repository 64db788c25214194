import ArgumentParser
import RecurrentKit

/// `rnn`: train, sample, evaluate and check recurrent networks.
@main
struct RNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnn",
        abstract: "Recurrent networks (RNN, GRU, LSTM) with hand-written backpropagation through time.",
        subcommands: [GradCheckCommand.self]
    )
}
