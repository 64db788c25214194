import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels

/// The vectorised tanh/sigmoid against libm, on every instruction-set level this machine has.
final class ActivationKernelTests: XCTestCase {
    func values(_ n: Int) -> [Float] {
        var g = UInt64(12345)
        var out: [Float] = [
            0, -0.0, 1e-8, -1e-8, 1e-4, 0.3, -0.62, 0.625, 0.63, 1, -1, 5, -9, 20, -20, 88, -88, 100, -100, 1e30, -1e30,
        ]
        while out.count < n {
            g = g &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(g >> 40) / Float(1 << 24)
            out.append((u - 0.5) * 24)
        }
        return Array(out.prefix(n))
    }

    func testVectorPathsMatchLibm() {
        let saved = rk_active_level()
        defer { _ = rk_set_level(saved) }
        for level in 0...rk_detected_level() {
            _ = rk_set_level(level)
            for n in [0, 1, 3, 7, 8, 9, 17, 33, 1000] {
                let x = values(n)
                var t = x, tRef = x, s = x, sRef = x
                rk_tanh_f32(&t, n); rk_tanh_f32_reference(&tRef, n)
                rk_sigmoid_f32(&s, n); rk_sigmoid_f32_reference(&sRef, n)
                for i in 0..<n {
                    XCTAssertEqual(t[i], tRef[i], accuracy: 3e-7, "tanh(\(x[i])) level \(level)")
                    XCTAssertEqual(s[i], sRef[i], accuracy: 3e-7, "sigmoid(\(x[i])) level \(level)")
                    if abs(x[i]) < 0.6 && x[i] != 0 {
                        XCTAssertEqual(t[i] / tRef[i], 1, accuracy: 1e-6, "relative accuracy of tanh(\(x[i])) near 0")
                    }
                }
            }
            var special: [Float] = [.nan, .infinity, -.infinity]
            rk_tanh_f32(&special, 3)
            XCTAssertTrue(special[0].isNaN)
            XCTAssertEqual(special[1], 1); XCTAssertEqual(special[2], -1)
            var sig: [Float] = [.nan, .infinity, -.infinity]
            rk_sigmoid_f32(&sig, 3)
            XCTAssertTrue(sig[0].isNaN)
            XCTAssertEqual(sig[1], 1); XCTAssertEqual(sig[2], 0, accuracy: 1e-37)
        }
    }
}
