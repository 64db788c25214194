import _RecurrentKitKernels

/// A weight matrix packed once for the GEMM micro-kernels (op(B) of shape (k, n)), in huge-page friendly memory.
final class PackedWeight<Scalar: RecurrentScalar> {
    private(set) var buffer: UnsafeMutableRawPointer? = nil
    private var capacity = 0
    private(set) var k = 0, n = 0

    deinit { rk_free(buffer) }

    /// Packs op(B) (k, n) from `b` (transposed when `transB`, row stride `ldb`).
    func pack(transB: Bool, k: Int, n: Int, b: UnsafePointer<Scalar>, ldb: Int) {
        let bytes = Scalar.packedSize(k: k, n: n)
        if bytes > capacity {
            rk_free(buffer)
            buffer = rk_alloc(bytes)
            capacity = bytes
        }
        self.k = k
        self.n = n
        Scalar.pack(transB: transB, k: k, n: n, b: b, ldb: ldb, into: buffer!)
    }

    /// C (m, n) = A (m, k) * packed + beta * C.
    @inline(__always)
    func multiply(
        _ a: UnsafePointer<Scalar>, m: Int, lda: Int, beta: Scalar, into c: UnsafeMutablePointer<Scalar>, ldc: Int
    ) {
        Scalar.gemmPacked(
            transA: false, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, packedB: buffer!, beta: beta, c: c, ldc: ldc)
    }
}
