import _RecurrentKitKernels
import RecurrentKitTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks the C GEMM kernels (rk_sgemm / rk_dgemm and the pre-packed-B variants) against a
/// naive double-precision reference, at every instruction-set level this CPU supports, with 1
/// and 2 threads, and checks that the thread count never changes a single bit of the result.
final class KernelTests: XCTestCase {
    struct Case: CustomStringConvertible {
        var transA: Bool, transB: Bool
        var m: Int, n: Int, k: Int
        var alpha: Double, beta: Double
        var pad: Int  // extra elements at the end of every row (lda > cols etc.)

        var description: String {
            "tA=\(transA ? 1 : 0) tB=\(transB ? 1 : 0) M=\(m) N=\(n) K=\(k) alpha=\(alpha) beta=\(beta) pad=\(pad)"
        }
    }

    static let sizes = [1, 2, 3, 5, 7, 16, 17, 31, 33, 64, 65, 100]

    /// Every size appears as M, N and K, for all four transpose combinations, with alpha,
    /// beta in {0, 1, 0.5} and padded leading dimensions cycling; plus shapes that cross the
    /// threading threshold (~1 MFLOP), M = 1 products and K = 0.
    /// The problems with their references, built once and shared by the tests.
    static let problems: [Problem] = cases().enumerated().map { Problem($1, seed: UInt64($0) + 1) }

    static func cases() -> [Case] {
        var out: [Case] = []
        let betas = [0.0, 1.0, 0.5]
        var v = 0
        for transA in [false, true] {
            for transB in [false, true] {
                for i in 0..<sizes.count {
                    let a = sizes[i], b = sizes[(i * 5 + 3) % sizes.count], c = sizes[(i * 7 + 1) % sizes.count]
                    for (m, n, k) in [(a, b, c), (b, c, a), (c, a, b)] {
                        out.append(
                            Case(
                                transA: transA, transB: transB, m: m, n: n, k: k,
                                alpha: v % 2 == 0 ? 1 : -0.75, beta: betas[v % 3],
                                pad: v % 4 == 1 ? 3 : 0))
                        v += 1
                    }
                }
                for (m, n, k) in [(33, 257, 130), (1, 2051, 260), (100, 100, 100), (70, 65, 520)] {
                    out.append(
                        Case(
                            transA: transA, transB: transB, m: m, n: n, k: k,
                            alpha: 0.5, beta: betas[v % 3], pad: v % 2))
                    v += 1
                }
                for beta in betas {
                    out.append(
                        Case(
                            transA: transA, transB: transB, m: 3, n: 5, k: 0,
                            alpha: 1.5, beta: beta, pad: 1))
                }
            }
        }
        return out
    }

    /// Deterministic values in [-1, 1).
    struct Generator {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
    }

    /// Operands and the double-precision reference for one case.
    struct Problem {
        let c: Case
        let lda: Int, ldb: Int, ldc: Int
        let a: [Double], b: [Double], c0: [Double]
        let aFloat: [Float], bFloat: [Float], c0Float: [Float]
        let reference: [Double], scale: [Double]

        /// Values are rounded to Float, so the float and double kernels see exactly the operands
        /// of the (double) reference.
        init(_ c: Case, seed: UInt64) {
            func round(_ x: Double) -> Double { Double(Float(x)) }
            self.c = c
            let aCols = c.transA ? c.m : c.k, aRows = c.transA ? c.k : c.m
            let bCols = c.transB ? c.k : c.n, bRows = c.transB ? c.n : c.k
            lda = aCols + c.pad
            ldb = bCols + c.pad
            ldc = c.n + c.pad
            var g = Generator(state: seed)
            // Sizes are exact ((rows - 1) * ld + cols), so padding after the last row is absent.
            let av = (0..<max(aRows > 0 ? (aRows - 1) * lda + aCols : 0, 1)).map { _ in round(g.next()) }
            let bv = (0..<max(bRows > 0 ? (bRows - 1) * ldb + bCols : 0, 1)).map { _ in round(g.next()) }
            let cv = (0..<((c.m - 1) * ldc + c.n)).map { _ in c.beta == 0 ? .nan : round(g.next()) }
            var ref = [Double](repeating: 0, count: cv.count)
            var scl = [Double](repeating: 0, count: cv.count)
            // Unsafe pointers and plain loops keep the reference fast in debug builds.
            let (m, n, k, lda, ldb, ldc) = (c.m, c.n, c.k, lda, ldb, ldc)
            let (ta, tb, alpha, beta) = (c.transA, c.transB, c.alpha, c.beta)
            av.withUnsafeBufferPointer { a in
                bv.withUnsafeBufferPointer { b in
                    cv.withUnsafeBufferPointer { c0 in
                        ref.withUnsafeMutableBufferPointer { r in
                            scl.withUnsafeMutableBufferPointer { sc in
                                // Unchecked pointers (buffer subscripts are checked in debug).
                                let a = a.baseAddress!, b = b.baseAddress!, c0 = c0.baseAddress!
                                let r = r.baseAddress!, sc = sc.baseAddress!
                                let (aRowStride, aColStride) = ta ? (1, lda) : (lda, 1)
                                let (bRowStride, bColStride) = tb ? (1, ldb) : (ldb, 1)
                                var i = 0
                                while i < m {
                                    var j = 0
                                    while j < n {
                                        var s = 0.0, sa = 0.0, p = 0
                                        var ai = i * aRowStride, bj = j * bColStride
                                        while p < k {
                                            let xy = a[ai] * b[bj]
                                            s += xy
                                            sa += xy < 0 ? -xy : xy
                                            ai += aColStride
                                            bj += bRowStride
                                            p += 1
                                        }
                                        let old = beta == 0 ? 0 : beta * c0[i * ldc + j]
                                        r[i * ldc + j] = alpha * s + old
                                        sc[i * ldc + j] = (alpha < 0 ? -alpha : alpha) * sa + (old < 0 ? -old : old)
                                        j += 1
                                    }
                                    i += 1
                                }
                            }
                        }
                    }
                }
            }
            a = av
            b = bv
            c0 = cv
            aFloat = av.map { Float($0) }
            bFloat = bv.map { Float($0) }
            c0Float = cv.map { Float($0) }
            reference = ref
            scale = scl
        }

        /// Compares a result with the reference (and checks row padding was not written).
        func check(
            _ result: [Double], epsilon: Double, label: String,
            file: StaticString = #filePath, line: UInt = #line
        ) {
            let (m, n, k, ldc, beta) = (c.m, c.n, c.k, ldc, c.beta)
            let failure: String? = result.withUnsafeBufferPointer { res in
                reference.withUnsafeBufferPointer { ref in
                    scale.withUnsafeBufferPointer { sc in
                        var i = 0
                        while i < m {
                            let cols = i + 1 < m ? ldc : n
                            var j = 0
                            while j < cols {
                                let p = i * ldc + j
                                if j >= n {
                                    if beta == 0 && !res[p].isNaN { return "padding written at (\(i), \(j))" }
                                } else {
                                    let d = res[p] - ref[p]
                                    let err = d < 0 ? -d : d
                                    if !(err <= epsilon * Double(k + 4) * sc[p] + 1e-300) {
                                        return "C[\(i),\(j)] = \(res[p]), reference \(ref[p])"
                                    }
                                }
                                j += 1
                            }
                            i += 1
                        }
                        return nil
                    }
                }
            }
            if let failure { XCTFail("\(label) \(c): \(failure)", file: file, line: line) }
        }
    }

    private var savedLevel: Int32 = 0
    private var savedThreads: Int32 = 1

    override func setUp() {
        super.setUp()
        savedLevel = rk_active_level()
        savedThreads = rk_threads()
    }

    override func tearDown() {
        rk_set_level(savedLevel)
        rk_set_threads(savedThreads)
        super.tearDown()
    }

    func testDetectedLevel() {
        let detected = rk_detected_level()
        XCTAssert((0...2).contains(detected))
        XCTAssertEqual(rk_set_level(99), detected)
        XCTAssertEqual(rk_set_level(-1), 0)
        XCTAssertEqual(rk_active_level(), 0)
        rk_set_threads(0)
        XCTAssertEqual(rk_threads(), 1)
    }

    /// Runs `gemm` for every level and thread counts 1 and 2; checks the result against the
    /// reference and that both thread counts give identical bits.
    private func runAllLevels<T: BinaryFloatingPoint>(
        _ problems: [Problem], initial: (Problem) -> [T], epsilon: Double, label: String,
        gemm: (Problem, inout [T]) -> Void
    ) {
        for level in 0...rk_detected_level() {
            XCTAssertEqual(rk_set_level(level), level)
            for p in problems {
                var results: [[T]] = []
                for threads: Int32 in [1, 2] {
                    rk_set_threads(threads)
                    var out = initial(p)
                    gemm(p, &out)
                    p.check(
                        out.map { Double($0) }, epsilon: epsilon,
                        label: "\(label) level \(level) threads \(threads)")
                    results.append(out)
                }
                let same = results[0].withUnsafeBytes { x in
                    results[1].withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
                }
                XCTAssert(same, "\(label) level \(level) \(p.c): 1 and 2 threads differ")
            }
        }
    }

    func testSgemm() {
        runAllLevels(Self.problems, initial: { $0.c0Float }, epsilon: 0x1p-23, label: "rk_sgemm") { p, out in
            rk_sgemm(
                p.c.transA ? 1 : 0, p.c.transB ? 1 : 0, p.c.m, p.c.n, p.c.k, Float(p.c.alpha),
                p.aFloat, p.lda, p.bFloat, p.ldb, Float(p.c.beta), &out, p.ldc)
        }
    }

    func testDgemm() {
        runAllLevels(Self.problems, initial: { $0.c0 }, epsilon: 0x1p-52, label: "rk_dgemm") { p, out in
            rk_dgemm(
                p.c.transA ? 1 : 0, p.c.transB ? 1 : 0, p.c.m, p.c.n, p.c.k, p.c.alpha,
                p.a, p.lda, p.b, p.ldb, p.c.beta, &out, p.ldc)
        }
    }

    /// Pre-packed B: packed at the active level, so each level checks its own layout.
    func testPackedB() {
        // Every third grid case, plus one large enough (K*N >= 1e6) for multi-threaded packing.
        let large = Problem(
            Case(transA: true, transB: true, m: 3, n: 1100, k: 1000, alpha: 1, beta: 0.5, pad: 1),
            seed: 99)
        let problems = Self.problems.enumerated().compactMap { $0 % 3 == 0 ? $1 : nil } + [large]
        runAllLevels(problems, initial: { $0.c0Float }, epsilon: 0x1p-23, label: "rk_sgemm_packed") { p, out in
            var packed = [UInt8](repeating: 0, count: rk_sgemm_pack_b_size(p.c.k, p.c.n))
            packed.withUnsafeMutableBytes { buf in
                rk_sgemm_pack_b(p.c.transB ? 1 : 0, p.c.k, p.c.n, p.bFloat, p.ldb, buf.baseAddress)
                rk_sgemm_packed(
                    p.c.transA ? 1 : 0, p.c.m, p.c.n, p.c.k, Float(p.c.alpha), p.aFloat, p.lda,
                    buf.baseAddress, Float(p.c.beta), &out, p.ldc)
            }
        }
        let doubleProblems = Self.problems.enumerated().compactMap { $0 % 3 == 1 ? $1 : nil }
        runAllLevels(doubleProblems, initial: { $0.c0 }, epsilon: 0x1p-52, label: "rk_dgemm_packed") { p, out in
            var packed = [UInt8](repeating: 0, count: rk_dgemm_pack_b_size(p.c.k, p.c.n))
            packed.withUnsafeMutableBytes { buf in
                rk_dgemm_pack_b(p.c.transB ? 1 : 0, p.c.k, p.c.n, p.b, p.ldb, buf.baseAddress)
                rk_dgemm_packed(
                    p.c.transA ? 1 : 0, p.c.m, p.c.n, p.c.k, p.c.alpha, p.a, p.lda,
                    buf.baseAddress, p.c.beta, &out, p.ldc)
            }
        }
    }

    /// A buffer packed at one level stays usable (slowly) after the level changes.
    func testPackedBAcrossLevels() {
        let detected = rk_detected_level()
        guard detected > 0 else { return }
        let p = Problem(
            Case(transA: false, transB: true, m: 5, n: 37, k: 41, alpha: 1, beta: 0.5, pad: 2),
            seed: 77)
        let a = p.aFloat, b = p.bFloat
        rk_set_level(detected)
        var packed = [UInt8](repeating: 0, count: rk_sgemm_pack_b_size(p.c.k, p.c.n))
        packed.withUnsafeMutableBytes { rk_sgemm_pack_b(1, p.c.k, p.c.n, b, p.ldb, $0.baseAddress) }
        for level in 0..<detected {
            rk_set_level(level)
            var out = p.c0Float
            packed.withUnsafeBytes {
                rk_sgemm_packed(0, p.c.m, p.c.n, p.c.k, 1, a, p.lda, $0.baseAddress, 0.5, &out, p.ldc)
            }
            p.check(out.map { Double($0) }, epsilon: 0x1p-23, label: "packed at \(detected), run at \(level)")
        }
    }
}
