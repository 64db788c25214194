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
        subcommands: [
            TrainCommand.self, SampleCommand.self, EvalCommand.self, ExportCommand.self, ImportCommand.self,
            GradCheckCommand.self, AnalyzeCommand.self, CompareBPTTCommand.self, TaskCommand.self, BenchCommand.self,
            PlotCommand.self, ProbeCommand.self,
        ]
    )

    /// Every failure is one line on stderr and a non-zero exit; help and version go to stdout with exit 0.
    static func main() {
        // `rnn train` saves and exits cleanly on SIGINT/SIGTERM: the handlers go in before anything else runs (before
        // the arguments are parsed, and so before any file is opened or written), so a signal during start-up is not
        // lost (the run stops after its first update and saves). A signal before `main` is reached (while the dynamic
        // loader maps and relocates the Swift runtime and Foundation, about 5 to 10 ms) still ends the process by the
        // signal, with nothing written: no code of this program has run yet.
        if CommandLine.arguments.dropFirst().first == "train" { installStopHandlers() }
        do {
            var command = try parseAsRootAcceptingNegativeNumbers(Array(CommandLine.arguments.dropFirst()))
            try command.run()
            for note in deprecationNotes { FileHandle.standardError.write(Data((note + "\n").utf8)) }
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

extension RNNCommand {
    /// `parseAsRoot`, but a negative number may follow its option as a separate word (`--lr -1`, `--forget-bias -2`,
    /// `--time-limit -inf`), as it may after `=` (`--lr=-1`).
    ///
    /// ArgumentParser reads any word that starts with `-` as an option, so `--lr -1` fails with "Missing value for
    /// '--lr <lr>'" instead of the option's own range check. Declaring the options `parsing: .unconditional` would
    /// fix it one declaration at a time, in every command (and let `--lr --epochs 3` take "--epochs" as the rate);
    /// here every command and every future option is covered: when a command line does not parse, it is parsed again
    /// with each `--name NUMBER` whose NUMBER is negative (a word that reads as a `Double`, such as -1, -0.5, -1e-3,
    /// -inf) joined into `--name=NUMBER`. A command line that parses as given is never rewritten, so nothing that
    /// worked changes; when the joined one does not parse either, its error is reported, which names the real problem
    /// ("Missing value for '--updates <updates>'" for `--lr -1 --updates`, not "Missing value for '--lr <lr>'";
    /// "The option '--no-bias' does not take any value, but '-1' was specified" for a flag).
    static func parseAsRootAcceptingNegativeNumbers(_ arguments: [String]) throws -> ParsableCommand {
        do {
            return try parseAsRoot(arguments)
        } catch {
            let joined = joiningNegativeNumbers(arguments)
            guard joined != arguments else { throw error }
            return try parseAsRoot(joined)
        }
    }

    /// `arguments` with every `--name` (no `=`) followed by a negative number written as `--name=number`; a bare `--`
    /// ends the options and the rest is left as it is.
    static func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            if word == "--" { result += arguments[i...]; break }
            if word.count > 2, word.hasPrefix("--"), !word.contains("="), i + 1 < arguments.count,
                isNegativeNumber(arguments[i + 1])
            {
                result.append(word + "=" + arguments[i + 1])
                i += 2
                continue
            }
            result.append(word)
            i += 1
        }
        return result
    }

    /// True for a word such as -1, -0.5, -1e-3, -inf or -nan (a `Double` with a minus sign), which no option name is.
    static func isNegativeNumber(_ word: String) -> Bool {
        word.count > 1 && word.hasPrefix("-") && !word.hasPrefix("--") && Double(word) != nil
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
    // One line, whatever the message holds (paths and user text may contain newlines); clear a live progress line
    // first.
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
