import ArgumentParser
import RecurrentKit
import RecurrentKitText

/// `rnn export`: a checkpoint as an ONNX file (the library's `ONNX.export`).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's model as an ONNX file (native RNN/GRU/LSTM operators, opset 14).",
        discussion:
            "Inputs tokens (T, B) int64 and optional h0/c0; outputs logits (T, B, V), hn and cn. The vocabulary "
            + "travels in the file's metadata."
    )

    /// The export formats (ONNX only, so far).
    enum Format: String, CaseIterable, ExpressibleByArgument { case onnx }

    @Option(help: "Output format.") var format: Format = .onnx
    @Argument(help: "Checkpoint written by rnn train or Scripts/interchange (safetensors).") var checkpoint: String
    @Argument(help: "Where to write the ONNX file (written atomically).") var output: String

    func run() throws {
        // Before the work: a missing folder, or an output that exists and is not a regular file (a device, FIFO,
        // socket, symbolic link or folder), is refused with one line. ONNX.export writes through writeFileAtomically,
        // which checks again and never replaces anything but a regular file.
        try checkWritableLocation(output)
        let loaded = try Checkpoint.load(from: checkpoint)
        try ONNX.export(loaded.model, vocabulary: loaded.vocabulary, to: output)
        let c = loaded.model.configuration
        print(
            "wrote \(output): \(c.cell.rawValue) L\(c.numLayers) H\(c.hiddenSize) V\(c.vocabularySize)"
                + (c.embeddingSize.map { " embedding \($0)" } ?? " one-hot") + (c.bidirectional ? " bidirectional" : "")
                + ", ONNX opset \(ONNX.opset)")
    }
}
