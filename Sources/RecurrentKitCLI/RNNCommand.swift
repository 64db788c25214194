import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn`: train, sample, evaluate and check recurrent networks.
@main
struct RNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnn",
        abstract: "Recurrent networks (RNN, GRU, LSTM) with hand-written backpropagation through time.",
        version: RecurrentKitVersion.string,
        subcommands: [TrainCommand.self, SampleCommand.self, EvalCommand.self, ExportCommand.self, ImportCommand.self, GradCheckCommand.self, AnalyzeCommand.self, CompareBPTTCommand.self, TaskCommand.self, BenchCommand.self, PlotCommand.self, ProbeCommand.self]
    )

    /// Every failure is one line on stderr and a non-zero exit; help and version go to stdout with exit 0.
    static func main() {
        // `rnn train` saves and exits cleanly on SIGINT/SIGTERM: the handlers go in before anything else runs, so a
        // signal during start-up is not lost (the run stops after its first update and saves).
        if CommandLine.arguments.dropFirst().first == "train" { installStopHandlers() }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as RecurrentKitError {
            fail(error.message)
        } catch let code as ExitCode {
            exitProcess(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                exitProcess(0)
            }
            fail(oneLine(message(for: error)), code: code.rawValue)
        }
    }
}

/// The parser's message as one line: its first line, followed by the values when it lists them one per line
/// ("Please provide one of the following:" then "- value" lines).
func oneLine(_ message: String) -> String {
    let lines = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard let first = lines.first else { return message }
    let values = lines.dropFirst().prefix { $0.hasPrefix("- ") }.map { String($0.dropFirst(2)) }
    return values.isEmpty ? first : first + " " + values.joined(separator: ", ")
}

/// Ends the process with `code` (the C library's `exit`, which the command types' own `exit(withError:)` shadows).
func exitProcess(_ code: Int32) -> Never { exit(code) }

/// Prints `rnn: error: message` on stderr and exits.
func fail(_ message: String, code: Int32 = 1) -> Never {
    // One line, whatever the message holds (paths and user text may contain newlines); clear a live progress line first.
    let flat = message.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    if standardOutputIsTerminal && mpiJob == nil { print("\r\u{1B}[K", terminator: ""); flushStandardOutput() }
    let line = "rnn: error: \(flat)\n"
    if let job = mpiJob { failJob(job, line, code: code) }
    FileHandle.standardError.write(Data(line.utf8))
    exit(code)
}

/// Flushes buffered standard output (every C stream: naming `stdout`, a C global, is not concurrency-safe in Swift 6).
func flushStandardOutput() { fflush(nil) }

/// True when standard output is a terminal (live progress line) rather than a file or pipe (plain lines).
var standardOutputIsTerminal: Bool { isatty(1) == 1 }

/// Peak resident memory of this process in MB.
func peakResidentMegabytes() -> Double { Double(peakResidentBytes()) / 1_048_576 }
