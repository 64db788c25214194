import _RecurrentKitKernels
import RealModule

/// A floating-point type the networks compute in: `Float` for speed, `Double` for proofs
/// (gradient checks and PyTorch float64 fixtures).
public protocol RecurrentScalar: Real, BinaryFloatingPoint, Codable, Sendable, CustomStringConvertible
where RawSignificand: FixedWidthInteger {
    // tanh, exp and log are RealModule's (`Real`), so code importing both packages sees one definition.
    /// Row-major C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C (see `rk_sgemm`); C is not read when beta == 0.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// The safetensors dtype name of this type ("F32", "F64").
    static var safetensorsDType: String { get }
    /// Bytes needed to pre-pack op(B) of shape (k, n) for ``gemmPacked(transA:m:n:k:alpha:a:lda:packedB:beta:c:ldc:)``.
    static func packedSize(k: Int, n: Int) -> Int
    /// Packs op(B) (k, n) once, so many products with the same weight skip the per-call packing.
    static func pack(
        transB: Bool, k: Int, n: Int, b: UnsafePointer<Self>, ldb: Int, into packed: UnsafeMutableRawPointer)
    /// C[m,n] = alpha * op(A) * packedB + beta * C, the contract of
    /// ``gemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``.
    static func gemmPacked(
        transA: Bool, m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
        packedB: UnsafeRawPointer, beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// In place tanh of `count` values (vectorised for Float).
    static func tanh(_ x: UnsafeMutablePointer<Self>, count: Int)
    /// In place logistic sigmoid of `count` values (vectorised for Float).
    static func sigmoid(_ x: UnsafeMutablePointer<Self>, count: Int)
}

extension Float: RecurrentScalar {
    /// Single-precision GEMM through the C kernels (AVX-512, AVX2+FMA or portable, chosen at run time).
    @inlinable public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        rk_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    /// "F32".
    public static var safetensorsDType: String { "F32" }
    /// rk_sgemm_pack_b_size.
    @inlinable public static func packedSize(k: Int, n: Int) -> Int { rk_sgemm_pack_b_size(k, n) }
    /// rk_sgemm_pack_b.
    @inlinable public static func pack(
        transB: Bool, k: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, into packed: UnsafeMutableRawPointer
    ) {
        rk_sgemm_pack_b(transB ? 1 : 0, k, n, b, ldb, packed)
    }
    /// rk_sgemm_packed.
    @inlinable public static func gemmPacked(
        transA: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        packedB: UnsafeRawPointer, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        rk_sgemm_packed(transA ? 1 : 0, m, n, k, alpha, a, lda, packedB, beta, c, ldc)
    }
    /// Vectorised tanh (AVX2+FMA when available, libm otherwise).
    @inlinable public static func tanh(_ x: UnsafeMutablePointer<Float>, count: Int) { rk_tanh_f32(x, count) }
    /// Vectorised sigmoid (AVX2+FMA when available, libm otherwise).
    @inlinable public static func sigmoid(_ x: UnsafeMutablePointer<Float>, count: Int) { rk_sigmoid_f32(x, count) }
}

extension Double: RecurrentScalar {
    /// Double-precision GEMM through the C kernels.
    @inlinable public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        rk_dgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    /// "F64".
    public static var safetensorsDType: String { "F64" }
    /// rk_dgemm_pack_b_size.
    public static func packedSize(k: Int, n: Int) -> Int { rk_dgemm_pack_b_size(k, n) }
    /// rk_dgemm_pack_b.
    public static func pack(
        transB: Bool, k: Int, n: Int, b: UnsafePointer<Double>, ldb: Int, into packed: UnsafeMutableRawPointer
    ) {
        rk_dgemm_pack_b(transB ? 1 : 0, k, n, b, ldb, packed)
    }
    /// rk_dgemm_packed.
    public static func gemmPacked(
        transA: Bool, m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
        packedB: UnsafeRawPointer, beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        rk_dgemm_packed(transA ? 1 : 0, m, n, k, alpha, a, lda, packedB, beta, c, ldc)
    }
    /// Element-wise libm tanh (Double stays on the exact scalar path used for proofs).
    public static func tanh(_ x: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { x[i] = rk_tanh(x[i]) }
    }
    /// Element-wise sigmoid.
    public static func sigmoid(_ x: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { x[i] = Double.sigmoid(x[i]) }
    }
}

extension RecurrentScalar {
    /// Logistic sigmoid 1 / (1 + e^-x), computed without overflow for large |x|.
    @inlinable static func sigmoid(_ x: Self) -> Self {
        if x >= 0 { return 1 / (1 + exp(-x)) }
        let e = exp(x)
        return e / (1 + e)
    }
}
