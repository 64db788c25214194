import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Half-precision conversion by hand (safetensors F16) agrees with the hardware/stdlib `Float16` where it exists.
final class HalfFloatTests: XCTestCase {
    func testEveryHalfDecodesExactly() {
        for h in 0...UInt16.max {
            let x = floatFromHalf(h)
            if x.isNaN { XCTAssertEqual(h & 0x7C00, 0x7C00); continue }
            XCTAssertEqual(halfBits(x), h, "round trip of \(String(h, radix: 16))")
            #if (os(Linux) || arch(arm64)) && !os(Windows)
            XCTAssertEqual(x.bitPattern, Float(Float16(bitPattern: h)).bitPattern, "\(String(h, radix: 16))")
            #endif
        }
    }

    func testRoundingMatchesFloat16() {
        var g = SeededGenerator(seed: 5)
        var values: [Float] = [
            0, -0, 65504, 65519.99, 65520, -65520, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26, 0x1p-14, 0x1.ffcp-15,
            1.0009765625, 1.00048828125, 1.00146484375, .infinity, -.infinity, .greatestFiniteMagnitude,
        ]
        for _ in 0..<200_000 {
            values.append(Float(bitPattern: UInt32(truncatingIfNeeded: g.next())))
            values.append(Float(g.normal() * pow(10, Double(g.nextInt(below: 12)) - 6)))
        }
        for x in values where !x.isNaN {
            let h = halfBits(x)
            #if (os(Linux) || arch(arm64)) && !os(Windows)
            XCTAssertEqual(h, Float16(x).bitPattern, "\(x)")
            #endif
            // Nearest: no other half is closer.
            let y = floatFromHalf(h)
            if y.isFinite && x.isFinite {
                let up = floatFromHalf(h &+ 1), down = floatFromHalf(h &- 1)
                if up.isFinite { XCTAssertLessThanOrEqual(abs(Double(y) - Double(x)), abs(Double(up) - Double(x))) }
                if down.isFinite && h & 0x7FFF != 0 {
                    XCTAssertLessThanOrEqual(abs(Double(y) - Double(x)), abs(Double(down) - Double(x)))
                }
            }
        }
        XCTAssertTrue(floatFromHalf(halfBits(.nan)).isNaN)
    }
}
