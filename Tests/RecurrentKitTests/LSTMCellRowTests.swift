import XCTest
import _RecurrentKitKernels

/// The Float LSTM step kernels of cell_rows.c against the Swift loops they replace (LSTMCell.swift), bit for bit, on
/// every instruction-set level this machine has: widths around the 8- and 16-lane boundaries, a row range that leaves
/// other rows alone, and values that include signed zeros, subnormals, infinities and NaN.
final class LSTMCellRowTests: XCTestCase {
    func testKernelsMatchTheSwiftLoopsBitForBit() {
        forEachKernelSetting(threads: [1]) { level, _ in
            for H in [1, 5, 8, 15, 16, 17, 33, 40] {
                let B = 3, rows = 1..<3, GH = 4 * H
                let what = "level \(level) H \(H)"
                // Forward rows: activations in place, c = f cPrev + i g, tanhCell = tanh(c), out = o tanhCell.
                var gates = cellRowTestValues(B * GH, seed: UInt64(H)), c = cellRowTestValues(B * H, seed: 7),
                    cPrev = cellRowTestValues(B * H, seed: 8)
                var tc = cellRowTestValues(B * H, seed: 9), out = cellRowTestValues(B * H, seed: 10)
                var gatesRef = gates, cRef = c, tcRef = tc, outRef = out
                rk_lstm_forward_rows_f32(&gates, &c, cPrev, &tc, &out, rows.lowerBound, rows.upperBound, H)
                for b in rows {
                    gatesRef.withUnsafeMutableBufferPointer { g in
                        let gi = g.baseAddress! + b * GH
                        rk_sigmoid_f32(gi, 2 * H); rk_tanh_f32(gi + 2 * H, H); rk_sigmoid_f32(gi + 3 * H, H)
                    }
                    let g0 = b * GH
                    for j in 0..<H {
                        cRef[b * H + j] =
                            gatesRef[g0 + H + j] * cPrev[b * H + j] + gatesRef[g0 + j] * gatesRef[g0 + 2 * H + j]
                    }
                    var row = Array(cRef[(b * H)..<(b * H + H)])
                    rk_tanh_f32(&row, H)
                    for j in 0..<H {
                        tcRef[b * H + j] = row[j]
                        outRef[b * H + j] = gatesRef[g0 + 3 * H + j] * row[j]
                    }
                }
                assertSameBits(gates, gatesRef, "forward gates, \(what)")
                assertSameBits(c, cRef, "forward c, \(what)")
                assertSameBits(tc, tcRef, "forward tanh(c), \(what)")
                assertSameBits(out, outRef, "forward output, \(what)")
                // In place, as generation runs one step (cPrev == c).
                var cInPlace = cPrev, gatesInPlace = cellRowTestValues(B * GH, seed: UInt64(H))
                var gatesCopy = gatesInPlace, cCopy = cPrev
                rk_lstm_forward_rows_f32(&gatesInPlace, &cInPlace, cInPlace, &tc, &out, 0, B, H)
                rk_lstm_forward_rows_f32(&gatesCopy, &cCopy, cPrev, &tc, &out, 0, B, H)
                assertSameBits(cInPlace, cCopy, "forward c in place, \(what)")
                // Backward rows.
                let dh = cellRowTestValues(B * H, seed: 11), dOut = cellRowTestValues(B * H, seed: 12),
                    tanhC = cellRowTestValues(B * H, seed: 13)
                var dc = cellRowTestValues(B * H, seed: 14), dGates = cellRowTestValues(B * GH, seed: 15)
                var dcRef = dc, dGatesRef = dGates
                rk_lstm_backward_rows_f32(
                    gates, &dGates, cPrev, tanhC, dh, &dc, dOut, rows.lowerBound, rows.upperBound, H)
                for b in rows {
                    for j in 0..<H {
                        let g0 = b * GH, r = b * H + j
                        let i = gates[g0 + j], f = gates[g0 + H + j], g = gates[g0 + 2 * H + j]
                        let o = gates[g0 + 3 * H + j], t = tanhC[r]
                        let dhTotal = dh[r] + dOut[r]
                        let dcTotal = dcRef[r] + dhTotal * o * (1 - t * t)
                        dGatesRef[g0 + j] = dcTotal * g * i * (1 - i)
                        dGatesRef[g0 + H + j] = dcTotal * cPrev[r] * f * (1 - f)
                        dGatesRef[g0 + 2 * H + j] = dcTotal * i * (1 - g * g)
                        dGatesRef[g0 + 3 * H + j] = dhTotal * t * o * (1 - o)
                        dcRef[r] = dcTotal * f
                    }
                }
                assertSameBits(dGates, dGatesRef, "backward dGates, \(what)")
                assertSameBits(dc, dcRef, "backward dc, \(what)")
            }
        }
    }

    func testBiasRowAddMatchesAPlainLoop() {
        forEachKernelSetting { level, threads in
            for (rows, n) in [(1, 1), (3, 17), (5, 40), (70, 1024)] {
                var x = cellRowTestValues(rows * n, seed: 21), expected = x
                let row = cellRowTestValues(n, seed: 22)
                rk_add_row_f32(&x, row, rows, n)
                for r in 0..<rows { for j in 0..<n { expected[r * n + j] += row[j] } }
                assertSameBits(x, expected, "level \(level) threads \(threads) rows \(rows) n \(n)")
            }
        }
    }

}
