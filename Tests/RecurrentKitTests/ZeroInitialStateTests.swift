import RecurrentKit
import XCTest

/// A forward without h0 skips step 0's W_hh h0 and a backward not asked for dL/dh0 skips step 0's dGates W_hh
/// (OneDirectionStack's `startsFromZeroState` and `feedsUnwantedInitialGradient`): the same outputs as an explicit zero
/// state, and bit for bit the same parameter and input gradients as a backward that returns dL/dh0, for every cell,
/// one and two directions, equal and variable lengths, with the packed W_hh (T >= 4) and without.
final class ZeroInitialStateTests: XCTestCase {
    func testSkippedStepZeroProductsChangeNothing() throws {
        let B = 3, I = 4, H = 5, L = 2
        for cell in CellKind.allCases {
            for bidirectional in [false, true] {
                for (T, lengths) in [(2, nil), (6, nil), (6, [6, 2, 4])] as [(Int, [Int]?)] {
                    let what = "\(cell) bidirectional \(bidirectional) T \(T) lengths \(lengths ?? [])"
                    var g = SeededGenerator(seed: 77)
                    let config = RecurrentConfiguration(
                        cell: cell, inputSize: I, hiddenSize: H, numLayers: L, bidirectional: bidirectional)
                    let network = try RecurrentNetwork<Float>(config, generator: &g)
                    let D = config.stateLayers, O = config.outputSize
                    let x = (0..<(T * B * I)).map { _ in Float(g.normal()) }
                    let dOut = (0..<(T * B * O)).map { _ in Float(g.normal()) }
                    let zeros = [Float](repeating: 0, count: D * B * H)

                    func run(
                        explicitZeros: Bool, wantInitialGradient: Bool
                    ) throws -> (out: [Float], grads: [Float], dx: [Float]) {
                        var g = SeededGenerator(seed: 1)
                        let record = try zeros.withUnsafeBufferPointer { z in
                            try network.forward(
                                steps: T, batch: B, input: x, tokens: nil,
                                initialHidden: explicitZeros ? z.baseAddress : nil,
                                initialCell: explicitZeros && cell == .lstm ? z.baseAddress : nil, lengths: lengths,
                                generator: &g)
                        }
                        let out = try record.withUnsafeOutput { Array($0) }
                        network.parameters.zeroGradients()
                        var dx = [Float](repeating: 0, count: T * B * I), dh0 = zeros
                        try dh0.withUnsafeMutableBufferPointer { dh0 in
                            try network.backward(
                                record, outputGradient: dOut, inputGradient: &dx,
                                initialHiddenGradient: wantInitialGradient ? dh0.baseAddress : nil)
                        }
                        let grads = Array(
                            UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
                        return (out, grads, dx)
                    }
                    let full = try run(explicitZeros: true, wantInitialGradient: true)
                    let skipped = try run(explicitZeros: false, wantInitialGradient: false)
                    let forwardOnly = try run(explicitZeros: false, wantInitialGradient: true)
                    // Mismatch counts, not the arrays, so a failure prints one line.
                    func differing(_ a: [Float], _ b: [Float], bitwise: Bool) -> Int {
                        zip(a, b).filter { bitwise ? $0.bitPattern != $1.bitPattern : $0 != $1 }.count
                    }
                    XCTAssertEqual(differing(skipped.out, full.out, bitwise: false), 0, "outputs, \(what)")
                    XCTAssertEqual(differing(skipped.grads, forwardOnly.grads, bitwise: true), 0, "gradients, \(what)")
                    XCTAssertEqual(differing(skipped.dx, forwardOnly.dx, bitwise: true), 0, "dL/dx, \(what)")
                    XCTAssertEqual(differing(skipped.grads, full.grads, bitwise: false), 0, "against h0 = 0, \(what)")
                    XCTAssertTrue(full.grads.contains { $0 != 0 }, what)
                }
            }
        }
    }
}
