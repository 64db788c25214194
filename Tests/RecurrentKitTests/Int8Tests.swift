import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit
@testable import RecurrentKitText

/// int8 weight storage (one scale per row) for generation and evaluation: the quantization, the matrix-vector kernel
/// on every instruction-set path this machine has, and the decoder against the Float path.
final class Int8Tests: XCTestCase {
    private var savedLevel: Int32 = 0
    private var savedThreads: Int32 = 1
    override func setUp() { super.setUp(); savedLevel = rk_active_level(); savedThreads = rk_threads() }
    override func tearDown() { rk_set_level(savedLevel); rk_set_threads(savedThreads); super.tearDown() }

    func testQuantizationRoundsPerRow() {
        let w: [Float] = [0.5, -1.27, 0.005, 0.015, /* zero row */ 0, 0, 0, 0, /* tie */ 2.54, 0.01, -0.03, 1]
        var q = [Int8](repeating: 9, count: 12), s = [Float](repeating: 9, count: 3)
        XCTAssertEqual(rk_quantize_i8_rows(w, &q, &s, 3, 4), 0)
        XCTAssertEqual(s[0], Float(1.27) / 127)
        XCTAssertEqual(Array(q[0..<4]), [50, -127, 0, 2]) // 0.005 / 0.01 = 0.5 -> 0 and 1.5 -> 2: ties to even
        XCTAssertEqual(s[1], 0)
        XCTAssertEqual(Array(q[4..<8]), [0, 0, 0, 0])
        XCTAssertEqual(q[8], 127)
        for r in 0..<3 { for k in 0..<4 { XCTAssertLessThanOrEqual(abs(Float(q[r * 4 + k]) * s[r] - w[r * 4 + k]), s[r] / 2 * 1.0001) } }
        for bad in [Float.nan, .infinity, -.infinity] {
            XCTAssertEqual(rk_quantize_i8_rows([1, bad], &q, &s, 1, 2), -1)
        }
    }

    func testMatrixVectorKernelOnEveryLevel() {
        var g = SeededGenerator(seed: 5)
        for level in 0...rk_detected_level() {
            rk_set_level(level)
            for (rows, cols) in [1, 3, 4, 5, 17, 33, 64].flatMap({ r in [1, 3, 8, 17, 33, 100].map { (r, $0) } }) {
                let ldw = cols + 3
                let weights = (0..<(rows * ldw)).map { _ in Int8(g.nextInt(below: 255) - 127) }
                let scales = (0..<rows).map { _ in Float(g.uniform(0.001, 0.1)) }
                let x = (0..<cols).map { _ in Float(g.normal()) }
                let start = (0..<rows).map { _ in Float(g.normal()) }
                for beta: Float in [0, 0.5, 1] {
                    var y = beta == 0 ? [Float](repeating: .nan, count: rows) : start
                    rk_set_threads(1)
                    rk_gemv_i8(rows, cols, weights, ldw, scales, x, beta, &y)
                    for r in 0..<rows {
                        var sum = 0.0, magnitude = 0.0
                        for k in 0..<cols {
                            let term = Double(weights[r * ldw + k]) * Double(x[k])
                            sum += term; magnitude += abs(term)
                        }
                        let exact = Double(scales[r]) * sum + (beta == 0 ? 0 : Double(beta) * Double(start[r]))
                        let bound = 1e-6 * (Double(scales[r]) * magnitude + abs(Double(beta) * Double(start[r])) + 1)
                        XCTAssertEqual(Double(y[r]), exact, accuracy: bound, "level \(level) \(rows)x\(cols) beta \(beta) row \(r)")
                        // A row alone gives the same bits as the row inside the block.
                        var alone: [Float] = [beta == 0 ? .nan : start[r]]
                        weights.withUnsafeBufferPointer { w in
                            scales.withUnsafeBufferPointer { s in rk_gemv_i8(1, cols, w.baseAddress! + r * ldw, ldw, s.baseAddress! + r, x, beta, &alone) }
                        }
                        XCTAssertEqual(alone[0], y[r], "level \(level) \(rows)x\(cols) row \(r) alone")
                    }
                    // Two threads split the rows; every row keeps its bits.
                    if rows * cols >= 1 {
                        let big = 64 * 1024 / max(cols, 1) + 16
                        let w2 = (0..<(big * cols)).map { _ in Int8(g.nextInt(below: 255) - 127) }
                        let s2 = (0..<big).map { _ in Float(g.uniform(0.001, 0.1)) }
                        var one = [Float](repeating: 0, count: big), two = one
                        rk_set_threads(1); rk_gemv_i8(big, cols, w2, cols, s2, x, 0, &one)
                        rk_set_threads(2); rk_gemv_i8(big, cols, w2, cols, s2, x, 0, &two)
                        XCTAssertEqual(one, two, "level \(level) cols \(cols): 1 and 2 threads")
                    }
                }
            }
        }
    }

    /// A model whose weight matrices int8 represents exactly in either orientation: every weight k/64 with |k| <= 127,
    /// and the first row and column at 127/64, so each row's scale is exactly 1/64 (W_ih^T rows for one-hot input too).
    func model(_ cell: CellKind, embedding: Int?, exactInInt8: Bool) throws -> LanguageModel<Float> {
        var g = SeededGenerator(seed: 12)
        let model = try LanguageModel<Float>(LanguageModelConfiguration(vocabularySize: 11, cell: cell, hiddenSize: 17, numLayers: 2,
                                                                        embeddingSize: embedding), generator: &g)
        if exactInInt8 {
            for entry in model.parameters.entries where entry.shape.count == 2 && !entry.name.hasPrefix("embedding") {
                let w = model.parameters.value(entry.name), cols = entry.shape[1]
                for i in 0..<entry.count {
                    let onEdge = i < cols || i % cols == 0
                    w[i] = onEdge ? 127 / 64 : Float(g.nextInt(below: 255) - 127) / 64 / 8 // small values keep the cells unsaturated
                    if !onEdge { w[i] = (w[i] * 64).rounded() / 64 }
                }
            }
        }
        return model
    }

    func testSessionMatchesTheFloatPathOnInt8Weights() throws {
        var g = SeededGenerator(seed: 13)
        let tokens = (0..<30).map { _ in g.nextInt(below: 11) }
        for cell in [CellKind.rnnTanh, .rnnReLU, .gru, .lstm] {
            for embedding in [nil, 5] as [Int?] {
                let m = try model(cell, embedding: embedding, exactInInt8: true)
                let session = try CompactGenerationSession(model: m, format: .int8)
                var worst: Float = 0
                let reference = Array(UnsafeBufferPointer(start: try m.generationLogits(Array(tokens[..<10]), reset: true), count: 11))
                let compact = Array(UnsafeBufferPointer(start: try session.logits(after: Array(tokens[..<10]), reset: true), count: 11))
                worst = max(worst, zip(reference, compact).map { abs($0 - $1) / max(1, abs($0)) }.max()!)
                for token in tokens[10...] {
                    let r = Array(UnsafeBufferPointer(start: try m.generationLogits([token], reset: false), count: 11))
                    let c = Array(UnsafeBufferPointer(start: try session.logits(after: [token], reset: false), count: 11))
                    worst = max(worst, zip(r, c).map { abs($0 - $1) / max(1, abs($0)) }.max()!)
                }
                XCTAssertLessThan(worst, 1e-5, "\(cell) embedding \(embedding.map(String.init) ?? "none")")
            }
        }
    }

    func testInt8GenerationStaysCloseToFloat() throws {
        for cell in [CellKind.gru, .lstm, .rnnTanh] {
            let m = try model(cell, embedding: 5, exactInInt8: false)
            let session = try CompactGenerationSession(model: m, format: .int8)
            let G = cell.gateCount
            let matrices = [(G * 17, 5), (G * 17, 17), (G * 17, 17), (G * 17, 17), (11, 17)]
            XCTAssertEqual(session.weightBytes, matrices.reduce(0) { $0 + $1.0 * $1.1 + 4 * $1.0 })
            var g = SeededGenerator(seed: 14)
            var worst: Float = 0
            _ = try m.generationLogits([0], reset: true); _ = try session.logits(after: [0], reset: true)
            for _ in 0..<50 {
                let token = g.nextInt(below: 11)
                let r = Array(UnsafeBufferPointer(start: try m.generationLogits([token], reset: false), count: 11))
                let c = Array(UnsafeBufferPointer(start: try session.logits(after: [token], reset: false), count: 11))
                worst = max(worst, zip(r, c).map { abs($0 - $1) }.max()!)
            }
            XCTAssertGreaterThan(worst, 0, "\(cell): the copies really are int8")
            XCTAssertLessThan(worst, 0.05, "\(cell)")
            let text = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2]
            let float = try Evaluation.meanCrossEntropy(model: m, tokens: text, batchSize: 1, numSteps: 100)
            let int8 = try Evaluation.meanCrossEntropy(model: m, tokens: text, format: .int8)
            XCTAssertEqual(int8, float, accuracy: 0.01 * float, "\(cell)")
        }
        let m = try model(.lstm, embedding: nil, exactInInt8: false)
        XCTAssertThrowsError(try CompactGenerationSession(model: m, format: .int8).logits(after: [11], reset: true))
        XCTAssertThrowsError(try Evaluation.meanCrossEntropy(model: m, tokens: [0, 11], format: .int8))
        m.parameters.value("rnn.weight_hh_l0")[3] = .nan
        XCTAssertThrowsError(try CompactGenerationSession(model: m, format: .int8)) { error in
            XCTAssertEqual((error as? RecurrentKitError)?.message, "the model has weights that are not finite; they cannot be quantized to int8")
        }
    }
}
