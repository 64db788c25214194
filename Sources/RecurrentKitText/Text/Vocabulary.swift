import RecurrentKit
/// The mapping between tokens (one Unicode scalar each, plus `<unk>` in d2l mode) and indices `0..<count`.
///
/// Tokens are compared by Unicode scalar value, never by Swift's canonical string equivalence, so
/// "Å" (U+00C5) and "Å" (U+212B ANGSTROM SIGN) are two tokens, as they are two characters in the file.
/// Build one with ``d2l(from:)`` or ``raw(from:)``; ``init(tokens:mode:)`` validates a saved list.
/// Encoding as JSON keeps `tokens` and `mode`; decoding runs the same validation.
public struct Vocabulary: Equatable, Codable, Sendable {
    /// The unknown token of d2l mode, always at index 0 there (never produced by encoding a character).
    public static let unknownToken = "<unk>"

    /// The tokens in index order: token `i` has index `i`.
    public let tokens: [String]
    /// The text mode the vocabulary was built for; it decides how unknown characters are handled.
    public let mode: TextMode

    /// Number of tokens, the model's vocabulary size (28 for The Time Machine in d2l mode).
    public var count: Int { tokens.count }

    // Lookup tables built from `tokens` (not encoded; rebuilt on decode).
    private let scalarOfIndex: [Unicode.Scalar?]  // nil for `<unk>`
    private let asciiIndex: [Int]  // 128 entries, -1 = not in the vocabulary (fast path for ASCII text)
    private let indexOfScalar: [UInt32: Int]
    private let indexOfWord: [String: Int]  // words mode

    private enum CodingKeys: String, CodingKey { case tokens, mode }

    /// Validates and stores a token list (for example one read from a checkpoint).
    ///
    /// Requirements: at least one token; in d2l mode the first token is `<unk>`; every other token
    /// is exactly one Unicode scalar; no token appears twice. Raw-mode tokens need not be sorted.
    /// - Parameters:
    ///   - tokens: the tokens in index order.
    ///   - mode: the mode the tokens were built for.
    public init(tokens: [String], mode: TextMode) throws {
        guard !tokens.isEmpty else {
            throw RecurrentKitError.invalidArgument("vocabulary tokens", "[]", "need at least one token")
        }
        if mode == .words {
            guard Vocabulary.isUnknownToken(tokens[0]) else {
                throw RecurrentKitError.invalidArgument(
                    "word vocabulary token 0", Vocabulary.quoted(tokens[0]), "must be \"\(Vocabulary.unknownToken)\"")
            }
            var seen: [String: Int] = [:]
            for (index, word) in tokens.enumerated().dropFirst() {
                // No length limit: ``words(fromLines:minimumFrequency:)`` makes a word of any run of letters, and a
                // vocabulary a training run writes must load (the safetensors header limit bounds a hostile file).
                guard !word.isEmpty, !word.unicodeScalars.contains(where: { $0.properties.isWhitespace }) else {
                    throw RecurrentKitError.invalidArgument(
                        "word \(index)", Vocabulary.quoted(String(word.unicodeScalars.prefix(40))),
                        "must be non-empty and without whitespace")
                }
                if let previous = seen[word] {
                    throw RecurrentKitError("invalid vocabulary: word \(index) duplicates word \(previous)")
                }
                seen[word] = index
            }
            self.init(validatedWords: tokens)
            return
        }
        var scalars: [Unicode.Scalar?] = []
        scalars.reserveCapacity(tokens.count)
        var seen: [UInt32: Int] = [:]
        for (index, token) in tokens.enumerated() {
            if mode == .d2l && index == 0 {
                guard Vocabulary.isUnknownToken(token) else {
                    throw RecurrentKitError.invalidArgument(
                        "d2l vocabulary token 0", Vocabulary.quoted(token), "must be \"\(Vocabulary.unknownToken)\"")
                }
                scalars.append(nil)
                continue
            }
            let tokenScalars = Array(token.unicodeScalars)
            guard tokenScalars.count == 1 else {
                throw RecurrentKitError.invalidArgument(
                    "vocabulary token \(index)", Vocabulary.quoted(token),
                    "must be exactly one Unicode scalar (\(Vocabulary.unknownToken) only at index 0 in d2l mode)")
            }
            let scalar = tokenScalars[0]
            if let previous = seen[scalar.value] {
                throw RecurrentKitError(
                    "invalid vocabulary: token \(index) \(Vocabulary.describe(scalar)) duplicates token \(previous)")
            }
            seen[scalar.value] = index
            scalars.append(scalar)
        }
        self.init(validatedTokens: tokens, mode: mode, scalars: scalars)
    }

    /// Stores tokens already known to be valid and builds the lookup tables.
    private init(validatedTokens tokens: [String], mode: TextMode, scalars: [Unicode.Scalar?]) {
        self.tokens = tokens
        self.mode = mode
        self.scalarOfIndex = scalars
        var ascii = [Int](repeating: -1, count: 128)
        var byScalar: [UInt32: Int] = [:]
        for (index, scalar) in scalars.enumerated() {
            guard let scalar else { continue }
            byScalar[scalar.value] = index
            if scalar.isASCII { ascii[Int(scalar.value)] = index }
        }
        self.asciiIndex = ascii
        self.indexOfScalar = byScalar
        self.indexOfWord = [:]
    }

    /// Stores a word list already known to be valid (`<unk>` first) and builds the word table.
    private init(validatedWords words: [String]) {
        tokens = words
        mode = .words
        scalarOfIndex = []
        asciiIndex = []
        indexOfScalar = [:]
        var table: [String: Int] = [:]
        for (index, word) in words.enumerated().dropFirst() { table[word] = index }
        indexOfWord = table
    }

    /// Decodes `tokens` and `mode` and validates them as ``init(tokens:mode:)`` does.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            tokens: container.decode([String].self, forKey: .tokens),
            mode: container.decode(TextMode.self, forKey: .mode))
    }

    /// Encodes `tokens` and `mode` (the lookup tables are rebuilt when decoding).
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tokens, forKey: .tokens)
        try container.encode(mode, forKey: .mode)
    }

    /// The JSON a checkpoint stores (`__metadata__["vocabulary"]`): `{"mode":"…","tokens":[…]}`, keys sorted, in pure
    /// ASCII, so that every JSON reader gives back each token scalar for scalar.
    ///
    /// ASCII is written as `JSONEncoder` writes it (`\"`, `\\`, `\/`, `\b`, `\t`, `\n`, `\f`, `\r`, other controls as
    /// `\u00xx`), so a vocabulary of ASCII tokens is stored byte for byte as before; every other scalar is a
    /// lower-case `\uxxxx` escape, above U+FFFF a UTF-16 surrogate pair (as Python's `json.dumps` with
    /// `ensure_ascii=True`). Unescaped, a token starting with U+FEFF lost it when read back: Foundation's
    /// `JSONSerialization`, which reads safetensors headers, strips a U+FEFF that begins a JSON string or follows an
    /// escape sequence. Read it back with `JSONDecoder` (``init(from:)``).
    public var checkpointJSON: String {
        var out: [UInt8] = []
        out.reserveCapacity(32 + tokens.reduce(0) { $0 + $1.utf8.count + 3 })
        func hex4(_ unit: UInt16) {
            out.append(contentsOf: [0x5C, 0x75])  // \u
            for shift in stride(from: 12, through: 0, by: -4) {
                let digit = UInt8((unit >> UInt16(shift)) & 0xF)
                out.append(digit < 10 ? 0x30 + digit : 0x61 + digit - 10)
            }
        }
        func string(_ text: String) {
            out.append(0x22)
            for scalar in text.unicodeScalars {
                switch scalar.value {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])  // \"
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])  // \\
                case 0x2F: out.append(contentsOf: [0x5C, 0x2F])  // \/ (as JSONEncoder)
                case 0x08: out.append(contentsOf: [0x5C, 0x62])  // \b
                case 0x09: out.append(contentsOf: [0x5C, 0x74])  // \t
                case 0x0A: out.append(contentsOf: [0x5C, 0x6E])  // \n
                case 0x0C: out.append(contentsOf: [0x5C, 0x66])  // \f
                case 0x0D: out.append(contentsOf: [0x5C, 0x72])  // \r
                case 0..<0x20: hex4(UInt16(scalar.value))
                case 0x20..<0x80: out.append(UInt8(scalar.value))
                default: for unit in scalar.utf16 { hex4(unit) }
                }
            }
            out.append(0x22)
        }
        out.append(contentsOf: Array(#"{"mode":"#.utf8))
        string(mode.rawValue)
        out.append(contentsOf: Array(#","tokens":["#.utf8))
        for (index, token) in tokens.enumerated() {
            if index > 0 { out.append(0x2C) }
            string(token)
        }
        out.append(contentsOf: Array("]}".utf8))
        return String(decoding: out, as: UTF8.self)
    }

    /// Same mode and the same tokens in the same order, compared scalar by scalar.
    public static func == (lhs: Vocabulary, rhs: Vocabulary) -> Bool {
        lhs.mode == rhs.mode && (lhs.mode == .words ? lhs.tokens == rhs.tokens : lhs.scalarOfIndex == rhs.scalarOfIndex)
    }

    // MARK: - Building

    /// d2l 0.17's `Vocab`: `<unk>`, then the distinct characters by descending count, ties in first-seen order.
    ///
    /// Python's `sorted(counter.items(), key=count, reverse=True)` is stable and `Counter` keeps
    /// first-insertion order, which is what decides ties. Empty text gives `["<unk>"]`.
    /// - Parameter preparedText: text already passed through ``TextPreparation/d2lNormalize(_:)``
    ///   (it is not normalised again here).
    /// - Returns: a d2l-mode vocabulary (28 tokens for The Time Machine).
    public static func d2l(from preparedText: String) -> Vocabulary {
        var distinct: [Unicode.Scalar] = []  // first-seen order
        var asciiCounts = [Int](repeating: 0, count: 128)
        var otherCounts: [UInt32: Int] = [:]
        for scalar in preparedText.unicodeScalars {
            if scalar.isASCII {
                let value = Int(scalar.value)
                if asciiCounts[value] == 0 { distinct.append(scalar) }
                asciiCounts[value] += 1
            } else {
                if otherCounts[scalar.value] == nil { distinct.append(scalar) }
                otherCounts[scalar.value, default: 0] += 1
            }
        }
        func count(_ scalar: Unicode.Scalar) -> Int {
            scalar.isASCII ? asciiCounts[Int(scalar.value)] : otherCounts[scalar.value]!
        }
        // Swift's sort is not guaranteed stable, so break ties on the first-seen position explicitly.
        let ordered = distinct.enumerated()
            .map { (position: $0.offset, scalar: $0.element, count: count($0.element)) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.position < $1.position }
            .map(\.scalar)
        return Vocabulary(
            validatedTokens: [unknownToken] + ordered.map { String($0) }, mode: .d2l,
            scalars: [nil] + ordered.map { Optional($0) })
    }

    /// char-rnn / nanoGPT vocabulary: the distinct Unicode scalars of `text`, sorted by scalar value.
    ///
    /// "\r" and "\n" are separate tokens (no grapheme clustering). Empty text gives an empty vocabulary
    /// (``PreparedCorpus/prepare(text:mode:maxTokens:validationFraction:minimumFrequency:)`` rejects empty text first).
    /// - Parameter text: the whole corpus, unchanged.
    /// - Returns: a raw-mode vocabulary (65 tokens for tiny Shakespeare).
    public static func raw(from text: String) -> Vocabulary {
        var asciiSeen = [Bool](repeating: false, count: 128)
        var others = Set<UInt32>()
        for scalar in text.unicodeScalars {
            if scalar.isASCII { asciiSeen[Int(scalar.value)] = true } else { others.insert(scalar.value) }
        }
        let values = (0..<128).filter { asciiSeen[$0] }.map { UInt32($0) } + others.sorted()
        let scalars = values.map { Unicode.Scalar($0)! }
        return Vocabulary(
            validatedTokens: scalars.map { String($0) }, mode: .raw, scalars: scalars.map { Optional($0) })
    }

    /// d2l 8.2's word `Vocab(tokens, min_freq)`: `<unk>`, then the distinct words of `lines` (each line split at
    /// whitespace scalars; lines from ``TextPreparation/d2lLines(_:)`` hold single spaces only) by descending count,
    /// ties in first-seen order, leaving out words seen fewer than `minimumFrequency` times. The Time Machine: 4,580
    /// entries with every word, top `the` (2,261), `i`, `and`, `of`, `a`.
    /// - Parameters:
    ///   - lines: lines already passed through ``TextPreparation/d2lLines(_:)``.
    ///   - minimumFrequency: words rarer than this become `<unk>` (d2l's `min_freq`; 0 or 1 keeps every word).
    public static func words(fromLines lines: [String], minimumFrequency: Int = 0) -> Vocabulary {
        words(fromLines: lines, minimumFrequency: minimumFrequency, reserving: { _, _ in })
    }

    /// The bytes one distinct word costs while a word vocabulary is built, about: its entry in the counts (a
    /// `Substring` and an `Int`, in a table that doubles), in the first-seen order, in the sorted list, as a `String`
    /// and in the vocabulary's index.
    static let bytesPerDistinctWord = 256

    /// ``words(fromLines:minimumFrequency:)``, calling `reserve(distinct, bytes)` before the count of distinct words
    /// doubles (from 65,536 on) with the bytes the vocabulary may need by then, so a caller can check the memory before
    /// it is spent: a text of mostly distinct words needs far more than its size.
    static func words(
        fromLines lines: [String], minimumFrequency: Int, reserving reserve: (Int, Int) throws -> Void
    ) rethrows -> Vocabulary {
        var counts: [Substring: Int] = [:], order: [Substring] = []
        for line in lines {
            // Scalars, not Characters: a space followed by a combining mark is one Character, and a word must never
            // hold whitespace (``init(tokens:mode:)`` refuses it when the checkpoint is read).
            for scalars in line.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace }) {
                let word = Substring(scalars)
                if counts[word] == nil {
                    let n = order.count
                    if n >= 1 << 16, n & (n - 1) == 0 { try reserve(n, 2 * n * bytesPerDistinctWord) }
                    order.append(word)
                }
                counts[word, default: 0] += 1
            }
        }
        let kept = order.enumerated().filter { counts[$0.element]! >= minimumFrequency }
            .sorted {
                counts[$0.element]! != counts[$1.element]!
                    ? counts[$0.element]! > counts[$1.element]! : $0.offset < $1.offset
            }
            .map { String($0.element) }
        return Vocabulary(validatedWords: [unknownToken] + kept)
    }

    // MARK: - Lookup

    /// Index of `token`, or nil if it is not in the vocabulary (`<unk>` is 0 in d2l mode).
    /// - Parameter token: one Unicode scalar, or `<unk>`.
    public func index(of token: String) -> Int? {
        if mode != .raw && Vocabulary.isUnknownToken(token) { return 0 }
        if mode == .words { return indexOfWord[token] }
        var iterator = token.unicodeScalars.makeIterator()
        guard let scalar = iterator.next(), iterator.next() == nil else { return nil }
        return index(of: scalar)
    }

    private func index(of scalar: Unicode.Scalar) -> Int? {
        if scalar.isASCII {
            let index = asciiIndex[Int(scalar.value)]
            return index >= 0 ? index : nil
        }
        return indexOfScalar[scalar.value]
    }

    /// Token indices of `text`: one per Unicode scalar (length = `text.unicodeScalars.count`), or in words mode one per
    /// whitespace-separated word (unknown words are `<unk>`, 0).
    ///
    /// d2l mode: the text is used as given (call ``TextPreparation/d2lNormalize(_:)`` first to match
    /// training); a character not in the vocabulary becomes 0 (`<unk>`), as d2l's `vocab[token]` does.
    /// Raw mode: a character not in the vocabulary throws a `RecurrentKitError` naming it
    /// (for example `U+00E9 'é'`) and its position (0-based Unicode scalar offset).
    /// - Parameter text: the text to encode.
    /// - Returns: indices in `0..<count`.
    public func encode(_ text: String) throws -> [Int] { try encode(text, maxTokens: nil) }

    /// The first `maxTokens` token indices of `text` (all when nil), as ``encode(_:)`` gives them; the rest of the
    /// text is neither encoded nor checked, and only the tokens kept are allocated (8 bytes each; see
    /// ``encodeTokens(_:maxTokens:)`` for a compact list).
    public func encode(_ text: String, maxTokens: Int?) throws -> [Int] {
        try encode(text, maxTokens: maxTokens, as: Int.self)
    }

    /// The first `maxTokens` token indices of `text` (all when nil), as ``encode(_:)`` gives them, in a
    /// ``TokenList`` of ``TokenList/bytesPerToken(forLargest:)`` `count - 1` bytes per token: 1 for a vocabulary of
    /// at most 256 entries, 2 up to 65,536. Only the tokens kept are allocated.
    /// - Parameters:
    ///   - text: the text to encode.
    ///   - maxTokens: keep only the first `maxTokens` (nil: all).
    /// - Returns: indices in `0..<count`.
    public func encodeTokens(_ text: String, maxTokens: Int? = nil) throws -> TokenList {
        switch TokenList.bytesPerToken(forLargest: count - 1) {
        case 1: return TokenList(storage: .bytes(try encode(text, maxTokens: maxTokens, as: UInt8.self)))
        case 2: return TokenList(storage: .halves(try encode(text, maxTokens: maxTokens, as: UInt16.self)))
        case 4: return TokenList(storage: .words(try encode(text, maxTokens: maxTokens, as: UInt32.self)))
        default: return TokenList(storage: .wide(try encode(text, maxTokens: maxTokens, as: Int.self)))
        }
    }

    /// ``encode(_:maxTokens:)`` into integers of type `T`, which holds every index of this vocabulary.
    private func encode<T: FixedWidthInteger>(_ text: String, maxTokens: Int?, as _: T.Type) throws -> [T] {
        let limit = max(maxTokens ?? Int.max, 0)
        if mode == .words {
            // Words are separated by whitespace scalars (as when the vocabulary was built); an unknown word is `<unk>`
            // (0).
            var indices: [T] = []
            var start: String.UnicodeScalarView.Index? = nil
            let scalars = text.unicodeScalars
            for i in scalars.indices where indices.count < limit {
                if scalars[i].properties.isWhitespace {
                    if let s = start {
                        indices.append(T(truncatingIfNeeded: indexOfWord[String(scalars[s..<i])] ?? 0))
                        start = nil
                    }
                } else if start == nil {
                    start = i
                }
            }
            if let s = start, indices.count < limit {
                indices.append(T(truncatingIfNeeded: indexOfWord[String(scalars[s...])] ?? 0))
            }
            return indices
        }
        var indices: [T] = []
        indices.reserveCapacity(min(text.utf8.count, limit))
        var position = 0
        for scalar in text.unicodeScalars {
            if position == limit { break }
            if let index = index(of: scalar) {
                indices.append(T(truncatingIfNeeded: index))
            } else if mode == .d2l {
                indices.append(0)
            } else {
                throw RecurrentKitError(
                    "character \(Vocabulary.describe(scalar)) at position \(position) is not in the vocabulary"
                        + " (\(count) characters, raw mode has no <unk>)")
            }
            position += 1
        }
        return indices
    }

    /// The text of `indices`: the tokens concatenated (index 0 in d2l mode gives the five characters `<unk>`), or in
    /// words mode joined with single spaces.
    ///
    /// Throws a `RecurrentKitError` naming the first index outside `0..<count` and its position.
    /// - Parameter indices: token indices.
    /// - Returns: the decoded text.
    public func decode(_ indices: some Collection<Int>) throws -> String {
        if mode == .words {
            for (position, index) in indices.enumerated() where index < 0 || index >= count {
                throw RecurrentKitError(
                    "token index \(index) at position \(position) is out of range: vocabulary indices are 0..<\(count)")
            }
            return indices.map { tokens[$0] }.joined(separator: " ")
        }
        // UTF-8 bytes into one growing buffer, then one String: linear in the length.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(indices.count)
        let unknown = Array(Vocabulary.unknownToken.utf8)
        for (position, index) in indices.enumerated() {
            guard index >= 0 && index < count else {
                throw RecurrentKitError(
                    "token index \(index) at position \(position) is out of range: vocabulary indices are 0..<\(count)")
            }
            if let scalar = scalarOfIndex[index] {
                bytes.append(contentsOf: UTF8.encode(scalar)!)
            } else {
                bytes.append(contentsOf: unknown)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Helpers

    /// Exact (scalar-wise) comparison with `<unk>`.
    private static func isUnknownToken(_ token: String) -> Bool {
        token.unicodeScalars.elementsEqual(unknownToken.unicodeScalars)
    }

    /// `U+00E9 'é'`; invisible or control characters are shown escaped, for example `U+000D '\r'`.
    static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        let shown: String
        if scalar.isASCII {
            shown = scalar.escaped(asASCII: true)  // \r \n \t \' \\ \u{7F}
        } else {
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
                .spaceSeparator, .nonspacingMark, .enclosingMark, .spacingMark:
                shown = scalar.escaped(asASCII: true)  // would be invisible or combine with the quote
            default:
                shown = String(scalar)
            }
        }
        return "\(code) '\(shown)'"
    }

    /// A token shown with its scalars, for error messages about saved vocabularies.
    private static func quoted(_ token: String) -> String {
        "\"" + token.unicodeScalars.map { $0.escaped(asASCII: true) }.joined() + "\""
    }
}
