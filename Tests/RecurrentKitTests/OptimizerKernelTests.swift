import XCTest
import _RecurrentKitKernels

/// The Float Adam kernel of optimizer_steps.c against the Swift loop of `Adam.step` (replicated here), bit for bit, on
/// every instruction-set level this machine has, one and two threads, each weight-decay mode, sizes around the lane
/// counts and the pool's split, and values that include signed zeros, subnormals and huge gradients.
final class OptimizerKernelTests: XCTestCase {
    func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        let special: [Float] = [0, -0.0, Float(bitPattern: 0x0000_0F01), 1e30, -1e30, 1e-20]
        return kernelTestValues(n, seed: seed, scale: scale, special: special, specialEvery: 29)
    }

    func testAdamKernelMatchesTheSwiftLoopBitForBit() {
        forEachKernelSetting { level, threads in
            for n in [1, 7, 8, 17, 33, 70_001] {
                for mode: Int32 in [0, 1, 2] {
                    let what = "level \(level) threads \(threads) n \(n) decay mode \(mode)"
                    let args = rk_adam_f32_args(
                        b1: Float(1 - 0.9), b2: Float(0.999), oneMinusB2: Float(1 - 0.999),
                        bc2: Float((1 - 0.999 * 0.999).squareRoot()), eps: Float(1e-8),
                        stepSize: Float(3e-3 / (1 - 0.9 * 0.9)), wd: 0.01, decay: Float(1 - 3e-3 * 0.01),
                        decayMode: mode)
                    var p = values(n, seed: 1, scale: 2), m = values(n, seed: 3, scale: 0.1)
                    var v = values(n, seed: 4, scale: 0.01).map { abs($0) }
                    let g = values(n, seed: 2, scale: 4)
                    var pRef = p, mRef = m, vRef = v
                    withUnsafePointer(to: args) { a in rk_adam_f32(&p, g, &m, &v, n, a) }
                    for i in 0..<n {
                        var grad = g[i]
                        if mode == 2 { pRef[i] *= args.decay } else if mode == 1 { grad += args.wd * pRef[i] }
                        var mi = mRef[i], vi = vRef[i]
                        mi += (grad - mi) * args.b1
                        vi = vi * args.b2 + args.oneMinusB2 * grad * grad
                        mRef[i] = mi; vRef[i] = vi
                        let denominator = vi.squareRoot() / args.bc2 + args.eps
                        pRef[i] -= args.stepSize * (mi / denominator)
                    }
                    for (name, a, b) in [("p", p, pRef), ("m", m, mRef), ("v", v, vRef)] {
                        let first = (0..<n).first {
                            a[$0].bitPattern != b[$0].bitPattern && !(a[$0].isNaN && b[$0].isNaN)
                        }
                        XCTAssertNil(first, "\(name)[\(first ?? -1)], \(what)")
                    }
                }
            }
        }
    }
}
