import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit
@testable import RecurrentKitText

/// int8 weight storage (one scale per row) for generation and evaluation: the quantization, the matrix-vector kernel
/// (exact integer sums: the same bits on every instruction-set path this machine has), and the decoder.
final class Int8Tests: XCTestCase {
    private var savedLevel: Int32 = 0
    private var savedThreads: Int32 = 1
    override func setUp() { super.setUp(); savedLevel = rk_active_level(); savedThreads = rk_threads() }
    override func tearDown() { rk_set_level(savedLevel); rk_set_threads(savedThreads); super.tearDown() }

    func testQuantizationRoundsPerRow() {
        let w: [Float] = [0.5, -1.27, 0.005, 0.015, /* zero row */ 0, 0, 0, 0, /* tie */ 2.54, 0.01, -0.03, 1]
        var q = [Int8](repeating: 9, count: 12), s = [Float](repeating: 9, count: 3),
            sums = [Int32](repeating: 9, count: 3)
        XCTAssertEqual(rk_quantize_i8_rows(w, &q, &s, &sums, 3, 4), 0)
        XCTAssertEqual(s[0], Float(1.27) / 127)
        XCTAssertEqual(Array(q[0..<4]), [50, -127, 0, 2])  // 0.005 / 0.01 = 0.5 -> 0 and 1.5 -> 2: ties to even
        XCTAssertEqual(s[1], 0)
        XCTAssertEqual(Array(q[4..<8]), [0, 0, 0, 0])
        XCTAssertEqual(q[8], 127)
        XCTAssertEqual(sums, [50 - 127 + 0 + 2, 0, (0..<4).reduce(Int32(0)) { $0 + Int32(q[8 + $1]) }])
        for r in 0..<3 {
            for k in 0..<4 {
                XCTAssertLessThanOrEqual(abs(Float(q[r * 4 + k]) * s[r] - w[r * 4 + k]), s[r] / 2 * 1.0001)
            }
        }
        for bad in [Float.nan, .infinity, -.infinity] {
            XCTAssertEqual(rk_quantize_i8_rows([1, bad], &q, &s, &sums, 1, 2), -1)
        }
    }

    /// The kernel's documented arithmetic, step by step in Swift: x to 8 bits with one scale, exact integer sums.
    static func replica(
        rows: Int, cols: Int, w: [Int8], ldw: Int, scales: [Float], sums: [Int32], x: [Float], beta: Float,
        y: [Float]
    ) -> [Float] {
        let m = x.map { abs($0) }.max() ?? 0, sx = m / 127
        let xq = x.map { sx == 0 ? 0 : Int64(max(-127, min(127, ($0 / sx).rounded(.toNearestOrEven)))) }
        return (0..<rows).map { r in
            var total: Int64 = 0
            for k in 0..<cols { total += Int64(w[r * ldw + k]) * xq[k] }
            let v = (scales[r] * sx) * Float(total)
            return beta == 0 ? v : v + beta * y[r]
        }
    }

    func testMatrixVectorKernelIsExactAndTheSameOnEveryLevel() {
        var g = SeededGenerator(seed: 5)
        for (rows, cols) in [1, 3, 4, 5, 17, 33, 64].flatMap({ r in
            [1, 3, 8, 17, 33, 64, 100, 129, 300].map { (r, $0) }
        }) {
            let ldw = cols + 3
            let weights = (0..<(rows * ldw)).map { _ in Int8(g.nextInt(below: 255) - 127) }
            let sums = (0..<rows).map { r in (0..<cols).reduce(Int32(0)) { $0 + Int32(weights[r * ldw + $1]) } }
            let scales = (0..<rows).map { _ in Float(g.uniform(0.001, 0.1)) }
            let x = (0..<cols).map { _ in Float(g.normal()) }
            let start = (0..<rows).map { _ in Float(g.normal()) }
            for beta: Float in [0, 0.5, 1] {
                let expected = Self.replica(
                    rows: rows, cols: cols, w: weights, ldw: ldw, scales: scales, sums: sums, x: x, beta: beta, y: start
                )
                for level in 0...rk_detected_level() {
                    rk_set_level(level)
                    for threads: Int32 in [1, 2] {
                        rk_set_threads(threads)
                        var y = beta == 0 ? [Float](repeating: .nan, count: rows) : start
                        rk_gemv_i8(rows, cols, weights, ldw, scales, sums, x, beta, &y)
                        XCTAssertEqual(y, expected, "level \(level) threads \(threads) \(rows)x\(cols) beta \(beta)")
                    }
                }
                // Close to the unquantized-x product: x's rounding is at most sx / 2 per element.
                let sx = (x.map { abs($0) }.max() ?? 0) / 127
                for r in 0..<rows {
                    var exact = beta == 0 ? 0 : Double(beta) * Double(start[r]), bound = 1e-5
                    for k in 0..<cols {
                        exact += Double(scales[r]) * Double(weights[r * ldw + k]) * Double(x[k])
                        bound += Double(scales[r]) * abs(Double(weights[r * ldw + k])) * Double(sx) / 2
                    }
                    XCTAssertEqual(Double(expected[r]), exact, accuracy: bound * 1.01, "\(rows)x\(cols) row \(r)")
                }
            }
        }
        // Large enough for the 2-thread split, every row's bits kept; a non-finite x gives NaN rows.
        let rows = 300, cols = 512
        let w = (0..<(rows * cols)).map { _ in Int8(g.nextInt(below: 255) - 127) }
        let sums = (0..<rows).map { r in (0..<cols).reduce(Int32(0)) { $0 + Int32(w[r * cols + $1]) } }
        let scales = (0..<rows).map { _ in Float(g.uniform(0.001, 0.1)) }
        var x = (0..<cols).map { _ in Float(g.normal()) }
        var one = [Float](repeating: 0, count: rows), two = one
        rk_set_threads(1); rk_gemv_i8(rows, cols, w, cols, scales, sums, x, 0, &one)
        rk_set_threads(2); rk_gemv_i8(rows, cols, w, cols, scales, sums, x, 0, &two)
        XCTAssertEqual(one, two)
        XCTAssertEqual(
            one,
            Self.replica(rows: rows, cols: cols, w: w, ldw: cols, scales: scales, sums: sums, x: x, beta: 0, y: one))
        x[7] = .nan
        rk_gemv_i8(rows, cols, w, cols, scales, sums, x, 0, &one)
        XCTAssertTrue(one.allSatisfy { $0.isNaN })
    }

    func model(_ cell: CellKind, embedding: Int?, layers: Int = 2) throws -> LanguageModel<Float> {
        var g = SeededGenerator(seed: 12)
        return try LanguageModel<Float>(
            LanguageModelConfiguration(
                vocabularySize: 11, cell: cell, hiddenSize: 17, numLayers: layers,
                embeddingSize: embedding), generator: &g)
    }

    /// The decoder wires each matrix's scales and sums: a one-hot tanh RNN token by token against the kernel's
    /// replica and the documented step (layer 0's input is the Float table row: W_ih's column + b_ih, exact).
    func testDecoderStepMatchesTheReplica() throws {
        let m = try model(.rnnTanh, embedding: nil, layers: 1)
        let session = try CompactGenerationSession(model: m, format: .int8)
        func quantized(_ name: String) throws -> (q: [Int8], s: [Float], sums: [Int32], rows: Int, cols: Int) {
            let t = try m.parameters.tensor(name)
            let rows = t.shape[0], cols = t.shape[1], values = t.scalars
            var q = [Int8](repeating: 0, count: rows * cols), s = [Float](repeating: 0, count: rows),
                sums = [Int32](repeating: 0, count: rows)
            XCTAssertEqual(rk_quantize_i8_rows(values, &q, &s, &sums, rows, cols), 0)
            return (q, s, sums, rows, cols)
        }
        let wih = try m.parameters.tensor("rnn.weight_ih_l0").scalars  // (17, 11)
        let whh = try quantized("rnn.weight_hh_l0"), head = try quantized("output.weight")
        let bih = try m.parameters.tensor("rnn.bias_ih_l0").scalars,
            bhh = try m.parameters.tensor("rnn.bias_hh_l0").scalars
        let bout = try m.parameters.tensor("output.bias").scalars
        var h = [Float](repeating: 0, count: 17), worst: Float = 0
        for (i, token) in [3, 1, 4, 1, 5, 9, 2, 6, 5, 3].enumerated() {
            let row = (0..<17).map { wih[$0 * 11 + token] }
            let pre = zip(row, bih).map { $0 + $1 }
            let recurrent = Self.replica(
                rows: 17, cols: 17, w: whh.q, ldw: 17, scales: whh.s, sums: whh.sums, x: h, beta: 1,
                y: zip(pre, bhh).map { $0 + $1 })
            h = recurrent.map { Float(Foundation.tanh(Double($0))) }
            let logits = zip(
                Self.replica(
                    rows: 11, cols: 17, w: head.q, ldw: 17, scales: head.s, sums: head.sums, x: h, beta: 0, y: h), bout
            ).map { $0 + $1 }
            let got = Array(UnsafeBufferPointer(start: try session.logits(after: [token], reset: i == 0), count: 11))
            worst = max(worst, zip(logits, got).map { abs($0 - $1) / max(1, abs($0)) }.max()!)
        }
        XCTAssertLessThan(worst, 1e-5)  // tanh: the cells' vectorised one against libm
    }

    func testInt8GenerationStaysCloseToFloat() throws {
        for cell in [CellKind.gru, .lstm, .rnnTanh] {
            let m = try model(cell, embedding: 5)
            let session = try CompactGenerationSession(model: m, format: .int8)
            let G = cell.gateCount
            let matrices = [(G * 17, 17), (G * 17, 17), (G * 17, 17), (11, 17)]  // W_hh l0, W_ih l1, W_hh l1, head
            // + a Float table row
            XCTAssertEqual(session.weightBytes, matrices.reduce(4 * G * 17) { $0 + $1.0 * $1.1 + 8 * $1.0 })
            var g = SeededGenerator(seed: 14)
            let tokens = (0..<50).map { _ in g.nextInt(below: 11) }
            let worst = try compactLogitDifferences(m, session, warmUp: [0], tokens: tokens).dropFirst().max()!
            XCTAssertGreaterThan(worst, 0, "\(cell): the copies really are int8")
            XCTAssertLessThan(worst, 0.05, "\(cell)")
            let text = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2]
            let float = try Evaluation.meanCrossEntropy(model: m, tokens: TokenList(text), batchSize: 1, numSteps: 100)
            let int8 = try Evaluation.meanCrossEntropy(model: m, tokens: TokenList(text), format: .int8)
            XCTAssertEqual(int8, float, accuracy: 0.01 * float, "\(cell)")
        }
        let m = try model(.lstm, embedding: nil)
        XCTAssertThrowsError(try CompactGenerationSession(model: m, format: .int8).logits(after: [11], reset: true))
        XCTAssertThrowsError(try Evaluation.meanCrossEntropy(model: m, tokens: [0, 11], format: .int8))
        m.parameters.value("rnn.weight_hh_l0")[3] = .nan
        XCTAssertThrowsError(try CompactGenerationSession(model: m, format: .int8)) { error in
            XCTAssertEqual(
                (error as? RecurrentKitError)?.message,
                "the model has weights that are not finite; they cannot be quantized to int8")
        }
    }
}
