import XCTest
import _RecurrentKitKernels

/// rk_sgemm_tn_pair (a layer's dW_ih and dW_hh from one packing of dGates^T) against the two rk_sgemm calls it stands
/// for, bit for bit: every level this machine has, one and two threads, the few-rows and the blocked loops (M below
/// and above MC), several KC blocks, padded leading dimensions, the fallbacks (M <= 4, N1 not a multiple of the
/// tile's width) and bf16 products.
final class GemmPairTests: XCTestCase {
    func values(_ n: Int, seed: UInt64) -> [Float] { kernelTestValues(n, seed: seed, scale: 1) }

    func testPairEqualsTwoProducts() {
        defer { rk_set_bf16_products(0) }
        // (M, K, N1, N2, padding of every leading dimension)
        let shapes = [
            (40, 600, 64, 48, 0), (300, 1030, 256, 96, 3), (3, 10, 32, 5, 0), (17, 33, 20, 7, 1),
            (64, 70, 32, 32, 0), (1024, 300, 128, 64, 0),
        ]
        forEachKernelSetting { level, threads in
            for bf16: Int32 in [0, 1] {
                rk_set_bf16_products(bf16)
                for (M, K, N1, N2, pad) in shapes {
                    let lda = M + pad, ldb1 = N1 + pad, ldb2 = N2 + pad, ldc1 = N1 + pad, ldc2 = N2 + pad
                    let a = values(K * lda, seed: 1), b1 = values(K * ldb1, seed: 2), b2 = values(K * ldb2, seed: 3)
                    var c1 = values(M * ldc1, seed: 4), c2 = values(M * ldc2, seed: 5)
                    var e1 = c1, e2 = c2
                    rk_sgemm(1, 0, M, N1, K, 1, a, lda, b1, ldb1, 1, &e1, ldc1)
                    rk_sgemm(1, 0, M, N2, K, 1, a, lda, b2, ldb2, 1, &e2, ldc2)
                    rk_sgemm_tn_pair(M, K, a, lda, N1, b1, ldb1, &c1, ldc1, N2, b2, ldb2, &c2, ldc2)
                    let what = "level \(level) threads \(threads) bf16 \(bf16) M \(M) K \(K) N1 \(N1) N2 \(N2)"
                    XCTAssertEqual(c1.map(\.bitPattern), e1.map(\.bitPattern), "C1, \(what)")
                    XCTAssertEqual(c2.map(\.bitPattern), e2.map(\.bitPattern), "C2, \(what)")
                }
            }
        }
    }
}
