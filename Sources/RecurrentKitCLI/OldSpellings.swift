import RecurrentKit

// Options renamed in 0.3 keep their old spelling: it works, and a successful run names the new one on stderr.

/// Lines naming the new spelling of an old option, printed (standard error, so output meant for files stays clean)
/// when the command has succeeded: a failure stays the one line of its error.
nonisolated(unsafe) var deprecationNotes: [String] = []

/// Records the line that names an option's new spelling (once per option).
func noteDeprecatedSpelling(_ old: String, use new: String) {
    let line = "note: \(old) is the old spelling of \(new); use \(new)"
    if !deprecationNotes.contains(line) { deprecationNotes.append(line) }
}

/// Throws unless at most one of an option's two spellings was given.
func requireOneSpelling(_ newGiven: Bool, _ oldGiven: Bool, new: String, old: String) throws {
    if newGiven, oldGiven { throw RecurrentKitError("give \(new) once (\(old) is its old spelling)") }
}

/// The value given under the old spelling `old` (recording the note that names `new`), else the one under `new`.
func spelledValue<T>(_ newValue: T?, orOldSpelling oldValue: T?, new: String, old: String) -> T? {
    guard let oldValue else { return newValue }
    noteDeprecatedSpelling(old, use: new)
    return oldValue
}
