import Foundation
import RecurrentKitTestSupport
import XCTest

import RecurrentKit
import RecurrentKitText

/// Text pipeline: d2l 0.17 preparation and vocabulary, raw (char-rnn / nanoGPT) mode, the two d2l
/// minibatch iterators, and the errors for bad input. Facts come from /work/shared/data/README.md
/// and from running d2l 0.17's definitions in Python on the same files.
final class TextDataTests: XCTestCase {
    // Prepared once: the corpora are decoded and tokenised a single time for the whole class.
    private static let timeMachine = EmbeddedCorpus.timeMachine.text
    private static let timeMachineD2L = try! PreparedCorpus.prepare(text: timeMachine, mode: .d2l)
    private static let timeMachineD2L10k = try! PreparedCorpus.prepare(
        text: timeMachine, mode: .d2l, maxTokens: 10_000)

    // MARK: - Embedded corpora

    func testEmbeddedCorporaHaveTheDocumentedSizes() {
        XCTAssertEqual(Self.timeMachine.utf8.count, 178_979)
        XCTAssertTrue(Self.timeMachine.hasPrefix("The Time Machine, by H. G. Wells [1898]"))
        let shakespeare = EmbeddedCorpus.tinyShakespeare.text
        XCTAssertEqual(shakespeare.utf8.count, 1_115_394)
        XCTAssertTrue(shakespeare.hasPrefix("First Citizen:"))
        XCTAssertEqual(EmbeddedCorpus(rawValue: "timemachine"), .timeMachine)
        XCTAssertEqual(EmbeddedCorpus(rawValue: "tinyshakespeare"), .tinyShakespeare)
    }

    // MARK: - d2l mode

    func testD2LVocabularyOfTimeMachineHas28TokensInDocumentedOrder() {
        let expected = ["<unk>", " "] + "etainoshrdlmucfwgypbvkxzjq".map(String.init)
        let vocabulary = Self.timeMachineD2L.vocabulary
        XCTAssertEqual(vocabulary.count, 28)
        XCTAssertEqual(vocabulary.tokens, expected)
        XCTAssertEqual(vocabulary.mode, .d2l)
        XCTAssertEqual(vocabulary.index(of: "<unk>"), 0)
        XCTAssertEqual(vocabulary.index(of: " "), 1)
        XCTAssertEqual(vocabulary.index(of: "q"), 27)
        XCTAssertNil(vocabulary.index(of: "Q"))
        XCTAssertNil(vocabulary.index(of: "ab"))
    }

    func testD2LTimeMachineHas3221LinesAnd170580Tokens() {
        XCTAssertEqual(TextPreparation.d2lLines(Self.timeMachine).count, 3_221)
        let prepared = TextPreparation.d2lNormalize(Self.timeMachine)
        XCTAssertEqual(prepared.unicodeScalars.count, 170_580)
        // Lines are glued with no separator ("wellsithe", "himwas"), as in d2l 0.17.
        XCTAssertTrue(prepared.hasPrefix("the time machine by h g wellsithe time traveller for so it will be"))
        XCTAssertTrue(prepared.contains(" of himwas expounding "))

        let corpus = Self.timeMachineD2L
        XCTAssertEqual(corpus.trainTokens.count, 170_580)
        XCTAssertTrue(corpus.validationTokens.isEmpty)
        // Index list checked against d2l 0.17 `load_corpus_time_machine()` run in Python.
        XCTAssertEqual(
            Array(corpus.trainTokens.prefix(20)), [3, 9, 2, 1, 3, 5, 13, 2, 1, 13, 4, 15, 9, 5, 6, 2, 1, 21, 19, 1])
        XCTAssertEqual(corpus.trainTokens.reduce(0, +), 1_222_010)
    }

    func testD2LMaxTokensTruncatesAfterBuildingTheVocabulary() {
        let corpus = Self.timeMachineD2L10k
        XCTAssertEqual(corpus.trainTokens.count, 10_000)
        XCTAssertEqual(Array(corpus.trainTokens), Array(Self.timeMachineD2L.trainTokens.prefix(10_000)))
        XCTAssertEqual(corpus.trainTokens.reduce(0, +), 72_424)  // d2l 0.17, max_tokens=10000
        XCTAssertEqual(corpus.vocabulary, Self.timeMachineD2L.vocabulary)  // built from all 170,580 tokens
        XCTAssertTrue(corpus.validationTokens.isEmpty)
        // More than the text holds keeps everything.
        let all = try? PreparedCorpus.prepare(text: "ab c", mode: .d2l, maxTokens: 100)
        XCTAssertEqual(all?.trainTokens.count, 4)
    }

    func testD2LNormalizationRules() {
        let text = "  Hello, World!  \nIt's 42 \r\n\r\nSTOP-gap\rlast ÉtÉ"
        XCTAssertEqual(TextPreparation.d2lLines(text), ["hello world", "it s", "", "stop gap", "last t"])
        XCTAssertEqual(TextPreparation.d2lNormalize(text), "hello worldit sstop gaplast t")
        // A final line terminator does not add an empty line (Python readlines()).
        XCTAssertEqual(TextPreparation.d2lLines("a\nb\n"), ["a", "b"])
        XCTAssertEqual(TextPreparation.d2lLines("a\nb"), ["a", "b"])
        XCTAssertEqual(TextPreparation.d2lLines("\n"), [""])
        XCTAssertEqual(TextPreparation.d2lLines(""), [])
    }

    func testD2LVocabularyTiesKeepFirstOccurrenceOrder() {
        // b and a both occur twice; b is seen first. c and d once each; d first.
        let vocabulary = Vocabulary.d2l(from: "bdaabc")
        XCTAssertEqual(vocabulary.tokens, ["<unk>", "b", "a", "d", "c"])
        XCTAssertEqual(Vocabulary.d2l(from: "").tokens, ["<unk>"])
    }

    // MARK: - Raw mode

    func testRawVocabularyOfTinyShakespeareHas65EntriesAndA90To10Split() throws {
        let text = EmbeddedCorpus.tinyShakespeare.text
        let corpus = try PreparedCorpus.prepare(text: text, mode: .raw)
        let vocabulary = corpus.vocabulary
        XCTAssertEqual(vocabulary.count, 65)
        XCTAssertEqual(vocabulary.mode, .raw)
        XCTAssertEqual(
            vocabulary.tokens.joined(),
            "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        // nanoGPT shakespeare_char: n = 1,115,394; train = data[:int(n*0.9)].
        XCTAssertEqual(corpus.trainTokens.count, 1_003_854)
        XCTAssertEqual(corpus.validationTokens.count, 111_540)
        XCTAssertEqual(try vocabulary.decode(Array(corpus.trainTokens.prefix(14))), "First Citizen:")
    }

    func testRawModeSplitHonoursFractionAndMaxTokens() throws {
        let text = String(repeating: "abcdefghij", count: 10)  // 100 tokens
        let tenPercent = try PreparedCorpus.prepare(text: text, mode: .raw)
        XCTAssertEqual(tenPercent.trainTokens.count, 90)
        XCTAssertEqual(tenPercent.validationTokens.count, 10)
        let half = try PreparedCorpus.prepare(text: text, mode: .raw, validationFraction: 0.5)
        XCTAssertEqual(half.trainTokens.count, 50)
        XCTAssertEqual(half.validationTokens.count, 50)
        let none = try PreparedCorpus.prepare(text: text, mode: .raw, validationFraction: 0)
        XCTAssertEqual(none.trainTokens.count, 100)
        XCTAssertTrue(none.validationTokens.isEmpty)
        // maxTokens cuts before the split; the vocabulary still comes from the whole text.
        let cut = try PreparedCorpus.prepare(text: text + "z", mode: .raw, maxTokens: 20)
        XCTAssertEqual(cut.trainTokens.count, 18)
        XCTAssertEqual(cut.validationTokens.count, 2)
        XCTAssertEqual(cut.vocabulary.count, 11)
        XCTAssertEqual(
            try cut.vocabulary.decode(Array(cut.trainTokens) + Array(cut.validationTokens)), "abcdefghijabcdefghij")
    }

    func testRawVocabularyKeepsEveryScalarSortedByValue() {
        let vocabulary = Vocabulary.raw(from: "b\r\na é\u{212B}\u{C5}")
        // "\r\n" is two tokens; U+212B and U+00C5 are canonically equivalent but distinct scalars.
        XCTAssertEqual(
            vocabulary.tokens.map { $0.unicodeScalars.first!.value },
            [0x0A, 0x0D, 0x20, 0x61, 0x62, 0xC5, 0xE9, 0x212B])
        XCTAssertEqual(vocabulary.index(of: "\u{212B}"), 7)
        XCTAssertEqual(vocabulary.index(of: "\u{C5}"), 5)
        XCTAssertTrue(Vocabulary.raw(from: "").tokens.isEmpty)
    }

    // MARK: - Encoding and decoding

    func testEncodeDecodeRoundTrip() throws {
        let d2l = Self.timeMachineD2L.vocabulary
        let sentence = "the time traveller for so it will be convenient to speak of him"
        let encoded = try d2l.encode(sentence)
        XCTAssertEqual(encoded.count, sentence.count)
        XCTAssertEqual(try d2l.decode(encoded), sentence)
        XCTAssertEqual(try d2l.decode(Self.timeMachineD2L.trainTokens), TextPreparation.d2lNormalize(Self.timeMachine))

        let text = "Ça va?\r\nOui, très bien 👍\n"
        let raw = Vocabulary.raw(from: text)
        let indices = try raw.encode(text)
        XCTAssertEqual(indices.count, text.unicodeScalars.count)
        XCTAssertEqual(try raw.decode(indices), text)
        XCTAssertEqual(try raw.decode([]), "")
    }

    func testUnknownCharacterIsUnkInD2LMode() throws {
        let vocabulary = Self.timeMachineD2L.vocabulary
        // Not re-normalised: upper case, punctuation and non-ASCII are all unknown.
        XCTAssertEqual(try vocabulary.encode("Ab!é"), [0, 21, 0, 0])
        XCTAssertEqual(try vocabulary.decode([0, 4]), "<unk>a")
        // The five characters of "<unk>" in text are five unknown characters, not the token.
        XCTAssertEqual(try vocabulary.encode("<unk>"), [0, 14, 6, 23, 0])
    }

    func testUnknownCharacterThrowsInRawMode() {
        let vocabulary = Vocabulary.raw(from: "hello world")
        XCTAssertNoThrow(try vocabulary.encode("hello"))
        assertThrows(try vocabulary.encode("helé"), containing: "U+00E9 'é' at position 3 is not in the vocabulary")
        assertThrows(try vocabulary.encode("hel\rlo"), containing: "U+000D '\\r' at position 3")
        assertThrows(try vocabulary.encode("hi"), containing: "U+0069 'i' at position 1")
    }

    func testDecodeOutOfRangeIndexThrows() {
        let vocabulary = Vocabulary.raw(from: "abc")
        assertThrows(try vocabulary.decode([0, 3]), containing: "token index 3 at position 1 is out of range")
        assertThrows(try vocabulary.decode([-1]), containing: "token index -1 at position 0 is out of range")
    }

    func testVocabularyValidationAndCodable() throws {
        assertThrows(try Vocabulary(tokens: [], mode: .raw), containing: "at least one token")
        assertThrows(try Vocabulary(tokens: ["a", "b", "a"], mode: .raw), containing: "duplicates token 0")
        assertThrows(try Vocabulary(tokens: ["a", "<unk>"], mode: .d2l), containing: "must be \"<unk>\"")
        assertThrows(try Vocabulary(tokens: ["<unk>", "ab"], mode: .d2l), containing: "exactly one Unicode scalar")
        assertThrows(try Vocabulary(tokens: ["<unk>", "a"], mode: .raw), containing: "exactly one Unicode scalar")
        XCTAssertNoThrow(try Vocabulary(tokens: ["\u{212B}", "\u{C5}"], mode: .raw))

        let vocabulary = Self.timeMachineD2L.vocabulary
        XCTAssertEqual(try Vocabulary(tokens: vocabulary.tokens, mode: .d2l), vocabulary)
        let json = try JSONEncoder().encode(vocabulary)
        XCTAssertEqual(try JSONDecoder().decode(Vocabulary.self, from: json), vocabulary)
        let bad = Data(#"{"tokens":["a","a"],"mode":"raw"}"#.utf8)
        XCTAssertThrowsError(try JSONDecoder().decode(Vocabulary.self, from: bad)) { error in
            XCTAssertTrue((error as? RecurrentKitError)?.message.contains("duplicates") ?? false, "\(error)")
        }
    }

    // MARK: - Minibatch schedules

    func testBothIteratorsGiveExactly8MinibatchesPerEpochFor50Seeds() throws {
        let tokens = Self.timeMachineD2L10k.trainTokens
        for strategy in SamplingStrategy.allCases {
            let schedule = try MinibatchSchedule(tokens: tokens, batchSize: 32, numSteps: 35, strategy: strategy)
            XCTAssertEqual(schedule.minibatchesPerEpoch, 8, "\(strategy)")
            for seed in 0..<50 {
                var generator = SeededGenerator(seed: UInt64(seed))
                for _ in 0..<2 {  // two epochs per seed: later epochs draw new offsets
                    let epoch = schedule.epoch(using: &generator)
                    XCTAssertEqual(epoch.count, 8, "\(strategy), seed \(seed)")
                    for minibatch in epoch {
                        XCTAssertEqual(minibatch.numSteps, 35)
                        XCTAssertEqual(minibatch.batchSize, 32)
                        XCTAssertEqual(minibatch.inputs.count, 35 * 32)
                        XCTAssertEqual(minibatch.targets.count, 35 * 32)
                    }
                }
            }
        }
    }

    /// Every input is corpus[p] and its target corpus[p + 1]; with a corpus of distinct values the
    /// position p of each element is known, so this checks every element, for both strategies.
    func testTargetsAreInputsShiftedByOne() throws {
        let corpus = distinctValueCorpus(count: 10_000)
        let position = positionsOf(corpus)
        for strategy in SamplingStrategy.allCases {
            let schedule = try MinibatchSchedule(tokens: corpus, batchSize: 32, numSteps: 35, strategy: strategy)
            for seed in 0..<10 {
                var generator = SeededGenerator(seed: UInt64(seed))
                for minibatch in schedule.epoch(using: &generator) {
                    for t in 0..<35 {
                        for b in 0..<32 {
                            let p = try XCTUnwrap(position[minibatch.input(step: t, row: b)])
                            XCTAssertEqual(minibatch.inputs[t * 32 + b], corpus[p])
                            XCTAssertEqual(
                                minibatch.target(step: t, row: b), corpus[p + 1], "\(strategy) t \(t) b \(b)")
                            // Within a row, time step t + 1 reads the next token (time-major layout).
                            if t + 1 < 35 { XCTAssertEqual(position[minibatch.input(step: t + 1, row: b)], p + 1) }
                        }
                    }
                }
            }
        }
        // The real corpus too: inside every row the target at t is the input at t + 1.
        let schedule = try MinibatchSchedule(
            tokens: Self.timeMachineD2L10k.trainTokens, batchSize: 32, numSteps: 35, strategy: .random)
        var generator = SeededGenerator(seed: 7)
        for minibatch in schedule.epoch(using: &generator) {
            for t in 0..<34 {
                for b in 0..<32 {
                    XCTAssertEqual(minibatch.target(step: t, row: b), minibatch.input(step: t + 1, row: b))
                }
            }
        }
    }

    func testSequentialMinibatchesAreContiguousPerBatchRow() throws {
        let corpus = distinctValueCorpus(count: 10_000)
        let position = positionsOf(corpus)
        let schedule = try MinibatchSchedule(tokens: corpus, batchSize: 32, numSteps: 35, strategy: .sequential)
        var offsets = Set<Int>()
        for seed in 0..<50 {
            var generator = SeededGenerator(seed: UInt64(seed))
            let epoch = schedule.epoch(using: &generator)
            XCTAssertEqual(epoch.map(\.resetsState), [true] + Array(repeating: false, count: epoch.count - 1))
            let offset = try XCTUnwrap(position[epoch[0].input(step: 0, row: 0)])
            offsets.insert(offset)
            XCTAssertTrue((0...35).contains(offset), "offset \(offset)")
            // d2l: each of the B rows has numTokens / B tokens.
            let rowLength = (10_000 - offset - 1) / 32
            for (i, minibatch) in epoch.enumerated() {
                for b in 0..<32 {
                    XCTAssertEqual(position[minibatch.input(step: 0, row: b)], offset + b * rowLength + i * 35)
                    if i + 1 < epoch.count {
                        // Row b of minibatch i + 1 continues row b of minibatch i.
                        let last = try XCTUnwrap(position[minibatch.input(step: 34, row: b)])
                        XCTAssertEqual(position[epoch[i + 1].input(step: 0, row: b)], last + 1)
                    }
                }
            }
        }
        XCTAssertGreaterThan(offsets.count, 10, "the offset should vary with the seed")
    }

    func testRandomMinibatchesCoverDistinctSubsequences() throws {
        let corpus = distinctValueCorpus(count: 10_000)
        let position = positionsOf(corpus)
        let schedule = try MinibatchSchedule(tokens: corpus, batchSize: 32, numSteps: 35, strategy: .random)
        for seed in 0..<50 {
            var generator = SeededGenerator(seed: UInt64(seed))
            let epoch = schedule.epoch(using: &generator)
            XCTAssertTrue(epoch.allSatisfy(\.resetsState))
            var starts: [Int] = []
            for minibatch in epoch {
                for b in 0..<32 { starts.append(try XCTUnwrap(position[minibatch.input(step: 0, row: b)])) }
            }
            XCTAssertEqual(Set(starts).count, 8 * 32, "seed \(seed): subsequences repeat")
            // All starts lie on one grid offset + k * numSteps with offset in 0..<numSteps, so windows never overlap.
            let offset = starts.min()! % 35
            XCTAssertTrue(starts.allSatisfy { $0 % 35 == offset }, "seed \(seed)")
            XCTAssertTrue(starts.allSatisfy { $0 + 35 < 10_000 })
            // Shuffled, not in text order.
            XCTAssertNotEqual(starts, starts.sorted(), "seed \(seed)")
        }
    }

    func testEpochsAreAPureFunctionOfTheGenerator() throws {
        let tokens = Self.timeMachineD2L10k.trainTokens
        for strategy in SamplingStrategy.allCases {
            let schedule = try MinibatchSchedule(tokens: tokens, batchSize: 4, numSteps: 5, strategy: strategy)
            var first = SeededGenerator(seed: 42)
            var second = SeededGenerator(seed: 42)
            XCTAssertEqual(schedule.epoch(using: &first), schedule.epoch(using: &second))
            XCTAssertEqual(first, second)
            var other = SeededGenerator(seed: 43)
            XCTAssertNotEqual(schedule.epoch(using: &first), schedule.epoch(using: &other))
        }
    }

    func testMinimumTokenCountIsTight() throws {
        // Sequential needs (B + 1) * T + 1 tokens, random (B + 1) * T: one minibatch at the worst offset.
        XCTAssertEqual(
            try MinibatchSchedule.minimumTokenCount(batchSize: 32, numSteps: 35, strategy: .sequential), 1_156)
        XCTAssertEqual(try MinibatchSchedule.minimumTokenCount(batchSize: 32, numSteps: 35, strategy: .random), 1_155)
        for strategy in SamplingStrategy.allCases {
            let needed = try MinibatchSchedule.minimumTokenCount(batchSize: 3, numSteps: 4, strategy: strategy)
            let schedule = try MinibatchSchedule(
                tokens: distinctValueCorpus(count: needed), batchSize: 3, numSteps: 4, strategy: strategy)
            XCTAssertEqual(schedule.minibatchesPerEpoch, 1)
            for seed in 0..<100 {
                var generator = SeededGenerator(seed: UInt64(seed))
                XCTAssertEqual(schedule.epoch(using: &generator).count, 1, "\(strategy) seed \(seed)")
            }
            XCTAssertThrowsError(
                try MinibatchSchedule(
                    tokens: distinctValueCorpus(count: needed - 1), batchSize: 3, numSteps: 4, strategy: strategy))
        }
    }

    // MARK: - Errors

    func testTooShortTextThrows() {
        assertThrows(
            try MinibatchSchedule(
                tokens: Array(repeating: 1, count: 100), batchSize: 32, numSteps: 35, strategy: .sequential),
            containing: "needs at least 1156 tokens for one minibatch, but there are only 100")
        assertThrows(
            try MinibatchSchedule(tokens: [], batchSize: 32, numSteps: 35, strategy: .random),
            containing: "needs at least 1155 tokens for one minibatch, but there are only 0")
    }

    func testNonPositiveBatchSizeOrStepsThrows() {
        let tokens = Array(repeating: 1, count: 10_000)
        assertThrows(
            try MinibatchSchedule(tokens: tokens, batchSize: 0, numSteps: 35, strategy: .sequential),
            containing: "invalid batchSize 0")
        assertThrows(
            try MinibatchSchedule(tokens: tokens, batchSize: 32, numSteps: -1, strategy: .random),
            containing: "invalid numSteps -1")
        assertThrows(
            try MinibatchSchedule(tokens: tokens, batchSize: Int.max, numSteps: 2, strategy: .random),
            containing: "too large")
        assertThrows(
            try Minibatch(numSteps: 2, batchSize: 2, inputs: [1, 2, 3], targets: [1, 2, 3, 4], resetsState: true),
            containing: "expected numSteps * batchSize")
    }

    func testPrepareRejectsEmptyTextAndBadOptions() {
        assertThrows(try PreparedCorpus.prepare(text: "", mode: .raw), containing: "text is empty")
        assertThrows(try PreparedCorpus.prepare(text: "", mode: .d2l), containing: "text is empty")
        assertThrows(
            try PreparedCorpus.prepare(text: "1984 -- 2001!\n", mode: .d2l),
            containing: "empty after d2l preparation")
        assertThrows(
            try PreparedCorpus.prepare(text: "abc", mode: .d2l, maxTokens: 0), containing: "invalid maxTokens 0")
        assertThrows(
            try PreparedCorpus.prepare(text: "abc", mode: .raw, validationFraction: 0.6),
            containing: "invalid validationFraction 0.6")
        assertThrows(
            try PreparedCorpus.prepare(text: "abc", mode: .raw, validationFraction: .nan),
            containing: "invalid validationFraction")
        assertThrows(
            try PreparedCorpus.prepare(text: "a", mode: .raw, validationFraction: 0.5),
            containing: "leave no training token")
    }

    func testLoadTextFileReportsEachProblem() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("TextDataTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let good = directory.appendingPathComponent("good.txt")
        try Data("héllo\r\nworld\n".utf8).write(to: good)
        XCTAssertEqual(try loadTextFile(at: good.path), "héllo\r\nworld\n")

        let invalid = directory.appendingPathComponent("latin1.txt")
        try Data([0xC3, 0x28]).write(to: invalid)
        assertThrows(
            try loadTextFile(at: invalid.path), containing: "is not valid UTF-8: invalid byte 0xC3 at byte offset 0")
        let invalidLater = directory.appendingPathComponent("later.txt")
        try Data([0x61, 0x62, 0xC3, 0xA9, 0xFF, 0x61]).write(to: invalidLater)
        assertThrows(try loadTextFile(at: invalidLater.path), containing: "invalid byte 0xFF at byte offset 4")

        let empty = directory.appendingPathComponent("empty.txt")
        try Data().write(to: empty)
        assertThrows(try loadTextFile(at: empty.path), containing: "is empty")

        assertThrows(
            try loadTextFile(at: directory.appendingPathComponent("missing.txt").path), containing: "not found")
        assertThrows(try loadTextFile(at: directory.path), containing: "is a directory")

        // Root can read anything, so the permission check is only observable for other users.
        if getuid() != 0 {
            let locked = directory.appendingPathComponent("locked.txt")
            try Data("x".utf8).write(to: locked)
            try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: locked.path)
            assertThrows(try loadTextFile(at: locked.path), containing: "permission denied")
        }
    }

    // MARK: - Helpers

    /// A corpus whose values are all distinct (count - 1 down to 0), so a value gives its position.
    private func distinctValueCorpus(count: Int) -> [Int] {
        Array((0..<count).reversed())
    }

    private func positionsOf(_ corpus: [Int]) -> [Int: Int] {
        Dictionary(uniqueKeysWithValues: corpus.enumerated().map { ($0.element, $0.offset) })
    }

    /// Asserts that `expression` throws a RecurrentKitError whose message contains `substring`.
    private func assertThrows<T>(
        _ expression: @autoclosure () throws -> T, containing substring: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            _ = try expression()
            XCTFail("expected a RecurrentKitError containing \"\(substring)\", got no error", file: file, line: line)
        } catch let error as RecurrentKitError {
            XCTAssertTrue(
                error.message.contains(substring), "message \"\(error.message)\" lacks \"\(substring)\"",
                file: file, line: line)
        } catch {
            XCTFail("expected a RecurrentKitError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }
}
