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
