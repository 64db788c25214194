import XCTest
import _RecurrentKitKernels

/// Runs `body(level, threads)` at every instruction-set level this CPU has and each of `threads`, then restores the
/// level and thread count it found: the loop of the kernel tests that compare every setting bit for bit.
func forEachKernelSetting(
    threads: [Int32] = [1, 2], _ body: (_ level: Int32, _ threads: Int32) throws -> Void
) rethrows {
    let savedLevel = rk_active_level(), savedThreads = rk_threads()
    defer { _ = rk_set_level(savedLevel); rk_set_threads(savedThreads) }
    for level in 0...rk_detected_level() {
        _ = rk_set_level(level)
        for count in threads {
            rk_set_threads(count)
            try body(level, count)
        }
    }
}

/// n deterministic Floats in (-scale/2, scale/2) from a 64-bit LCG seeded with `seed`, with a value of `special`
/// (cycled by index) in place of about one in `specialEvery`.
func kernelTestValues(_ n: Int, seed: UInt64, scale: Float, special: [Float] = [], specialEvery: UInt64 = 23) -> [Float]
{
    var g = seed
    return (0..<n).map { i in
        g = g &* 6364136223846793005 &+ 1442695040888963407
        if !special.isEmpty && (g >> 33) % specialEvery == 0 { return special[i % special.count] }
        return (Float(g >> 40) / Float(1 << 24) - 0.5) * scale
    }
}

/// n values for the cell-row kernel tests: `kernelTestValues` in (-3, 3) with, about one in 23, a signed zero, a
/// subnormal, an infinity, NaN, ±1, 0.5 or ±3e38 (the values where a reordered or fused operation shows).
func cellRowTestValues(_ n: Int, seed: UInt64) -> [Float] {
    let special: [Float] = [
        0, -0.0, Float(bitPattern: 0x0001_1C3A), -Float(bitPattern: 0x0000_0F01), .infinity, -.infinity, .nan, 1, -1,
        0.5, 3e38, -3e38,
    ]
    return kernelTestValues(n, seed: seed, scale: 6, special: special, specialEvery: 23)
}

/// Fails at the first element whose bits differ (any NaN matches any NaN): kernels against the loops they replace.
func assertSameBits(
    _ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    for i in 0..<min(a.count, b.count) where !(a[i].isNaN && b[i].isNaN) && a[i].bitPattern != b[i].bitPattern {
        XCTFail("\(what)[\(i)]: \(a[i]) against \(b[i])", file: file, line: line)
        return
    }
}
