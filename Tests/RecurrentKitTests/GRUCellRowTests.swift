import XCTest
import _RecurrentKitKernels

/// The Float GRU step kernels of cell_rows.c against the Swift loops they replace (GRUCell.swift), bit for bit, on
/// every instruction-set level this machine has: widths around the 8- and 16-lane boundaries, a row range that leaves
/// other rows alone, and values that include signed zeros, subnormals, infinities and NaN.
final class GRUCellRowTests: XCTestCase {
    func testForwardKernelMatchesTheSwiftLoopBitForBit() {
        forEachKernelSetting(threads: [1]) { level, _ in
            for H in [1, 5, 8, 15, 16, 17, 24, 33, 40] {
                let B = 3, rows = 1..<3, GH = 3 * H
                let what = "level \(level) H \(H)"
                var gates = cellRowTestValues(B * GH, seed: UInt64(H)), hn = cellRowTestValues(B * H, seed: 7),
                    h = cellRowTestValues(B * H, seed: 8)
                let recurrent = cellRowTestValues(B * GH, seed: 9), hPrev = cellRowTestValues(B * H, seed: 10)
                var gatesRef = gates, hnRef = hn, hRef = h
                rk_gru_forward_rows_f32(&gates, recurrent, &hn, &h, hPrev, rows.lowerBound, rows.upperBound, H)
                // GRUCell.swift's loop: r|z += R; sigmoid; hn = R_n; n += r R_n; tanh; h = (1 - z) n + z hPrev.
                for b in rows {
                    let g0 = b * GH
                    for j in 0..<(2 * H) { gatesRef[g0 + j] += recurrent[g0 + j] }
                    gatesRef.withUnsafeMutableBufferPointer { rk_sigmoid_f32($0.baseAddress! + g0, 2 * H) }
                    for j in 0..<H {
                        hnRef[b * H + j] = recurrent[g0 + 2 * H + j]
                        gatesRef[g0 + 2 * H + j] += gatesRef[g0 + j] * recurrent[g0 + 2 * H + j]
                    }
                    gatesRef.withUnsafeMutableBufferPointer { rk_tanh_f32($0.baseAddress! + g0 + 2 * H, H) }
                    for j in 0..<H {
                        let z = gatesRef[g0 + H + j]
                        hRef[b * H + j] = (1 - z) * gatesRef[g0 + 2 * H + j] + z * hPrev[b * H + j]
                    }
                }
                assertSameBits(gates, gatesRef, "forward gates, \(what)")
                assertSameBits(hn, hnRef, "forward R_n, \(what)")
                assertSameBits(h, hRef, "forward h, \(what)")
            }
        }
    }

    func testBackwardKernelMatchesTheSwiftLoopBitForBit() {
        forEachKernelSetting(threads: [1]) { level, _ in
            for H in [1, 5, 8, 15, 16, 17, 24, 33, 40] {
                let B = 3, rows = 1..<3, GH = 3 * H
                let what = "level \(level) H \(H)"
                let gates = cellRowTestValues(B * GH, seed: UInt64(H) + 100), hPrev = cellRowTestValues(B * H, seed: 11)
                let hn = cellRowTestValues(B * H, seed: 12), dOut = cellRowTestValues(B * H, seed: 13)
                var dP = cellRowTestValues(B * GH, seed: 14), dR = cellRowTestValues(B * GH, seed: 15)
                var dh = cellRowTestValues(B * H, seed: 16), dhNext = cellRowTestValues(B * H, seed: 17)
                var dPRef = dP, dRRef = dR, dhRef = dh, dhNextRef = dhNext
                rk_gru_backward_rows_f32(
                    gates, hPrev, hn, dOut, &dP, &dR, &dh, &dhNext, rows.lowerBound, rows.upperBound, H)
                for b in rows {
                    for j in 0..<H {
                        let g0 = b * GH, i = b * H + j
                        let r = gates[g0 + j], z = gates[g0 + H + j], n = gates[g0 + 2 * H + j]
                        let dhTotal = dhRef[i] + dOut[i]
                        let dnPre = dhTotal * (1 - z) * (1 - n * n)
                        let dzPre = dhTotal * (hPrev[i] - n) * z * (1 - z)
                        let drPre = dnPre * hn[i] * r * (1 - r)
                        dPRef[g0 + j] = drPre; dPRef[g0 + H + j] = dzPre; dPRef[g0 + 2 * H + j] = dnPre
                        dRRef[g0 + j] = drPre; dRRef[g0 + H + j] = dzPre; dRRef[g0 + 2 * H + j] = dnPre * r
                        dhRef[i] = dhTotal * z
                        dhNextRef[i] = dhTotal * z
                    }
                }
                assertSameBits(dP, dPRef, "backward dP, \(what)")
                assertSameBits(dR, dRRef, "backward dR, \(what)")
                assertSameBits(dh, dhRef, "backward dh, \(what)")
                assertSameBits(dhNext, dhNextRef, "backward dhNext, \(what)")
            }
        }
    }
}
