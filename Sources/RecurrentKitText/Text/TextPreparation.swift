import RecurrentKit
/// Text clean-up applied before tokenisation in ``TextMode/d2l`` mode (d2l 0.17 `read_time_machine`).
public enum TextPreparation {
    /// The lines of `text` after d2l 0.17's per-line clean-up, in order (3,221 for The Time Machine).
    ///
    /// Lines are split as Python's `open(path).readlines()` does (universal newlines: "\n", "\r\n"
    /// and "\r" each end a line; no empty line after a final terminator). Each line is then
    /// `re.sub('[^A-Za-z]+', ' ', line).strip().lower()`: every run of characters other than ASCII
    /// letters becomes one space, leading and trailing spaces are removed, letters are lower-cased.
    /// Empty lines stay (as "").
    /// - Parameter text: any text.
    /// - Returns: one cleaned string per line, each made of `a`–`z` and single inner spaces.
    public static func d2lLines(_ text: String) -> [String] {
        var lines: [String] = []
        forEachD2LLine(in: text) { lines.append(String(decoding: $0, as: UTF8.self)) }
        return lines
    }

    /// d2l 0.17's prepared text: ``d2lLines(_:)`` joined with no separator (so words at line ends are glued).
    ///
    /// The Time Machine gives 170,580 characters. Tokens in ``TextMode/d2l`` mode are the characters of this string.
    /// - Parameter text: any text.
    /// - Returns: a string of `a`–`z` and spaces.
    public static func d2lNormalize(_ text: String) -> String {
        var joined: [UInt8] = []
        joined.reserveCapacity(text.utf8.count)
        forEachD2LLine(in: text) { joined.append(contentsOf: $0) }
        return String(decoding: joined, as: UTF8.self)
    }

    /// The text a model of `mode` reads: ``d2lNormalize(_:)`` in d2l mode, ``d2lLines(_:)`` joined by single spaces in
    /// words mode (words never cross a line end), the text itself in raw mode.
    public static func prepared(_ text: String, mode: TextMode) -> String {
        switch mode {
        case .d2l: return d2lNormalize(text)
        case .words: return d2lLines(text).joined(separator: " ")
        case .raw: return text
        }
    }

    /// Calls `body` with the cleaned UTF-8 bytes of each line.
    ///
    /// Works on bytes: every byte of a multi-byte UTF-8 sequence is >= 0x80, hence "not an ASCII
    /// letter", so a run of non-letter bytes is exactly a run of non-letter characters.
    private static func forEachD2LLine(in text: String, _ body: ([UInt8]) -> Void) {
        let bytes = Array(text.utf8)
        var line: [UInt8] = []
        var pendingSpace = false  // a non-letter run seen since the last letter of this line
        var lineHasContent = false  // the raw line has at least one byte (for the "no empty last line" rule)
        func finishLine() {
            body(line)  // a trailing run is dropped: that is the strip()
            line.removeAll(keepingCapacity: true)
            pendingSpace = false
            lineHasContent = false
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == 0x0A || byte == 0x0D {
                // "\r\n" is one terminator.
                if byte == 0x0D, index < bytes.count, bytes[index] == 0x0A { index += 1 }
                finishLine()
                continue
            }
            lineHasContent = true
            let lowered: UInt8
            switch byte {
            case 0x41...0x5A: lowered = byte + 0x20  // A-Z
            case 0x61...0x7A: lowered = byte  // a-z
            default:
                pendingSpace = true
                continue
            }
            // A leading run is dropped (strip()); an inner run becomes one space.
            if pendingSpace && !line.isEmpty { line.append(0x20) }
            pendingSpace = false
            line.append(lowered)
        }
        if lineHasContent { finishLine() }
    }
}
