import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn plot`: the perplexity plot of a finished or running training run, from its metrics.jsonl.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw perplexity per epoch (SVG) from a metrics.jsonl written by rnn train."
    )

    @Argument(help: "metrics.jsonl of a run.") var metrics: String
    @Option(help: "SVG file to write (default: perplexity.svg beside the metrics).") var output: String?
    @Option(help: "Plot title.") var title: String = "perplexity per epoch"

    func run() throws {
        let history = try TrainingReports.history(fromJSONLines: try loadTextFile(at: metrics, maximumBytes: 256 << 20))
        guard !history.isEmpty else { throw RecurrentKitError("\(metrics) holds no epochs") }
        let path = output ?? parentFolder(of: metrics) + "/perplexity.svg"
        // A missing folder, or an output that exists and is not a regular file (a device, FIFO, socket, symbolic link
        // or folder), is refused with one line; writeFileAtomically checks again and never replaces anything but a
        // regular file.
        try checkWritableLocation(path)
        try writeFileAtomically(Array(TrainingReports.perplexitySVG(history, title: title).utf8), to: path)
        print("wrote \(path) (\(history.count) epochs)")
    }
}
