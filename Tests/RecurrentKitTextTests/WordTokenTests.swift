import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// d2l 8.2 word tokens on The Time Machine: the figures d2l prints, and words through the vocabulary and checkpoints.
final class WordTokenTests: XCTestCase {
    func testD2LWordVocabularyFigures() throws {
        let text = try loadCorpusText(EmbeddedCorpus.timeMachine.rawValue)
        let lines = TextPreparation.d2lLines(text)
        XCTAssertEqual(lines.count, 3221)
        let vocabulary = Vocabulary.words(fromLines: lines)
        // d2l 8.2: len(vocab) 4580; d2l 8.3: the ten most frequent words (counts from the same Counter).
        XCTAssertEqual(vocabulary.count, 4580)
        XCTAssertEqual(
            Array(vocabulary.tokens[0...10]), ["<unk>", "the", "i", "and", "of", "a", "to", "was", "in", "that", "my"])
        let corpus = try PreparedCorpus.prepare(text: text, mode: .words)
        XCTAssertEqual(corpus.trainTokens.count, 32775)
        XCTAssertTrue(corpus.validationTokens.isEmpty)
        var counts = [Int](repeating: 0, count: vocabulary.count)
        for t in corpus.trainTokens { counts[t] += 1 }
        XCTAssertEqual(Array(counts[1...10]), [2261, 1267, 1245, 1155, 816, 695, 552, 541, 443, 440])
        XCTAssertEqual(counts[0], 0)
        // d2l's min_freq: rarer words leave the vocabulary and encode as <unk>.
        let frequent = try PreparedCorpus.prepare(text: text, mode: .words, minimumFrequency: 5)
        XCTAssertEqual(frequent.vocabulary.count, 825)
        XCTAssertEqual(frequent.trainTokens.count, 32775)
        XCTAssertGreaterThan(frequent.trainTokens.filter { $0 == 0 }.count, 0)
    }

    func testWordsEncodeDecodeAndSurviveACheckpoint() throws {
        let vocabulary = Vocabulary.words(fromLines: ["the time machine", "the time traveller"])
        XCTAssertEqual(vocabulary.tokens, ["<unk>", "the", "time", "machine", "traveller"])
        XCTAssertEqual(try vocabulary.encode("the  time\ttraveller spoke"), [1, 2, 4, 0])
        XCTAssertEqual(try vocabulary.decode([1, 2, 4, 0]), "the time traveller <unk>")
        XCTAssertThrowsError(try vocabulary.decode([5]))
        XCTAssertEqual(vocabulary.index(of: "machine"), 3)
        let json = try JSONEncoder().encode(vocabulary)
        XCTAssertEqual(try JSONDecoder().decode(Vocabulary.self, from: json), vocabulary)
        for bad in [["the"], ["<unk>", "a b"], ["<unk>", ""], ["<unk>", "a", "a"]] {
            XCTAssertThrowsError(try Vocabulary(tokens: bad, mode: .words), "\(bad)")
        }
        var g = SeededGenerator(seed: 3)
        let model = try LanguageModel<Float>(.init(vocabularySize: 5, cell: .gru, hiddenSize: 4), generator: &g)
        let loaded = try Checkpoint.parse(try Checkpoint(model: model, vocabulary: vocabulary).serialized())
        XCTAssertEqual(loaded.vocabulary, vocabulary)
        XCTAssertEqual(loaded.vocabulary.mode, .words)
    }

    /// A minimum frequency that maps every word to <unk> is refused naming it and the most frequent word's count, not
    /// as a text without letters (issue #30; found by Scripts/fuzz); a text without letters keeps its own message.
    func testAMinimumFrequencyAboveEveryWordIsNamed() throws {
        let text = "the time traveller\nthe time machine\nthe end\n"
        XCTAssertThrowsError(try PreparedCorpus.prepare(text: text, mode: .words, minimumFrequency: 4)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("minimumFrequency 4"), message)
            XCTAssertTrue(message.contains("\"the\", 3 times"), message)
            XCTAssertTrue(message.contains("at most 3"), message)
            XCTAssertFalse(message.contains("ASCII letter"), message)
        }
        XCTAssertEqual(try PreparedCorpus.prepare(text: text, mode: .words, minimumFrequency: 3).vocabulary.count, 2)
        XCTAssertThrowsError(try PreparedCorpus.prepare(text: "123 !?\n", mode: .words, minimumFrequency: 4)) {
            XCTAssertTrue("\($0)".contains("no ASCII letter"), "\($0)")
        }
        // A long word is shortened in the message.
        let long = String(repeating: "a", count: 5000)
        XCTAssertThrowsError(try PreparedCorpus.prepare(text: long, mode: .words, minimumFrequency: 2)) {
            XCTAssertTrue("\($0)".contains("\"\(String(repeating: "a", count: 40))...\", 1 times"), "\($0)")
        }
    }
}
