import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit
@testable import RecurrentKitText

/// bfloat16 weight storage for generation: the conversions, the matrix-vector kernel on every instruction-set
/// path this machine has, and the generation session against the Float path.
final class BFloat16Tests: XCTestCase {
    private var savedLevel: Int32 = 0
    private var savedThreads: Int32 = 1
    override func setUp() { super.setUp(); savedLevel = rk_active_level(); savedThreads = rk_threads() }
    override func tearDown() { rk_set_level(savedLevel); rk_set_threads(savedThreads); super.tearDown() }

    func bf16(_ x: Float) -> UInt16 { var out: UInt16 = 0; var v = x; rk_f32_to_bf16(&v, &out, 1); return out }
    func widen(_ b: UInt16) -> Float { var out: Float = 0; var v = b; rk_bf16_to_f32(&v, &out, 1); return out }

    func testConversionsRoundToNearestEven() {
        XCTAssertEqual(bf16(Float(bitPattern: 0x3F80_8000)), 0x3F80)  // tie, even below
        XCTAssertEqual(bf16(Float(bitPattern: 0x3F81_8000)), 0x3F82)  // tie, even above
        XCTAssertEqual(bf16(Float(bitPattern: 0x3F80_8001)), 0x3F81)  // just above the tie
        XCTAssertEqual(bf16(Float(bitPattern: 0x3F80_7FFF)), 0x3F80)  // just below
        XCTAssertEqual(bf16(.infinity), 0x7F80)
        XCTAssertEqual(bf16(-.infinity), 0xFF80)
        XCTAssertEqual(bf16(3.4e38), 0x7F80)  // rounds past the largest bf16
        XCTAssertEqual(bf16(-0.0), 0x8000)
        XCTAssertTrue(widen(bf16(.nan)).isNaN)
        // a signalling NaN whose payload sits in the low half
        XCTAssertTrue(widen(bf16(Float(bitPattern: 0x7F80_0001))).isNaN)
        for pattern in 0...UInt16.max {
            let value = widen(pattern)
            XCTAssertEqual(value.bitPattern, UInt32(pattern) << 16)
            if !value.isNaN { XCTAssertEqual(bf16(value), pattern) }
        }
    }

    func testMatrixVectorKernelOnEveryLevel() {
        var g = SeededGenerator(seed: 4)
        for level in 0...rk_detected_level() {
            rk_set_level(level)
            for (rows, cols) in [1, 3, 4, 5, 17, 33, 64].flatMap({ r in [1, 3, 8, 17, 33, 100].map { (r, $0) } }) {
                let ldw = cols + 3
                let weights = (0..<(rows * ldw)).map { _ in bf16(Float(g.normal())) }
                let x = (0..<cols).map { _ in Float(g.normal()) }
                let start = (0..<rows).map { _ in Float(g.normal()) }
                for beta: Float in [0, 0.5, 1] {
                    var y = beta == 0 ? [Float](repeating: .nan, count: rows) : start
                    rk_set_threads(1)
                    rk_gemv_bf16(rows, cols, weights, ldw, x, beta, &y)
                    for r in 0..<rows {
                        var exact = beta == 0 ? 0 : Double(beta) * Double(start[r]), magnitude = abs(exact)
                        for k in 0..<cols {
                            let term = Double(widen(weights[r * ldw + k])) * Double(x[k])
                            exact += term; magnitude += abs(term)
                        }
                        XCTAssertEqual(
                            Double(y[r]), exact, accuracy: 1e-6 * (magnitude + 1),
                            "level \(level) \(rows)x\(cols) beta \(beta) row \(r)")
                        // A row alone gives the same bits as the row inside the block.
                        var alone: [Float] = [beta == 0 ? .nan : start[r]]
                        weights.withUnsafeBufferPointer { w in
                            rk_gemv_bf16(1, cols, w.baseAddress! + r * ldw, ldw, x, beta, &alone)
                        }
                        XCTAssertEqual(alone[0], y[r], "level \(level) \(rows)x\(cols) row \(r) alone")
                    }
                    var twoThreads = beta == 0 ? [Float](repeating: .nan, count: rows) : start
                    rk_set_threads(2)
                    rk_gemv_bf16(rows, cols, weights, ldw, x, beta, &twoThreads)
                    XCTAssertEqual(twoThreads, y, "level \(level) \(rows)x\(cols): 2 threads")
                }
            }
        }
        // A large product splits over threads; the bits must not change.
        let rows = 2048, cols = 512
        let weights = (0..<(rows * cols)).map { _ in bf16(Float(g.normal())) },
            x = (0..<cols).map { _ in Float(g.normal()) }
        var one = [Float](repeating: 0, count: rows), two = one
        rk_set_threads(1); rk_gemv_bf16(rows, cols, weights, cols, x, 0, &one)
        rk_set_threads(2); rk_gemv_bf16(rows, cols, weights, cols, x, 0, &two)
        XCTAssertEqual(one, two)
    }

    func testFloatMatrixVectorKernelOnEveryLevel() {
        // rk_gemv_f32 is also the path rk_sgemm takes for M = 1 with op(B) = B^T (generation's products).
        var g = SeededGenerator(seed: 6)
        for level in 0...rk_detected_level() {
            rk_set_level(level)
            for (rows, cols) in [1, 3, 4, 5, 17, 33, 64].flatMap({ r in [1, 3, 8, 17, 33, 100].map { (r, $0) } }) {
                let ldw = cols + 5
                let weights = (0..<(rows * ldw)).map { _ in Float(g.normal()) },
                    x = (0..<cols).map { _ in Float(g.normal()) }
                let start = (0..<rows).map { _ in Float(g.normal()) }
                for (alpha, beta) in [(Float(1), Float(0)), (-0.5, 1), (1, 0.5)] {
                    var y = beta == 0 ? [Float](repeating: .nan, count: rows) : start
                    rk_set_threads(1)
                    rk_gemv_f32(rows, cols, weights, ldw, x, alpha, beta, &y)
                    var viaGemm = beta == 0 ? [Float](repeating: .nan, count: rows) : start
                    rk_sgemm(0, 1, 1, rows, cols, alpha, x, cols, weights, ldw, beta, &viaGemm, rows)
                    XCTAssertEqual(viaGemm, y, "level \(level) \(rows)x\(cols): rk_sgemm with M = 1 is the GEMV")
                    for r in 0..<rows {
                        var sum = 0.0, magnitude = abs(Double(beta) * Double(start[r]))
                        for k in 0..<cols {
                            sum += Double(weights[r * ldw + k]) * Double(x[k]);
                            magnitude += abs(Double(weights[r * ldw + k]) * Double(x[k]))
                        }
                        let exact = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(start[r]))
                        XCTAssertEqual(
                            Double(y[r]), exact, accuracy: 1e-6 * (magnitude + 1),
                            "level \(level) \(rows)x\(cols) row \(r)")
                        var alone: [Float] = [beta == 0 ? .nan : start[r]]
                        weights.withUnsafeBufferPointer { w in
                            rk_gemv_f32(1, cols, w.baseAddress! + r * ldw, ldw, x, alpha, beta, &alone)
                        }
                        XCTAssertEqual(alone[0], y[r], "level \(level) \(rows)x\(cols) row \(r) alone")
                    }
                    var twoThreads = beta == 0 ? [Float](repeating: .nan, count: rows) : start
                    rk_set_threads(2)
                    rk_gemv_f32(rows, cols, weights, ldw, x, alpha, beta, &twoThreads)
                    XCTAssertEqual(twoThreads, y, "level \(level) \(rows)x\(cols): 2 threads")
                }
            }
        }
    }

    func testFloatMatrixVectorWithAlphaZeroReadsNoWeights() {
        let w: [Float] = [.nan, .infinity, 1, 2], x: [Float] = [1, .nan]
        var y: [Float] = [3, 4]
        rk_gemv_f32(2, 2, w, 2, x, 0, 0.5, &y)
        XCTAssertEqual(y, [1.5, 2])
        var fresh: [Float] = [.nan, .nan]
        rk_gemv_f32(2, 2, w, 2, x, 0, 0, &fresh)
        XCTAssertEqual(fresh, [0, 0])
    }

    func model(_ cell: CellKind, embedding: Int?, roundedToBFloat16: Bool) throws -> LanguageModel<Float> {
        var g = SeededGenerator(seed: 12)
        let model = try LanguageModel<Float>(
            LanguageModelConfiguration(
                vocabularySize: 11, cell: cell, hiddenSize: 17, numLayers: 2,
                embeddingSize: embedding), generator: &g)
        if roundedToBFloat16 {
            // Weights that bf16 represents exactly: the session must then compute what the Float path computes.
            for entry in model.parameters.entries where entry.name.contains("weight") {
                let w = model.parameters.value(entry.name)
                var compact = [UInt16](repeating: 0, count: entry.count)
                rk_f32_to_bf16(w, &compact, entry.count)
                rk_bf16_to_f32(compact, w, entry.count)
            }
        }
        return model
    }

    func testSessionMatchesTheFloatPathOnBFloat16Weights() throws {
        var g = SeededGenerator(seed: 13)
        let tokens = (0..<30).map { _ in g.nextInt(below: 11) }
        for cell in [CellKind.rnnTanh, .rnnReLU, .gru, .lstm] {
            for embedding in [nil, 5] as [Int?] {
                let m = try model(cell, embedding: embedding, roundedToBFloat16: true)
                let session = try CompactGenerationSession(model: m, format: .bfloat16)
                // The prefix in one call, then one token at a time (state carried).
                let worst = try compactLogitDifferences(
                    m, session, warmUp: Array(tokens[..<10]), tokens: Array(tokens[10...])
                ).max()!
                XCTAssertLessThan(worst, 2e-6, "\(cell) embedding \(embedding.map(String.init) ?? "none")")
            }
        }
    }

    func testBFloat16GenerationStaysCloseToFloat() throws {
        for cell in [CellKind.gru, .lstm, .rnnTanh] {
            let m = try model(cell, embedding: 5, roundedToBFloat16: false)
            let session = try CompactGenerationSession(model: m, format: .bfloat16)
            // Layer 0 streams one Float row of its input table and its W_hh; layer 1 both matrices; then the head.
            XCTAssertEqual(
                session.weightBytes,
                4 * cell.gateCount * 17 + 2 * (cell.gateCount * 17 * 17 + cell.gateCount * 17 * (17 + 17) + 11 * 17))
            var g = SeededGenerator(seed: 14)
            let tokens = (0..<50).map { _ in g.nextInt(below: 11) }
            let worst = try compactLogitDifferences(m, session, warmUp: [0], tokens: tokens).dropFirst().max()!
            XCTAssertGreaterThan(worst, 0, "\(cell): the copies really are bf16")
            XCTAssertLessThan(worst, 0.02, "\(cell)")
            var g1 = SeededGenerator(seed: 1), g2 = SeededGenerator(seed: 1)
            let a = try TextGenerator.generate(model: m, prefix: [1, 2], length: 20, decoding: .greedy, generator: &g1)
            let b = try TextGenerator.generate(
                model: m, prefix: [1, 2], length: 20, decoding: .greedy, generator: &g2, precision: .bfloat16)
            XCTAssertEqual(a.count, b.count)
        }
        let m = try model(.lstm, embedding: nil, roundedToBFloat16: false)
        XCTAssertThrowsError(try CompactGenerationSession(model: m, format: .bfloat16).logits(after: [11], reset: true))
        XCTAssertThrowsError(try CompactGenerationSession(model: m, format: .bfloat16).logits(after: [], reset: true))
        XCTAssertThrowsError(try Evaluation.meanCrossEntropy(model: m, tokens: [0, 11], format: .bfloat16))
        XCTAssertThrowsError(try Evaluation.meanCrossEntropy(model: m, tokens: [0, -1], format: .bfloat16))
        // A session is a snapshot: changing the model afterwards does not change its logits.
        let session = try CompactGenerationSession(model: m, format: .bfloat16)
        let before = Array(UnsafeBufferPointer(start: try session.logits(after: [1, 2], reset: true), count: 11))
        m.parameters.value("output.bias")[0] += 1
        m.parameters.value("rnn.bias_hh_l0")[0] += 1
        XCTAssertEqual(
            Array(UnsafeBufferPointer(start: try session.logits(after: [1, 2], reset: true), count: 11)), before)
    }
    /// A session made once gives what generating from the model with the same precision gives, every time (its state is
    /// reset per generation), greedy and sampled.
    func testGenerationReusesASession() throws {
        let m = try model(.lstm, embedding: 5, roundedToBFloat16: false)
        for (format, precision) in [(WeightPrecision.bfloat16, WeightPrecision.bfloat16), (.int8, .int8)] {
            let session = try CompactGenerationSession(model: m, format: format)
            for decoding in [TextGenerator.Decoding.greedy, .sample(temperature: 0.9, topK: 4)] {
                var g1 = SeededGenerator(seed: 5), g2 = SeededGenerator(seed: 5), g3 = SeededGenerator(seed: 5)
                let fromModel = try TextGenerator.generate(
                    model: m, prefix: [1, 2, 3], length: 40, decoding: decoding, generator: &g1, precision: precision)
                let first = try TextGenerator.generate(
                    session: session, prefix: [1, 2, 3], length: 40, decoding: decoding, generator: &g2)
                let again = try TextGenerator.generate(
                    session: session, prefix: [1, 2, 3], length: 40, decoding: decoding, generator: &g3)
                XCTAssertEqual(first, fromModel, "\(format) \(decoding)")
                XCTAssertEqual(again, fromModel, "\(format) \(decoding)")
            }
            var g = SeededGenerator(seed: 1)
            XCTAssertThrowsError(
                try TextGenerator.generate(session: session, prefix: [], length: 3, decoding: .greedy, generator: &g))
            XCTAssertThrowsError(
                try TextGenerator.generate(session: session, prefix: [11], length: 3, decoding: .greedy, generator: &g))
        }
    }
}
