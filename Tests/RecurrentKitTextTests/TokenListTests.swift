import RecurrentKit
import RecurrentKitText
import XCTest

/// The compact token list: the width its largest value needs, the values it was given, and corpora stored in it.
final class TokenListTests: XCTestCase {
    func testWidthIsTheLargestValuesAndValuesRoundTrip() {
        let cases: [([Int], Int)] = [
            ([], 1), ([0, 1, 255], 1), ([256], 2), ([0, 65_535], 2), ([65_536, 3], 4), ([Int(UInt32.max)], 4),
            ([Int(UInt32.max) + 1], 8), ([-1, 5], 8), ([Int.max, Int.min], 8),
        ]
        for (values, width) in cases {
            let list = TokenList(values)
            XCTAssertEqual(list.bytesPerToken, width, "\(values)")
            XCTAssertEqual(Array(list), values)
            XCTAssertEqual(list.count, values.count)
            XCTAssertEqual(list.description, values.description)
            if let largest = values.max(), values.allSatisfy({ $0 >= 0 }) {
                XCTAssertEqual(TokenList.bytesPerToken(forLargest: largest), width, "\(values)")
            }
        }
        // Equal values are equal lists whatever the width; a literal is a list.
        let literal: TokenList = [1, 2, 3]
        XCTAssertEqual(literal, TokenList([1, 2, 3]))
        XCTAssertNotEqual(literal, TokenList([1, 2]))
        XCTAssertNotEqual(literal, TokenList([1, 2, 300]))
        XCTAssertEqual(Array(TokenList([7, 300, 9]).copy(1..<3)), [300, 9])
        XCTAssertEqual(TokenList([7, 300, 9]).copy(1..<3).bytesPerToken, 2)
    }

    /// The encoder stores what ``Vocabulary/encode(_:)`` returns, in the vocabulary's width: one byte per character
    /// of Tiny Shakespeare (65 entries), two for a vocabulary above 256 entries.
    func testEncodedTokensAreTheIndicesInTheVocabularysWidth() throws {
        let text = String(EmbeddedCorpus.tinyShakespeare.text.prefix(20_000))
        let vocabulary = Vocabulary.raw(from: text)
        let compact = try vocabulary.encodeTokens(text)
        XCTAssertEqual(compact.bytesPerToken, 1)
        XCTAssertEqual(Array(compact), try vocabulary.encode(text))
        // 300 distinct scalars (two-byte indices), with a limit.
        let wide = String(String.UnicodeScalarView((0..<300).map { Unicode.Scalar(0x4E00 + $0)! }))
        let big = Vocabulary.raw(from: wide + wide)
        XCTAssertEqual(big.count, 300)
        let tokens = try big.encodeTokens(wide + wide, maxTokens: 450)
        XCTAssertEqual(tokens.bytesPerToken, 2)
        XCTAssertEqual(Array(tokens), try big.encode(wide + wide, maxTokens: 450))
        XCTAssertEqual(try big.decode(tokens), String((wide + wide).unicodeScalars.prefix(450).map(Character.init)))
        // Raw mode still names a character outside the vocabulary.
        XCTAssertThrowsError(try vocabulary.encodeTokens("abc\u{4E00}"))
    }

    /// A prepared corpus keeps one byte per token, its split is the whole encoding cut in two, and its minibatches
    /// are the ones an `[Int]` copy of the same tokens gives.
    func testPreparedCorpusIsCompactAndBatchesMatchAnArrayOfTheSameTokens() throws {
        let text = String(EmbeddedCorpus.tinyShakespeare.text.prefix(30_000))
        let corpus = try PreparedCorpus.prepare(text: text, mode: .raw)
        XCTAssertEqual(corpus.trainTokens.bytesPerToken, 1)
        XCTAssertEqual(corpus.validationTokens.bytesPerToken, 1)
        XCTAssertEqual(
            Array(corpus.trainTokens) + Array(corpus.validationTokens), try corpus.vocabulary.encode(text))
        for strategy in [SamplingStrategy.sequential, .random] {
            let compact = try MinibatchSchedule(
                tokens: corpus.trainTokens, batchSize: 4, numSteps: 7, strategy: strategy)
            let plain = try MinibatchSchedule(
                tokens: Array(corpus.trainTokens), batchSize: 4, numSteps: 7, strategy: strategy)
            var (g1, g2) = (SeededGenerator(seed: 5), SeededGenerator(seed: 5))
            for _ in 0..<3 { XCTAssertEqual(compact.epoch(using: &g1), plain.epoch(using: &g2), "\(strategy)") }
            // The batch source gathers each batch when asked: the same tokens as the schedule's epoch.
            let source = try TokenStreamBatches<Float>(
                tokens: corpus.trainTokens, batchSize: 4, steps: 7, sampling: strategy,
                generator: SeededGenerator(seed: 9))
            var g = SeededGenerator(seed: 9)
            for epoch in 0..<2 {
                let minibatches = compact.epoch(using: &g)
                XCTAssertEqual(source.batchCount(epoch: epoch), minibatches.count)
                var reused: Batch<SequenceBatch<Float>, [Int]>? = nil
                for (index, minibatch) in minibatches.enumerated() {
                    try source.batch(epoch: epoch, index: index, into: &reused)
                    let batch = try XCTUnwrap(reused)
                    XCTAssertEqual(batch.target, minibatch.targets)
                    XCTAssertEqual(batch.resetsState, minibatch.resetsState)
                    XCTAssertEqual(try source.batch(epoch: epoch, index: index).target, minibatch.targets)
                    let shard = try source.batch(
                        epoch: epoch, index: index, shard: BatchShard(rank: 1, processCount: 2, globalBatch: 4))
                    XCTAssertEqual(
                        shard.target, (0..<7).flatMap { t in minibatch.targets[(t * 4 + 2)..<(t * 4 + 4)] })
                }
            }
        }
    }
}
