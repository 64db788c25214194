import ArgumentParser
import RecurrentKit
import RecurrentKitText

/// `rnn import`: an ONNX language model as a checkpoint (the library's `ONNX.importLanguageModel`).
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract:
            "Read an ONNX language model (from rnn export, or torch.onnx.export of an embedding or one-hot input, "
            + "nn.RNN/GRU/LSTM and nn.Linear) into a checkpoint.",
        discussion:
            "Files written by rnn export carry their vocabulary; for others give --vocabulary-from or --corpus with "
            + "--text-mode."
    )

    @Argument(help: "The ONNX file.") var model: String
    @Argument(help: "Where to write the checkpoint (safetensors, written atomically).") var output: String
    @Option(help: "Take the vocabulary of this checkpoint.") var vocabularyFrom: String?
    @Option(help: "Build the vocabulary from this embedded corpus or UTF-8 text file (with --text-mode).") var corpus:
        String?
    @Option(help: "How --corpus is tokenised.") var textMode: TextMode = .d2l

    func run() throws {
        // Before the work: a missing folder, or an output that exists and is not a regular file (a device, FIFO,
        // socket, symbolic link or folder), is refused with one line. Checkpoint.save writes through
        // writeFileAtomically, which checks again and never replaces anything but a regular file.
        try checkWritableLocation(output)
        // One writer per folder, as `rnn train`: a training run writing here would replace the imported file.
        let lock = try OutputFolderLock(
            folder: parentFolder(of: output), staleTemporariesOf: [String(output.split(separator: "/").last ?? "")])
        defer { withExtendedLifetime(lock) {} }
        let bytes = try readFileBytes(model, what: "ONNX file", maximumBytes: ONNX.maximumFileBytes)
        let (imported, stored) = try ONNX.importLanguageModel(bytes)
        let vocabulary: Vocabulary
        if let vocabularyFrom {
            vocabulary = try Checkpoint.load(from: vocabularyFrom).vocabulary
        } else if let corpus {
            vocabulary = try PreparedCorpus.prepare(text: try loadCorpusText(corpus), mode: textMode).vocabulary
        } else if let stored {
            vocabulary = stored
        } else {
            throw RecurrentKitError(
                "\(model) carries no vocabulary: give --vocabulary-from CHECKPOINT or --corpus NAME --text-mode MODE")
        }
        let c = imported.configuration
        guard vocabulary.count == c.vocabularySize else {
            throw RecurrentKitError(
                "the vocabulary has \(vocabulary.count) tokens but the model predicts \(c.vocabularySize)")
        }
        try Checkpoint(model: imported, vocabulary: vocabulary).save(to: output)
        print(
            "wrote \(output): \(c.cell.rawValue) L\(c.numLayers) H\(c.hiddenSize) V\(c.vocabularySize)"
                + (c.embeddingSize.map { " embedding \($0)" } ?? " one-hot") + (c.bidirectional ? " bidirectional" : "")
                + (c.bias ? "" : " no-bias"))
    }
}
