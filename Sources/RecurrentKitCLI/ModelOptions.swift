import ArgumentParser
import RecurrentKit
import RecurrentKitText

/// The model's shape on the command line: one option group, the same names and checks, for every command that builds
/// a model (`train`, `gradcheck`, `probe`, `analyze`). Each command gives its own defaults for what is not set, turns
/// the group into the library's configuration in one step, and refuses the options it has no use for (nothing given is
/// silently ignored).
struct ModelOptions: ParsableArguments {
    @Option(help: "Cell: rnn_tanh (also rnn, tanh), rnn_relu (relu), rnn_linear (linear), gru or lstm.") var cell:
        CellKind?
    @Option(help: "Hidden units H (>= 1).") var hidden: Int?
    @Option(name: .customLong("hidden-size"), help: .hidden) var hiddenOldSpelling: Int?
    @Option(help: "Recurrent layers (>= 1).") var layers: Int?
    @Option(help: "Dropout between layers, [0, 1).") var dropout: Double?
    @Option(help: "Embedding width (0 = one-hot input).") var embedding: Int?
    @Flag(help: "Recurrent layers without biases (PyTorch bias=False).") var noBias = false
    @Option(help: "LSTM: project h to this width (PyTorch proj_size, below --hidden; 0 = none).") var projection: Int?

    /// Checks what the options say on their own; the sizes' ranges are the library's (the configuration's `validate`,
    /// with the same messages whichever command builds the model).
    func validate() throws {
        try requireOneSpelling(hidden != nil, hiddenOldSpelling != nil, new: "--hidden", old: "--hidden-size")
        if let embedding, embedding < 0 {
            throw RecurrentKitError.invalidArgument("embedding", embedding, "must be >= 0 (0 = one-hot)")
        }
        if let projection, projection < 0 {
            throw RecurrentKitError.invalidArgument("projection", projection, "must be >= 0 (0 = none)")
        }
    }

    /// --hidden (or its old spelling --hidden-size, with one line naming the new one).
    var hiddenSize: Int? {
        spelledValue(hidden, orOldSpelling: hiddenOldSpelling, new: "--hidden", old: "--hidden-size")
    }

    /// The options a command can use.
    enum Field: String { case dropout, embedding, noBias = "no-bias", projection }

    /// Throws, naming the first option given that `command` has no use for.
    func refuse(_ fields: [Field], in command: String) throws {
        for field in fields {
            let given: Bool
            switch field {
            case .dropout: given = dropout != nil
            case .embedding: given = embedding != nil
            case .noBias: given = noBias
            case .projection: given = projection != nil
            }
            if given { throw RecurrentKitError("--\(field.rawValue) is not used by rnn \(command)") }
        }
    }

    /// Throws when any option of the model's shape (all but --dropout) is given: `reason` says where the shape comes
    /// from.
    func refuseShape(because reason: String) throws {
        let given: [(String, Bool)] = [
            ("--cell", cell != nil), ("--hidden", hidden != nil || hiddenOldSpelling != nil),
            ("--layers", layers != nil),
            ("--embedding", embedding != nil), ("--no-bias", noBias), ("--projection", projection != nil),
        ]
        if let name = given.first(where: \.1)?.0 { throw RecurrentKitError("\(name) cannot be given: \(reason)") }
    }

    /// The recurrent stack's configuration: these options over the command's defaults (`gradcheck`).
    func recurrentConfiguration(
        inputSize: Int, defaults: (cell: CellKind, hidden: Int, layers: Int)
    ) -> RecurrentConfiguration {
        RecurrentConfiguration(
            cell: cell ?? defaults.cell, inputSize: inputSize, hiddenSize: hiddenSize ?? defaults.hidden,
            numLayers: layers ?? defaults.layers, dropout: dropout ?? 0, bias: !noBias,
            projectionSize: projection ?? 0)
    }

    /// Sets the model fields of a run's options to the ones given (`train`; the rest stay the preset's).
    func apply(to o: inout TrainingOptions) {
        if let cell { o.cell = cell }
        if let h = hiddenSize { o.hiddenSize = h }
        if let layers { o.numLayers = layers }
        if let dropout { o.dropout = dropout }
        if let embedding { o.embeddingSize = embedding == 0 ? nil : embedding }
        if noBias { o.recurrentBias = false }
        if let projection { o.projectionSize = projection == 0 ? nil : projection }
    }
}
