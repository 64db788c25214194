import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit

/// The mixed-precision GEMM building block: bf16-rounded operands, f32 sums, on every level this machine has.
final class BFloat16GemmTests: XCTestCase {
    private var savedLevel: Int32 = 0
    private var savedThreads: Int32 = 1
    override func setUp() { super.setUp(); savedLevel = rk_active_level(); savedThreads = rk_threads() }
    override func tearDown() {
        rk_set_level(savedLevel); rk_set_threads(savedThreads); _ = rk_set_bf16_dot(1); super.tearDown()
    }

    /// Every path this machine can run: each level, and at AVX-512 also without AVX512_BF16 (the path of a CPU
    /// that lacks it, such as an Ice Lake Xeon) when this CPU has it. `select` sets the path.
    private var paths: [(name: String, select: () -> Void)] {
        var all: [(name: String, select: () -> Void)] = (0...rk_detected_level()).map { level in
            (
                "level \(level)",
                {
                    rk_set_level(level); _ = rk_set_bf16_dot(1)
                }
            )
        }
        if rk_detected_level() >= 2 {
            all.append(
                (
                    "AVX-512F without AVX512_BF16",
                    {
                        rk_set_level(2); _ = rk_set_bf16_dot(0)
                    }
                ))
        }
        return all
    }

    func bf16(_ x: Float) -> Double {
        var h: UInt16 = 0, v = x, out: Float = 0; rk_f32_to_bf16(&v, &h, 1); rk_bf16_to_f32(&h, &out, 1);
        return Double(out)
    }

    func testAgainstADoubleReferenceOnOddSizes() {
        var g = SeededGenerator(seed: 21)
        for (path, select) in paths {
            select()
            for (M, N, K) in [
                (1, 1, 1), (1, 3, 17), (3, 33, 1), (17, 1, 33), (8, 32, 256), (9, 33, 257), (33, 65, 300),
                (130, 40, 513), (300, 70, 40),
            ] {
                for transA in [Int32(0), 1] {
                    for transB in [Int32(0), 1] {
                        let lda = (transA == 0 ? K : M) + 2, ldb = (transB == 0 ? N : K) + 3, ldc = N + 1
                        let A = (0..<((transA == 0 ? M : K) * lda)).map { _ in Float(g.normal()) }
                        let B = (0..<((transB == 0 ? K : N) * ldb)).map { _ in Float(g.normal()) }
                        let start = (0..<(M * ldc)).map { _ in Float(g.normal()) }
                        for beta: Float in [0, 0.5] {
                            var C = beta == 0 ? [Float](repeating: .nan, count: M * ldc) : start
                            rk_set_threads(1)
                            rk_sgemm_bf16(transA, transB, M, N, K, 0.75, A, lda, B, ldb, beta, &C, ldc)
                            // Two threads, and B packed once: the same bits.
                            var two = beta == 0 ? [Float](repeating: .nan, count: M * ldc) : start
                            rk_set_threads(2)
                            rk_sgemm_bf16(transA, transB, M, N, K, 0.75, A, lda, B, ldb, beta, &two, ldc)
                            func valid(_ x: [Float]) -> [Float] {
                                (0..<M).flatMap { i in x[(i * ldc)..<(i * ldc + N)] }
                            }
                            XCTAssertEqual(valid(two), valid(C), "\(path) \(M)x\(N)x\(K): 2 threads")
                            let packed = UnsafeMutableRawPointer.allocate(
                                byteCount: rk_sgemm_bf16_pack_b_size(K, N), alignment: 64)
                            defer { packed.deallocate() }
                            rk_sgemm_bf16_pack_b(transB, K, N, B, ldb, packed)
                            var viaPacked = beta == 0 ? [Float](repeating: .nan, count: M * ldc) : start
                            rk_sgemm_bf16_packed(transA, M, N, K, 0.75, A, lda, packed, beta, &viaPacked, ldc)
                            XCTAssertEqual(valid(viaPacked), valid(C), "\(path) \(M)x\(N)x\(K): packed B")
                            for i in 0..<M {
                                for j in 0..<N {
                                    var exact = 0.0, magnitude = 0.0
                                    for k in 0..<K {
                                        let a = bf16(transA == 0 ? A[i * lda + k] : A[k * lda + i])
                                        let b = bf16(transB == 0 ? B[k * ldb + j] : B[j * ldb + k])
                                        exact += a * b; magnitude += abs(a * b)
                                    }
                                    exact = 0.75 * exact + (beta == 0 ? 0 : Double(beta) * Double(start[i * ldc + j]))
                                    XCTAssertEqual(
                                        Double(C[i * ldc + j]), exact, accuracy: 2e-6 * (magnitude + 1),
                                        "\(path) \(M)x\(N)x\(K) trans \(transA)\(transB) beta \(beta) (\(i), \(j))"
                                    )
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    /// AVX-512F without AVX512_BF16 sums each pair's even k, then its odd k, into f32 accumulators in the order of the
    /// AVX2+FMA tile: the two give the same bits (so a CPU without AVX512_BF16 trains the same weights at either
    /// level), for every shape, transpose, beta, thread count and a pre-packed B.
    func testAVX512FTileGivesTheBitsOfTheAVX2Tile() throws {
        try XCTSkipIf(rk_detected_level() < 2, "this CPU has no AVX-512F")
        var g = SeededGenerator(seed: 23)
        for (M, N, K) in [
            (1, 1, 1), (3, 33, 2), (8, 32, 511), (9, 65, 513), (64, 100, 1030), (130, 40, 700), (7, 300, 64),
        ] {
            for transA in [Int32(0), 1] {
                for transB in [Int32(0), 1] {
                    let lda = (transA == 0 ? K : M) + 1, ldb = (transB == 0 ? N : K) + 2, ldc = N + 3
                    let A = (0..<((transA == 0 ? M : K) * lda)).map { _ in Float(g.normal()) }
                    let B = (0..<((transB == 0 ? K : N) * ldb)).map { _ in Float(g.normal()) }
                    let start = (0..<(M * ldc)).map { _ in Float(g.normal()) }
                    for beta: Float in [0, 1, 0.5] {
                        func product(level: Int32, dot: Int32, threads: Int32, packed: Bool) -> [Float] {
                            rk_set_level(level); _ = rk_set_bf16_dot(dot); rk_set_threads(threads)
                            var C = start
                            if packed {
                                let buffer = UnsafeMutableRawPointer.allocate(
                                    byteCount: rk_sgemm_bf16_pack_b_size(K, N), alignment: 64)
                                defer { buffer.deallocate() }
                                rk_sgemm_bf16_pack_b(transB, K, N, B, ldb, buffer)
                                rk_sgemm_bf16_packed(transA, M, N, K, 0.75, A, lda, buffer, beta, &C, ldc)
                            } else {
                                rk_sgemm_bf16(transA, transB, M, N, K, 0.75, A, lda, B, ldb, beta, &C, ldc)
                            }
                            return C
                        }
                        let avx2 = product(level: 1, dot: 1, threads: 1, packed: false)
                        for threads: Int32 in [1, 2, 3] {
                            for packed in [false, true] {
                                XCTAssertEqual(
                                    product(level: 2, dot: 0, threads: threads, packed: packed), avx2,
                                    "\(M)x\(N)x\(K) trans \(transA)\(transB) beta \(beta) threads \(threads) "
                                        + "packed \(packed)"
                                )
                            }
                        }
                    }
                }
            }
        }
    }

    /// The vectorised packing (AVX512_BF16) writes the same bits as the scalar one: B's packed panels compared byte for
    /// byte (1 and 2 threads, which split the packing), A's through products with K = 1 and 2, whose sums have one
    /// rounding at most and so agree exactly between vdpbf16ps and the portable tile.
    func testVectorisedPackingWritesTheScalarBits() {
        var g = SeededGenerator(seed: 22)
        for transB in [Int32(0), 1] {
            for (K, N) in [(1, 1), (3, 17), (33, 65), (257, 33), (600, 500)] {
                let ldb = (transB == 0 ? N : K) + 1
                let B = (0..<((transB == 0 ? K : N) * ldb)).map { _ in Float(g.normal()) }
                let size = rk_sgemm_bf16_pack_b_size(K, N)
                func packed(level: Int32, threads: Int32) -> [UInt8] {
                    rk_set_level(level); rk_set_threads(threads)
                    var bytes = [UInt8](repeating: 0, count: size)
                    bytes.withUnsafeMutableBytes { rk_sgemm_bf16_pack_b(transB, K, N, B, ldb, $0.baseAddress!) }
                    return bytes
                }
                let reference = packed(level: 0, threads: 1)
                for level in 0...rk_detected_level() {
                    for threads: Int32 in [1, 2] {
                        XCTAssertEqual(
                            packed(level: level, threads: threads), reference,
                            "B \(K)x\(N) trans \(transB) level \(level) threads \(threads)")
                    }
                }
            }
        }
        for transA in [Int32(0), 1] {
            for K in [1, 2] {
                for M in [1, 9, 17, 130, 300] {
                    let N = 33, lda = (transA == 0 ? K : M) + 1
                    let A = (0..<((transA == 0 ? M : K) * lda)).map { _ in Float(g.normal()) }
                    let B = (0..<(K * N)).map { _ in Float(g.normal()) }
                    func product(level: Int32) -> [Float] {
                        rk_set_level(level); rk_set_threads(1)
                        var C = [Float](repeating: .nan, count: M * N)
                        rk_sgemm_bf16(transA, 0, M, N, K, 1, A, lda, B, N, 0, &C, N)
                        return C
                    }
                    let reference = product(level: 0)
                    for level in 1...max(1, rk_detected_level()) where level <= rk_detected_level() {
                        XCTAssertEqual(product(level: level), reference, "A \(M)x\(K) trans \(transA) level \(level)")
                    }
                }
            }
        }
    }
    /// `rnn bench --peak`'s bf16 probe counts 4 FLOPs per lane per instruction, and reports nothing without
    /// AVX512_BF16.
    func testDotPeakProbeCountsItsOperations() {
        rk_set_level(rk_detected_level())
        XCTAssertEqual(rk_bf16_dot_peak_flops(10), rk_bf16_dot_available() != 0 ? 10 * 12 * 16 * 4 : 0)
        rk_set_level(0)
        XCTAssertEqual(rk_bf16_dot_peak_flops(10), 0)
        XCTAssertNil(Kernels.bf16DotPeak())
    }
}
