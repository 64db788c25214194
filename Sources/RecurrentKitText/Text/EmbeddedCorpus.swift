import RecurrentKit
import _RecurrentKitCorpora

/// The text of an embedded corpus named `nameOrPath` ("timemachine", "tinyshakespeare"), or of the UTF-8 file at that
/// path (with `allowStreams` false, only a regular file: see ``loadTextFile(at:maximumBytes:allowStreams:)``).
public func loadCorpusText(_ nameOrPath: String, allowStreams: Bool = true) throws -> String {
    if let embedded = EmbeddedCorpus(rawValue: nameOrPath) { return embedded.text }
    return try loadTextFile(at: nameOrPath, allowStreams: allowStreams)
}

/// A text corpus compiled into the library (origins and SHA-1 checksums in
/// Sources/_RecurrentKitCorpora/corpora/README.md).
///
/// Both are ASCII with LF line endings, so ``text`` is exactly the file's bytes.
public enum EmbeddedCorpus: String, CaseIterable, Sendable {
    /// "The Time Machine" (H. G. Wells), d2l's copy: 178,979 bytes, 3,221 lines.
    case timeMachine = "timemachine"
    /// Karpathy's tiny Shakespeare (char-rnn): 1,115,394 bytes, 40,000 lines, 65 distinct characters.
    case tinyShakespeare = "tinyshakespeare"

    /// The corpus decoded as UTF-8 (decoded on each access; about 1 MB at most, so keep the result if you reuse it).
    public var text: String {
        var count = 0
        let bytes: UnsafePointer<UInt8>
        switch self {
        case .timeMachine: bytes = rk_corpus_timemachine(&count)
        case .tinyShakespeare: bytes = rk_corpus_tinyshakespeare(&count)
        }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
}
