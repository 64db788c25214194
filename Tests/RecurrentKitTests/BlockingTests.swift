import _RecurrentKitKernels
import RecurrentKit
import RecurrentKitTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// GEMM blocking per CPU (issue #29): the analytical model's values for known cache descriptions, and products under
/// the detected blocking and under blockings forced with `rk_set_blocking` (several K blocks, K not a multiple of kc,
/// pre-packed B, every transpose) against the double-precision reference of `KernelTests`, bit-identical at 1, 2 and
/// 3 threads under each blocking.
final class BlockingTests: XCTestCase {
    typealias Problem = KernelTests.Problem
    typealias Case = KernelTests.Case

    private var savedLevel: Int32 = 0, savedThreads: Int32 = 1

    override func setUp() {
        super.setUp()
        (savedLevel, savedThreads) = (rk_active_level(), rk_threads())
    }

    override func tearDown() {
        for level in 0...rk_detected_level() {
            XCTAssertEqual(rk_set_blocking(level, 4, 0, 0, 0), 0)
            XCTAssertEqual(rk_set_blocking(level, 8, 0, 0, 0), 0)
        }
        rk_set_level(savedLevel)
        rk_set_threads(savedThreads)
        super.tearDown()
    }

    // MARK: - The model

    private static func level(_ kib: Int64, _ ways: Int32, sharedBy: Int32) -> rk_cache_level {
        rk_cache_level(bytes: kib * 1024, ways: ways, line: 64, shared_by: sharedBy)
    }

    /// The cache descriptions `blocking.c` documents, and what the model gives for them: level -> (kc, mc, nc) for
    /// float and double.
    static let described: [(name: String, caches: rk_cache_info, expected: [Int32: [[Int32]]])] = [
        (
            "AMD EPYC Zen 4 (this VM)",
            rk_cache_info(
                l1d: level(32, 8, sharedBy: 1), l2: level(1024, 8, sharedBy: 1), l3: level(32768, 16, sharedBy: 2),
                source: 3),
            [2: [[512, 192, 1024], [256, 224, 1024]], 1: [[512, 222, 1024], [256, 240, 1024]]]
        ),
        (
            "Intel Ice Lake server",
            rk_cache_info(
                l1d: level(48, 12, sharedBy: 2), l2: level(1280, 20, sharedBy: 2),
                l3: level(49152, 12, sharedBy: 64), source: 1),
            [2: [[512, 256, 384], [256, 256, 384]], 1: [[512, 252, 384], [256, 252, 384]]]
        ),
        (
            "AMD Zen 5",
            rk_cache_info(
                l1d: level(48, 12, sharedBy: 2), l2: level(1024, 16, sharedBy: 2),
                l3: level(32768, 16, sharedBy: 16), source: 1),
            [2: [[512, 192, 1024], [256, 224, 1024]], 1: [[512, 222, 1024], [256, 240, 1024]]]
        ),
        (
            "Intel Skylake client",
            rk_cache_info(
                l1d: level(32, 8, sharedBy: 2), l2: level(256, 4, sharedBy: 2), l3: level(8192, 16, sharedBy: 8),
                source: 1),
            [1: [[128, 222, 2048], [64, 240, 2048]]]
        ),
        (
            "unknown caches",
            rk_cache_info(),
            [
                2: [[512, 128, 1024], [256, 128, 512]], 1: [[512, 120, 1024], [256, 96, 512]],
                0: [[256, 64, 1024], [256, 64, 512]],
            ]
        ),
    ]

    /// The model is a pure function of the cache description and the tile: the documented values.
    func testModelGivesTheDocumentedBlocking() throws {
        // The tiles the levels compile (the model's input beside the caches).
        let tiles: [Int32: [(Int32, Int32)]] = [2: [(8, 32), (8, 16)], 1: [(6, 16), (6, 8)], 0: [(4, 8), (4, 4)]]
        for (name, caches, expected) in Self.described {
            for (level, rows) in expected.sorted(by: { $0.key > $1.key }) {
                guard level <= rk_detected_level() || level == 0 else { continue }
                for (i, bytes) in [Int32(4), 8].enumerated() {
                    let kernel = rk_kernel_blocking(level, bytes)
                    XCTAssertEqual([kernel.mr, kernel.nr], [tiles[level]![i].0, tiles[level]![i].1])
                    var c = caches
                    let b = rk_blocking_model(&c, kernel, bytes)
                    XCTAssertEqual([b.kc, b.mc, b.nc], rows[i], "\(name), level \(level), \(bytes)-byte elements")
                    XCTAssertEqual([b.mr, b.nr], [kernel.mr, kernel.nr])
                    XCTAssertEqual(b.mc % b.mr, 0)
                    XCTAssertEqual(b.nc % b.nr, 0)
                }
            }
        }
        // This machine's blocking is the model applied to its detected caches, at every level.
        var detected = rk_detected_caches()
        for level in 0...rk_detected_level() {
            for bytes: Int32 in [4, 8] {
                let model = rk_blocking_model(&detected, rk_kernel_blocking(level, bytes), bytes)
                let used = rk_blocking(level, bytes)
                XCTAssertEqual(
                    [used.mr, used.nr, used.kc, used.mc, used.nc], [model.mr, model.nr, model.kc, model.mc, model.nc])
            }
        }
        let blocking = Kernels.blocking
        XCTAssertEqual(blocking.level, Kernels.activeLevel)
        XCTAssertTrue(Kernels.Blocking.isDescription(blocking.description), blocking.description)
        print("blocking here: \(blocking) (\(blocking.caches.cpu): \(blocking.caches))")
    }

    /// The hook checks its arguments and restores the model's blocking with zeros.
    func testSetBlockingChecksItsArguments() {
        let level = rk_detected_level(), model = rk_blocking(level, 4)
        let bad: [(Int32, Int32, Int32)] = [
            (4, model.mr, model.nr * 2), (64, model.mr + 1, model.nr * 2), (64, model.mr, model.nr),
        ]
        for (kc, mc, nc) in bad {
            XCTAssertEqual(rk_set_blocking(level, 4, kc, mc, nc), -1, "kc \(kc) mc \(mc) nc \(nc)")
        }
        XCTAssertEqual(rk_set_blocking(level, 2, 64, model.mr, model.nr * 2), -1)
        XCTAssertEqual(rk_set_blocking(level, 4, 64, model.mr * 3, model.nr * 3), 0)
        let forced = rk_blocking(level, 4)
        XCTAssertEqual([forced.kc, forced.mc, forced.nc], [64, model.mr * 3, model.nr * 3])
        XCTAssertEqual(Kernels.blocking(at: Kernels.Level(rawValue: Int(level))!).float.kc, 64)
        XCTAssertEqual(rk_set_blocking(level, 4, 0, 0, 0), 0)
        XCTAssertEqual(rk_blocking(level, 4).kc, model.kc)
        XCTAssertEqual(rk_blocking(level, 4).mc, model.mc)
    }

    // MARK: - Products under each blocking

    /// K above the detected kc (512 float, 256 double here) and not a multiple of it; M above and below mc; each
    /// large enough (>= 1 MFLOP) to be split over threads.
    static let problems: [Problem] = [
        Case(transA: false, transB: false, m: 37, n: 70, k: 1100, alpha: 1, beta: 0, pad: 1),
        Case(transA: true, transB: true, m: 45, n: 66, k: 600, alpha: -0.75, beta: 0.5, pad: 0),
        Case(transA: false, transB: true, m: 40, n: 97, k: 1030, alpha: 0.5, beta: 1, pad: 3),
        Case(transA: true, transB: false, m: 9, n: 300, k: 530, alpha: 1, beta: 0.5, pad: 0),
        Case(transA: false, transB: false, m: 200, n: 40, k: 700, alpha: 1, beta: 1, pad: 2),
        Case(transA: true, transB: true, m: 1, n: 300, k: 700, alpha: 1, beta: 0, pad: 1),
    ].enumerated().map { Problem($1, seed: 4000 + UInt64($0)) }

    /// The detected blocking, then two forced ones at each level (`nil`: the model's).
    private func blockings(level: Int32, bytes: Int32) -> [(kc: Int32, mc: Int32, nc: Int32)?] {
        let tile = rk_kernel_blocking(level, bytes)
        return [nil, (64, tile.mr * 3, tile.nr * 3), (200, tile.mr * 5, tile.nr * 8)]
    }

    /// Runs `gemm` for each problem at every level and blocking and at 1, 2 and 3 threads: checks each result against
    /// the reference, that the thread count changes no bit, and that a forced kc changes the sums of a long product.
    private func check<T: BinaryFloatingPoint>(
        _ label: String, bytes: Int32, epsilon: Double, initial: (Problem) -> [T], gemm: (Problem, inout [T]) -> Void
    ) {
        for level in 0...rk_detected_level() {
            XCTAssertEqual(rk_set_level(level), level)
            var byBlocking: [[[T]]] = []
            for forced in blockings(level: level, bytes: bytes) {
                if let f = forced {
                    XCTAssertEqual(rk_set_blocking(level, bytes, f.kc, f.mc, f.nc), 0)
                    XCTAssertEqual(rk_blocking(level, bytes).kc, f.kc)
                } else {
                    XCTAssertEqual(rk_set_blocking(level, bytes, 0, 0, 0), 0)
                }
                let b = rk_blocking(level, bytes)
                let what = "\(label) level \(level) kc \(b.kc) mc \(b.mc) nc \(b.nc)"
                var results: [[T]] = []
                for p in Self.problems {
                    var first: [T]? = nil
                    for threads: Int32 in [1, 2, 3] {
                        rk_set_threads(threads)
                        var out = initial(p)
                        gemm(p, &out)
                        p.check(out.map { Double($0) }, epsilon: epsilon, label: "\(what) threads \(threads)")
                        if let first {
                            let same = first.withUnsafeBytes { x in
                                out.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
                            }
                            XCTAssertTrue(same, "\(what) \(p.c): threads 1 and \(threads) differ")
                        } else {
                            first = out
                        }
                    }
                    results.append(first!)
                }
                byBlocking.append(results)
            }
            // The first problem (K = 1100, one row per chunk of work) sums in another order with kc 64.
            XCTAssertNotEqual(
                byBlocking[0][0].map { Double($0) }, byBlocking[1][0].map { Double($0) }, "\(label) level \(level)")
            XCTAssertEqual(rk_set_blocking(level, bytes, 0, 0, 0), 0)
        }
    }

    func testSgemmUnderEachBlocking() {
        check("rk_sgemm", bytes: 4, epsilon: 0x1p-23, initial: { $0.c0Float }) { p, out in
            rk_sgemm(
                p.c.transA ? 1 : 0, p.c.transB ? 1 : 0, p.c.m, p.c.n, p.c.k, Float(p.c.alpha), p.aFloat, p.lda,
                p.bFloat, p.ldb, Float(p.c.beta), &out, p.ldc)
        }
    }

    func testDgemmUnderEachBlocking() {
        check("rk_dgemm", bytes: 8, epsilon: 0x1p-52, initial: { $0.c0 }) { p, out in
            rk_dgemm(
                p.c.transA ? 1 : 0, p.c.transB ? 1 : 0, p.c.m, p.c.n, p.c.k, p.c.alpha, p.a, p.lda, p.b, p.ldb,
                p.c.beta, &out, p.ldc)
        }
    }

    /// B packed under the blocking in force (its layout follows kc), at the thread count of the product.
    func testPackedBUnderEachBlocking() {
        check("rk_sgemm_packed", bytes: 4, epsilon: 0x1p-23, initial: { $0.c0Float }) { p, out in
            var packed = [UInt8](repeating: 0, count: rk_sgemm_pack_b_size(p.c.k, p.c.n))
            packed.withUnsafeMutableBytes { buf in
                rk_sgemm_pack_b(p.c.transB ? 1 : 0, p.c.k, p.c.n, p.bFloat, p.ldb, buf.baseAddress)
                rk_sgemm_packed(
                    p.c.transA ? 1 : 0, p.c.m, p.c.n, p.c.k, Float(p.c.alpha), p.aFloat, p.lda, buf.baseAddress,
                    Float(p.c.beta), &out, p.ldc)
            }
        }
        check("rk_dgemm_packed", bytes: 8, epsilon: 0x1p-52, initial: { $0.c0 }) { p, out in
            var packed = [UInt8](repeating: 0, count: rk_dgemm_pack_b_size(p.c.k, p.c.n))
            packed.withUnsafeMutableBytes { buf in
                rk_dgemm_pack_b(p.c.transB ? 1 : 0, p.c.k, p.c.n, p.b, p.ldb, buf.baseAddress)
                rk_dgemm_packed(
                    p.c.transA ? 1 : 0, p.c.m, p.c.n, p.c.k, p.c.alpha, p.a, p.lda, buf.baseAddress, p.c.beta, &out,
                    p.ldc)
            }
        }
    }

    /// A B packed under one blocking stays correct (the slow path) after another kc is forced.
    func testPackedBSurvivesABlockingChange() {
        let level = rk_detected_level(), p = Self.problems[2]
        var packed = [UInt8](repeating: 0, count: rk_sgemm_pack_b_size(p.c.k, p.c.n))
        packed.withUnsafeMutableBytes { rk_sgemm_pack_b(1, p.c.k, p.c.n, p.bFloat, p.ldb, $0.baseAddress) }
        let tile = rk_kernel_blocking(level, 4)
        XCTAssertEqual(rk_set_blocking(level, 4, 64, tile.mr, tile.nr * 2), 0)
        var out = p.c0Float
        packed.withUnsafeBytes {
            rk_sgemm_packed(
                0, p.c.m, p.c.n, p.c.k, Float(p.c.alpha), p.aFloat, p.lda, $0.baseAddress, Float(p.c.beta),
                &out, p.ldc)
        }
        p.check(out.map { Double($0) }, epsilon: 0x1p-23, label: "packed with the model's kc, run with kc 64")
    }
}
