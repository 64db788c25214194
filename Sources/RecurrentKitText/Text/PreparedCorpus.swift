import RecurrentKit
/// A corpus turned into token indices: its vocabulary and the training (and validation) token lists.
public struct PreparedCorpus: Equatable, Sendable {
    /// The vocabulary, built from the whole text (before any `maxTokens` truncation).
    public let vocabulary: Vocabulary
    /// Token indices used for training, in text order (1 byte each for a vocabulary of at most 256 entries).
    public let trainTokens: TokenList
    /// Token indices held out for validation, in text order; empty in d2l mode (d2l 0.17 has no split).
    public let validationTokens: TokenList

    /// Creates a corpus from parts that are already consistent (indices in `0..<vocabulary.count`).
    public init(vocabulary: Vocabulary, trainTokens: TokenList, validationTokens: TokenList) {
        self.vocabulary = vocabulary
        self.trainTokens = trainTokens
        self.validationTokens = validationTokens
    }

    /// Creates a corpus from parts that are already consistent (indices in `0..<vocabulary.count`), stored as
    /// ``TokenList``s.
    public init(vocabulary: Vocabulary, trainTokens: [Int], validationTokens: [Int]) {
        self.init(
            vocabulary: vocabulary, trainTokens: TokenList(trainTokens), validationTokens: TokenList(validationTokens))
    }

    /// Tokenises `text` in the given mode.
    ///
    /// - d2l mode (d2l 0.17 `load_corpus_time_machine`): the text goes through
    ///   ``TextPreparation/d2lNormalize(_:)``, the vocabulary is built from all of its tokens, then
    ///   the token list is cut to the first `maxTokens`. Everything is training data
    ///   (with `validationFraction` > 0 the end of the token list is held out, as in raw mode). The Time Machine:
    ///   170,580 tokens, 28 entries.
    /// - raw mode (nanoGPT `shakespeare_char/prepare.py`): every Unicode scalar is a token, the
    ///   vocabulary is built from the whole text, the token list is cut to the first `maxTokens`,
    ///   then the first `floor(n * (1 - validationFraction))` tokens are training data and the rest
    ///   validation. Tiny Shakespeare: 65 entries, 1,003,854 train and 111,540 validation tokens.
    ///
    /// Throws a `RecurrentKitError` for empty text (or, in d2l mode, text with no ASCII letter),
    /// `maxTokens <= 0`, a fraction outside [0, 0.5], and a split that leaves no training token.
    /// - Parameters:
    ///   - text: the whole corpus as read (see ``loadTextFile(at:maximumBytes:allowStreams:)``, ``EmbeddedCorpus/text``).
    ///   - mode: ``TextMode/d2l`` or ``TextMode/raw``.
    ///   - maxTokens: keep only the first `maxTokens` tokens (> 0); nil (default) keeps all. d2l uses 10,000.
    ///   - validationFraction: share of the tokens held out (the end of the text), in [0, 0.5]; nil for the mode's
    ///     default: 0.1 in raw mode (nanoGPT), 0 in d2l and words modes (d2l trains on everything).
    ///   - minimumFrequency: words mode: words rarer than this become `<unk>` (d2l's `min_freq`).
    public static func prepare(
        text: String, mode: TextMode, maxTokens: Int? = nil, validationFraction: Double? = nil,
        minimumFrequency: Int = 0
    ) throws -> PreparedCorpus {
        let validationFraction = validationFraction ?? (mode == .raw ? 0.1 : 0)
        guard minimumFrequency >= 0, minimumFrequency <= 1 << 40 else {
            throw RecurrentKitError.invalidArgument("minimumFrequency", minimumFrequency, "must be in 0...2^40")
        }
        if let maxTokens, maxTokens <= 0 {
            throw RecurrentKitError.invalidArgument(
                "maxTokens", maxTokens, "must be positive (leave it out to use the whole text)")
        }
        guard validationFraction >= 0 && validationFraction <= 0.5 else {  // also rejects NaN
            throw RecurrentKitError.invalidArgument("validationFraction", validationFraction, "must be in [0, 0.5]")
        }
        guard !text.isEmpty else {
            throw RecurrentKitError("text is empty: there is nothing to train on")
        }
        // Preparing a text for d2l or words mode copies it before its tokens are counted: a copy of its bytes and the
        // cleaned text (d2l), or the cleaned lines and the text they are joined into (words: one String per line, about
        // 160 bytes beyond its characters with the allocator's overhead and the array's slot). Checked before it is
        // spent (a 1 GiB text in words mode trapped on a failed allocation under ulimit -v 4194304), and so is the
        // encoding below, with the cleaned text's length bounded by its letters, their runs and its lines (a 700 MB
        // text was refused by the encoding's check only after a minute of preparation).
        if mode != .raw {
            var (bytes, lines, letters, runs, inRun) = (0, 1, 0, 0, false)
            for byte in text.utf8 {
                bytes += 1
                if byte == 0x0A || byte == 0x0D { lines += 1 }
                let letter = (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A
                if letter { letters += 1 }
                if letter && !inRun { runs += 1 }
                inRun = letter
            }
            try checkMemory(
                2 * bytes + (mode == .words ? 160 * lines : 0),
                for: "preparing the text (\(bytes) bytes) in \(mode.rawValue) mode")
            let cleaned = letters + runs + lines
            let (tokens, overflow) = min(cleaned, maxTokens ?? Int.max).multipliedReportingOverflow(
                by: 2 * MemoryLayout<UInt32>.stride)
            try checkMemory(
                overflow ? Int.max : cleaned + tokens,
                for: "encoding the text (up to \(cleaned) bytes once prepared) into tokens")
        }
        let vocabulary: Vocabulary, prepared: String
        switch mode {
        case .words:
            let lines = TextPreparation.d2lLines(text)
            vocabulary = try Vocabulary.words(fromLines: lines, minimumFrequency: minimumFrequency) {
                try checkMemory($1, for: "the vocabulary of a text with more than \($0) distinct words")
            }
            guard vocabulary.count > 1 else {
                // Every word rarer than minimumFrequency (each token would be <unk>) is a different cause than a text
                // with no word at all: name the one that applies.
                if let (word, count) = mostFrequentWord(lines) {
                    let shown = word.count > 40 ? word.prefix(40) + "..." : word
                    throw RecurrentKitError(
                        "every word of the text is seen fewer than minimumFrequency \(minimumFrequency) times (the "
                            + "most frequent, \"\(shown)\", \(count) times), so every token would be <unk>; use a "
                            + "minimum frequency of at most \(count)"
                    )
                }
                throw RecurrentKitError("text has no word after d2l preparation: it has no ASCII letter A-Z or a-z")
            }
            prepared = lines.joined(separator: " ")  // words never cross a line end
        case .d2l:
            prepared = TextPreparation.d2lNormalize(text)
            guard !prepared.isEmpty else {
                throw RecurrentKitError(
                    "text is empty after d2l preparation: it has no ASCII letter A-Z or a-z"
                        + " (use raw mode to keep every character)")
            }
            vocabulary = Vocabulary.d2l(from: prepared)
        case .raw:
            prepared = text
            vocabulary = Vocabulary.raw(from: text)
        }
        // The tokens (at most one per UTF-8 byte, in the vocabulary's width) and the validation tail copied out of
        // them: checked before they are allocated, and only the first `maxTokens` are encoded.
        let width = TokenList.bytesPerToken(forLargest: vocabulary.count - 1)
        let kept = min(prepared.utf8.count, maxTokens ?? Int.max)
        let (bound, overflow) = (kept + Int((Double(kept) * validationFraction).rounded(.up)))
            .multipliedReportingOverflow(
                by: width)
        try checkMemory(overflow ? Int.max : bound, for: "encoding the text (\(prepared.utf8.count) bytes) into tokens")
        // Every token of `prepared` is in the vocabulary (or `<unk>`), so encoding never throws here.
        var tokens = try vocabulary.encodeTokens(prepared, maxTokens: maxTokens)
        // The end is held out; nanoGPT: train = data[:int(n * 0.9)], and 1 - 0.1 is exactly the Double 0.9.
        let trainCount = Int((Double(tokens.count) * (1 - validationFraction)).rounded(.down))
        guard trainCount > 0 else {
            throw RecurrentKitError(
                "text too short to split: \(tokens.count) token(s) leave no training token"
                    + " with validationFraction \(validationFraction)")
        }
        // The tail is copied out, then cut from the list in place: the training tokens are never copied.
        let validation = tokens.copy(trainCount..<tokens.count)
        tokens.truncate(to: trainCount)
        return PreparedCorpus(vocabulary: vocabulary, trainTokens: tokens, validationTokens: validation)
    }

    /// A most frequent word of d2l-prepared `lines` (the first to reach the highest count) and its count; nil when the
    /// lines hold no word. Words are split as ``Vocabulary/words(fromLines:minimumFrequency:)`` splits them.
    static func mostFrequentWord(_ lines: [String]) -> (word: String, count: Int)? {
        var counts: [Substring: Int] = [:]
        var best: (word: Substring, count: Int)? = nil
        for line in lines {
            for scalars in line.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace }) {
                let word = Substring(scalars)
                let count = counts[word, default: 0] + 1
                counts[word] = count
                if count > best?.count ?? 0 { best = (word, count) }
            }
        }
        return best.map { (String($0.word), $0.count) }
    }
}
