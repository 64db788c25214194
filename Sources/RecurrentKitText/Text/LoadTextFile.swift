import RecurrentKit
/// Reads a UTF-8 text file, throwing a `RecurrentKitError` that names the problem instead of trapping.
///
/// Fails with a message for: a missing file, a directory, an unreadable file, more than `maximumBytes` bytes, bytes
/// that are not valid UTF-8 (the message gives the byte offset of the first invalid byte), and an empty file. A pipe
/// or FIFO is read to its end (`--corpus <(zcat big.txt.gz)`), and an endless device such as `/dev/zero` stops at
/// `maximumBytes` with an error (see `readFileBytes(_:what:maximumBytes:allowStreams:)`).
/// The bytes are returned unchanged (a leading byte-order mark or "\r\n" line endings are kept).
/// - Parameters:
///   - path: a file path, absolute or relative to the current directory.
///   - maximumBytes: the largest text accepted; 1 GiB by default.
///   - allowStreams: accept a FIFO, pipe or character device, read to its end (true by default, e.g.
///     `--corpus <(zcat big.txt.gz)`); false refuses anything but a regular file at once, so a reader that did not
///     choose the path (a resumed checkpoint names it) or many readers at once (the processes of a job) never wait
///     on a FIFO without a writer.
/// - Returns: the file's contents.
public func loadTextFile(at path: String, maximumBytes: Int = 1 << 30, allowStreams: Bool = true) throws -> String {
    let data = try readFileBytes(path, what: "text file", maximumBytes: maximumBytes, allowStreams: allowStreams)
    if data.isEmpty {
        throw RecurrentKitError("text file '\(path)' is empty (0 bytes)")
    }
    // Fast path: the standard library validates in one pass; only on failure do we look for the offset.
    if let text = validatedUTF8(data) {
        return text
    }
    // Validation and the parser apply the same rules, so the fallback 0 is never used.
    let offset = firstInvalidUTF8Offset(data) ?? 0
    let byte = data[data.startIndex + offset]
    throw RecurrentKitError(
        "text file '\(path)' is not valid UTF-8: invalid byte 0x\(hex(byte)) at byte offset \(offset)"
            + " (of \(data.count) bytes); convert it to UTF-8 first (for example with iconv)")
}

/// The bytes as a String when they are valid UTF-8, else nil (no repair, unlike `String(decoding:as:)`).
func validatedUTF8(_ bytes: [UInt8]) -> String? {
    firstInvalidUTF8Offset(bytes) == nil ? String(decoding: bytes, as: UTF8.self) : nil
}

/// Byte offset where the first ill-formed UTF-8 sequence starts, or nil if all bytes are valid UTF-8.
///
/// Same convention as Python's UnicodeDecodeError: for C3 28 the offset is 0 (the lead byte C3
/// cannot be decoded because 28 is not a continuation byte).
func firstInvalidUTF8Offset<Bytes: Collection>(_ bytes: Bytes) -> Int? where Bytes.Element == UInt8 {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded): offset += encoded.count
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16, uppercase: true)
    return digits.count == 1 ? "0" + digits : digits
}
