import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit
@testable import RecurrentKitText

/// Every vocabulary a training run can write reads back scalar for scalar through every reader (issue #30, item 1:
/// a raw-mode model trained on text with a U+FEFF saved but never loaded).
final class VocabularyRoundTripTests: XCTestCase {
    /// Ranges of one class of scalars each (surrogates are not scalars and cannot be in a String).
    static let scalarClasses: [(name: String, ranges: [ClosedRange<UInt32>])] = [
        ("ASCII controls", [0x00...0x1F, 0x7F...0x7F]),
        ("printable ASCII", [0x20...0x7E]),
        ("C1 controls, NEL, NBSP", [0x80...0xA0]),
        ("U+FEFF", [0xFEFF...0xFEFF]),
        ("noncharacters", [0xFDD0...0xFDEF] + (0...16).map { UInt32($0) << 16 | 0xFFFE...UInt32($0) << 16 | 0xFFFF }),
        ("combining marks", [0x0300...0x036F, 0x1AB0...0x1AFF, 0x20D0...0x20FF, 0xFE20...0xFE2F, 0x1D165...0x1D169]),
        (
            "separators and spaces",
            [0x2000...0x200A, 0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0x1680...0x1680]
        ),
        (
            "format and joiners",
            [
                0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2064, 0x2066...0x206F, 0xFFF9...0xFFFB, 0xE0001...0xE0001,
                0xE0020...0xE007F,
            ]
        ),
        ("variation selectors", [0xFE00...0xFE0F, 0xE0100...0xE01EF]),
        ("specials and replacement", [0xFFF0...0xFFFD]),
        ("around the surrogates", [0xD780...0xD7FF, 0xE000...0xE07F]),
        ("private use", [0xE000...0xF8FF, 0xF0000...0xFFFFD, 0x100000...0x10FFFD]),
        (
            "BMP letters and symbols",
            [0x00A1...0x07FF, 0x0800...0xD7FF, 0xF900...0xFDCF, 0xFDF0...0xFEFE, 0xFF00...0xFFEF]
        ),
        (
            "astral planes",
            [
                0x10000...0x1FFFF, 0x20000...0x3FFFF, 0x40000...0xDFFFF, 0x1F1E6...0x1F1FF, 0x1F300...0x1FAFF,
                0x10FFF0...0x10FFFF,
            ]
        ),
        ("extremes", [0x0000...0x0000, 0xFFFF...0xFFFF, 0x10000...0x10000, 0x10FFFF...0x10FFFF, 0x1F600...0x1F600]),
    ]

    static func randomScalar(in ranges: [ClosedRange<UInt32>], _ g: inout SeededGenerator) -> Unicode.Scalar {
        while true {
            let range = ranges[Int.random(in: 0..<ranges.count, using: &g)]
            if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &g)) { return scalar }
        }
    }

    /// A text of `count` scalars drawn from every class in turn, beginning with U+FEFF when `bom`.
    static func text(scalars count: Int, bom: Bool, _ g: inout SeededGenerator) -> String {
        var view = String.UnicodeScalarView()
        if bom { view.append("\u{FEFF}") }
        for i in 0..<count {
            let cls = scalarClasses[(i + Int.random(in: 0..<scalarClasses.count, using: &g)) % scalarClasses.count]
            view.append(randomScalar(in: cls.ranges, &g))
        }
        return String(view)
    }

    static func scalars(_ tokens: [String]) -> [[UInt32]] { tokens.map { $0.unicodeScalars.map(\.value) } }

    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "VocabularyRoundTripTests-\(UUID().uuidString)")

    override func setUpWithError() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Saves `vocabulary` with a model through `Checkpoint` and reads it back with every reader: `Checkpoint.parse`,
    /// `Checkpoint.load(from:)` (sample, eval, train --resume / --init-from, export, import --vocabulary-from), the
    /// `Codable` decoding, the raw safetensors metadata, and the ONNX export read back by the importer.
    func assertRoundTrips(
        _ vocabulary: Vocabulary, text: String?, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let expected = Self.scalars(vocabulary.tokens)
        let json = vocabulary.checkpointJSON
        XCTAssertTrue(
            json.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x80 },
            "\(what): stored vocabulary is not ASCII without controls", file: file, line: line)
        var g = SeededGenerator(seed: UInt64(vocabulary.count))
        let model = try LanguageModel<Float>(
            .init(vocabularySize: vocabulary.count, cell: .gru, hiddenSize: 2), generator: &g)
        let checkpoint = try Checkpoint(model: model, vocabulary: vocabulary, training: "{}")
        let bytes = try checkpoint.serialized()
        XCTAssertEqual(
            try SafetensorsFile(bytes: bytes).metadata["vocabulary"], json, "\(what): safetensors metadata", file: file,
            line: line)
        let path = directory.appendingPathComponent("model.safetensors").path
        try checkpoint.save(to: path)
        let decoded = try JSONDecoder().decode(Vocabulary.self, from: Data(json.utf8))
        let (_, onnxVocabulary) = try ONNX.importLanguageModel(try ONNX.export(model, vocabulary: vocabulary))
        let readers: [(String, Vocabulary?)] = [
            ("Checkpoint.parse", try Checkpoint.parse(bytes).vocabulary),
            ("Checkpoint.load(from:)", try Checkpoint.load(from: path).vocabulary),
            ("JSONDecoder", decoded),
            ("ONNX import", onnxVocabulary),
        ]
        for (reader, read) in readers {
            guard let read else { XCTFail("\(what): \(reader) gave no vocabulary", file: file, line: line); continue }
            XCTAssertEqual(read.mode, vocabulary.mode, "\(what): \(reader)", file: file, line: line)
            XCTAssertEqual(
                Self.scalars(read.tokens), expected, "\(what): \(reader) changed the tokens", file: file, line: line)
            XCTAssertEqual(read, vocabulary, "\(what): \(reader)", file: file, line: line)
            if let text {
                let indices = try read.encode(text)
                XCTAssertEqual(
                    indices, try vocabulary.encode(text), "\(what): \(reader) encodes differently", file: file,
                    line: line)
                if vocabulary.mode == .raw {
                    XCTAssertEqual(
                        Array(try read.decode(indices).unicodeScalars), Array(text.unicodeScalars),
                        "\(what): \(reader) does not decode the text back", file: file, line: line)
                }
            }
        }
    }

    /// Property test: seeded texts over all classes of scalars, U+FEFF at the start of some and inside all; raw, d2l
    /// and word vocabularies built from them survive every writer and reader.
    func testEveryScalarClassRoundTripsThroughEveryReader() throws {
        var g = SeededGenerator(seed: 30)
        var covered = Set<UInt32>()
        for round in 0..<24 {
            var text = Self.text(scalars: 300, bom: round % 2 == 0, &g)
            text.unicodeScalars.insert(
                "\u{FEFF}", at: text.unicodeScalars.index(text.unicodeScalars.startIndex, offsetBy: 1 + round))
            let raw = Vocabulary.raw(from: text)
            covered.formUnion(raw.tokens.flatMap { $0.unicodeScalars.map(\.value) })
            try assertRoundTrips(raw, text: text, "raw round \(round)")
            try assertRoundTrips(Vocabulary.d2l(from: text), text: text, "d2l round \(round)")
            // A vocabulary read from a file need not be sorted: a shuffled raw one, with U+FEFF first.
            var shuffled = raw.tokens.filter { $0 != "\u{FEFF}" }.shuffled(using: &g)
            shuffled.insert("\u{FEFF}", at: 0)
            try assertRoundTrips(
                try Vocabulary(tokens: shuffled, mode: .raw), text: text, "shuffled raw round \(round)")

            // Words: multi-scalar tokens, starting or ending with U+FEFF, lone combining marks, noncharacters.
            var words: [String] = [], seen = Set<String>()
            func add(_ word: String) {
                guard !word.isEmpty, !word.unicodeScalars.contains(where: { $0.properties.isWhitespace }),
                    seen.insert(word).inserted
                else { return }
                words.append(word)
            }
            for _ in 0..<40 {
                let piece = Self.text(scalars: Int.random(in: 1...6, using: &g), bom: Bool.random(using: &g), &g)
                add(String(String.UnicodeScalarView(piece.unicodeScalars.filter { !$0.properties.isWhitespace })))
            }
            for word in [
                "\u{FEFF}", "\u{FEFF}the", "the\u{FEFF}", "\u{0301}", "e\u{0301}", "\u{00E9}", "\u{FFFE}\u{FFFF}",
                "\u{0}x", "\u{10FFFF}",
                "<unk>x", "a\"b\\c/d", "\u{200B}", "\u{1F600}\u{200D}\u{1F600}",
            ] { add(word) }
            let wordVocabulary = try Vocabulary(tokens: [Vocabulary.unknownToken] + words, mode: .words)
            try assertRoundTrips(wordVocabulary, text: words.joined(separator: " "), "words round \(round)")
            let lines = (0..<4).map { _ in (0..<5).map { _ in words.randomElement(using: &g)! }.joined(separator: " ") }
            try assertRoundTrips(
                Vocabulary.words(fromLines: lines), text: lines.joined(separator: " "),
                "words(fromLines:) round \(round)")
        }
        XCTAssertGreaterThan(covered.count, 2000, "the property test should cover a few thousand distinct scalars")
    }

    /// The scalars named in the issue, each alone, at the start and after an escape, in every mode.
    func testNamedScalarsRoundTrip() throws {
        let named: [UInt32] = [
            0xFEFF, 0x0, 0x2028, 0x2029, 0xFFFE, 0xFFFF, 0x0301, 0x200B, 0x00A0, 0x1F600, 0x10FFFF, 0xFDD0, 0xFDEF,
            0x1FFFE, 0x10FFFE, 0xE000, 0xD7FF, 0x7F, 0x85, 0x22, 0x5C, 0x2F,
        ]
        for scalar in named.map({ Unicode.Scalar($0)! }) {
            let name = Vocabulary.describe(scalar)
            for text in [String(scalar), String(scalar) + "a", "\n" + String(scalar), "\"" + String(scalar) + "\\"] {
                try assertRoundTrips(Vocabulary.raw(from: text), text: text, "raw \(name) in \(text.debugDescription)")
                try assertRoundTrips(Vocabulary.d2l(from: text), text: text, "d2l \(name)")
            }
            if !scalar.properties.isWhitespace {
                let words = [String(scalar), String(scalar) + "w", "w" + String(scalar)].filter {
                    $0 != Vocabulary.unknownToken
                }
                try assertRoundTrips(
                    try Vocabulary(tokens: [Vocabulary.unknownToken] + Array(Set(words)).sorted(), mode: .words),
                    text: nil, "words \(name)")
            }
        }
    }

    /// ASCII vocabularies are stored exactly as JSONEncoder stored them, so such checkpoints keep their bytes.
    func testASCIIVocabulariesKeepTheirStoredBytes() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let all = (0..<128).map { String(Unicode.Scalar(UInt8($0))) }
        for vocabulary in [
            try Vocabulary(tokens: all, mode: .raw),
            try Vocabulary(tokens: [Vocabulary.unknownToken] + all.dropFirst(), mode: .d2l),
            try Vocabulary(tokens: ["<unk>", "the", "a/b", "x\"y", "\\"], mode: .words),
        ] {
            XCTAssertEqual(vocabulary.checkpointJSON, String(decoding: try encoder.encode(vocabulary), as: UTF8.self))
        }
        let root = Fixture.directory.appendingPathComponent("legacy-checkpoints")
        for version in ["0.1", "0.2.0"] {
            let path = root.appendingPathComponent(version).appendingPathComponent("interrupted.safetensors").path
            let stored = try SafetensorsFile(contentsOfFile: path).metadata["vocabulary"]
            XCTAssertEqual(try Checkpoint.load(from: path).vocabulary.checkpointJSON, stored, version)
        }
    }

    /// Files written before the fix hold U+FEFF unescaped (where JSONSerialization drops it); they load exactly.
    func testCheckpointsWrittenBeforeTheFixLoad() throws {
        var g = SeededGenerator(seed: 7)
        for (tokens, mode) in [
            (["\u{FEFF}", "\n", "a", "\u{FFFE}"], TextMode.raw), (["<unk>", "\u{FEFF}", "b"], .d2l),
            (["<unk>", "\u{FEFF}the", "the", "\u{FEFF}", "x\u{FEFF}", "\u{FEFF}\u{FEFF}"], .words),
        ] {
            let vocabulary = try Vocabulary(tokens: tokens, mode: mode)
            let model = try LanguageModel<Float>(
                .init(vocabularySize: vocabulary.count, cell: .lstm, hiddenSize: 3), generator: &g)
            var file = try SafetensorsFile(bytes: try Checkpoint(model: model, vocabulary: vocabulary).serialized())
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            // the 0.2 writer
            file.metadata["vocabulary"] = String(decoding: try encoder.encode(vocabulary), as: UTF8.self)
            file.metadata["format"] = "recurrentkit.checkpoint.v2"
            let loaded = try Checkpoint.parse(try file.serialized())
            XCTAssertEqual(Self.scalars(loaded.vocabulary.tokens), Self.scalars(tokens), "\(mode)")
            XCTAssertEqual(loaded.vocabulary.mode, mode)
        }
    }

    /// Word vocabularies built from any lines load: words split at whitespace scalars (a space before a combining mark
    /// is one Character, not a word break), and a word of any length (a run of 1,500 letters in a corpus).
    func testWordVocabulariesFromAnyLinesLoad() throws {
        let built = Vocabulary.words(fromLines: ["a \u{0301}b\tc\u{00A0}d", "\u{FEFF}e  \u{2028}f"])
        XCTAssertEqual(
            Self.scalars(built.tokens), Self.scalars(["<unk>", "a", "\u{0301}b", "c", "d", "\u{FEFF}e", "f"]))
        try assertRoundTrips(built, text: "a \u{0301}b c\u{2029}\u{FEFF}e x", "words with marks")
        XCTAssertEqual(try built.encode("a \u{0301}b c\u{2029}\u{FEFF}e x"), [1, 2, 3, 5, 0])
        let long = String(repeating: "abcdefghij", count: 150)
        let corpus = try PreparedCorpus.prepare(text: "the \(long) the time\n", mode: .words)
        XCTAssertEqual(corpus.vocabulary.tokens, ["<unk>", "the", long, "time"])
        try assertRoundTrips(corpus.vocabulary, text: "the \(long) time", "1,500-letter word")
    }

    /// The reproduction through the library: raw mode on a BOM-prefixed text, checkpoint, load, sample,
    /// resume and export.
    func testByteOrderMarkCorpusTrainsSavesLoadsSamplesResumesAndExports() throws {
        let corpus = directory.appendingPathComponent("bom.txt")
        try Data([0xEF, 0xBB, 0xBF] + Array(String(repeating: "the time traveller ", count: 300).utf8)).write(
            to: corpus)
        var o = TrainingOptions()
        o.corpus = corpus.path
        o.textMode = .raw
        o.maxTokens = nil
        o.hiddenSize = 16
        o.epochs = 1
        o.batchSize = 2
        o.numSteps = 5
        o.sampleEvery = 0
        let trainer = try LanguageModelTrainer(options: o)
        XCTAssertEqual(Self.scalars(trainer.corpus.vocabulary.tokens).last, [0xFEFF])
        XCTAssertEqual(trainer.corpus.vocabulary.count, 11)
        var updates = 0
        let finished = try trainer.train(shouldStop: { updates >= 12 }, afterStep: { _ in updates += 1 })
        XCTAssertFalse(finished)
        let path = directory.appendingPathComponent("model.safetensors").path
        try trainer.checkpoint().save(to: path)

        let loaded = try Checkpoint.load(from: path)  // sample, eval, export, train --resume
        XCTAssertEqual(loaded.vocabulary, trainer.corpus.vocabulary)
        XCTAssertEqual(Self.scalars(loaded.vocabulary.tokens), Self.scalars(trainer.corpus.vocabulary.tokens))
        XCTAssertEqual(Self.scalars([loaded.vocabulary.tokens[10]]), [[0xFEFF]])
        for prefix in ["t", "\u{FEFF}the time"] {
            var generator = SeededGenerator(seed: 1)
            let output = try TextGenerator.generate(
                model: loaded.model, prefix: try loaded.vocabulary.encode(prefix), length: 8,
                decoding: .sample(temperature: 1, topK: nil, topP: nil), generator: &generator)
            let sampled = try loaded.vocabulary.decode(output)
            XCTAssertTrue(sampled.unicodeScalars.starts(with: prefix.unicodeScalars), sampled.debugDescription)
            XCTAssertEqual(sampled.unicodeScalars.count, prefix.unicodeScalars.count + 8)
        }
        let resumed = try LanguageModelTrainer(resumingFrom: loaded)
        XCTAssertEqual(resumed.step, trainer.step)
        let (_, exported) = try ONNX.importLanguageModel(try ONNX.export(loaded.model, vocabulary: loaded.vocabulary))
        XCTAssertEqual(exported.map { Self.scalars($0.tokens) }, Self.scalars(loaded.vocabulary.tokens))
    }
}
