import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Batches for a user's own sequences: the sampler's orders (permutations, seeded, resumable, bucketed), padding of
/// token and dense sequences, and forecasting windows.
final class BatchDataTests: XCTestCase {
    func testEveryEpochVisitsEachExampleOnceInASeededOrder() throws {
        var sampler = try BatchSampler(count: 10, batchSize: 4, seed: 7)
        XCTAssertEqual(sampler.batchesPerEpoch, 3)
        var epochs: [[Int]] = []
        for _ in 0..<3 { epochs.append((0..<3).flatMap { _ in sampler.next() }) }
        for epoch in epochs { XCTAssertEqual(epoch.sorted(), Array(0..<10)) }
        XCTAssertNotEqual(epochs[0], epochs[1], "a new order every epoch")
        XCTAssertEqual(sampler.position, BatchSampler.Position(epoch: 2, batch: 3))
        var again = try BatchSampler(count: 10, batchSize: 4, seed: 7)
        XCTAssertEqual(
            (0..<9).flatMap { _ in again.next() }, epochs.flatMap { $0 }, "the same seed gives the same batches")
        var other = try BatchSampler(count: 10, batchSize: 4, seed: 8)
        XCTAssertNotEqual(other.next() + other.next(), Array(epochs[0].prefix(8)))
        var ordered = try BatchSampler(count: 5, batchSize: 2, shuffle: false, seed: 0)
        XCTAssertEqual(
            [ordered.next(), ordered.next(), ordered.next(), ordered.next()], [[0, 1], [2, 3], [4], [0, 1]])
        var dropping = try BatchSampler(count: 5, batchSize: 2, seed: 1, dropLast: true)
        XCTAssertEqual((0..<4).map { _ in dropping.next().count }, [2, 2, 2, 2])
    }

    func testAResumedSamplerContinuesExactly() throws {
        var sampler = try BatchSampler(
            count: 23, batchSize: 5, seed: 3, bucketByLengths: (0..<23).map { ($0 * 7) % 11 + 1 })
        for _ in 0..<7 { _ = sampler.next() }
        let saved = try JSONDecoder().decode(
            BatchSampler.Position.self, from: try JSONEncoder().encode(sampler.position))
        var resumed = try BatchSampler(
            count: 23, batchSize: 5, seed: 3, bucketByLengths: (0..<23).map { ($0 * 7) % 11 + 1 })
        resumed.position = saved
        for _ in 0..<12 { XCTAssertEqual(resumed.next(), sampler.next()) }
    }

    func testBucketingKeepsSimilarLengthsTogether() throws {
        var g = SeededGenerator(seed: 2)
        let lengths = (0..<2000).map { _ in 5 + g.nextInt(below: 56) }
        func padding(_ sampler: inout BatchSampler) -> Int {
            (0..<sampler.batchesPerEpoch).reduce(0) { total, _ in
                let rows = sampler.next()
                let longest = rows.map { lengths[$0] }.max()!
                return total + rows.reduce(0) { $0 + longest - lengths[$1] }
            }
        }
        var plain = try BatchSampler(count: 2000, batchSize: 32, seed: 1)
        var bucketed = try BatchSampler(count: 2000, batchSize: 32, seed: 1, bucketByLengths: lengths)
        let (p, b) = (padding(&plain), padding(&bucketed))
        XCTAssertLessThan(b * 10, p, "bucketing pads far less (\(b) vs \(p) padded steps)")
        XCTAssertEqual(bucketed.order(ofEpoch: 1).sorted(), Array(0..<2000))
        XCTAssertThrowsError(try BatchSampler(count: 3, batchSize: 2, seed: 0, bucketByLengths: [1, 2])) {
            XCTAssertEqual("\($0)", "bucketing got 2 lengths for 3 examples")
        }
    }

    func testPaddedBatchesOfTokensAndVectors() throws {
        let tokens = try SequenceBatch<Float>(padding: [[1, 2, 3], [4], [5, 6]], padding: 9)
        XCTAssertEqual(tokens.lengths, [3, 1, 2])
        guard case .oneHot(let t, let steps, let batch) = tokens.input else { return XCTFail("token input") }
        XCTAssertEqual([steps, batch], [3, 3])
        XCTAssertEqual(t, [1, 4, 5, 2, 9, 6, 3, 9, 9], "time-major: t * B + b")
        let batchFirst = try SequenceBatch<Float>(padding: [[1, 2, 3], [4]], layout: .batchFirst)
        guard case .oneHot(let u, _, _) = batchFirst.input else { return XCTFail("token input") }
        XCTAssertEqual(u, [1, 2, 3, 4, 0, 0])
        let dense = try SequenceBatch<Float>(padding: [Tensor(zeros: [2, 3]), Tensor(zeros: [4, 3])])
        guard case .dense(let x) = dense.input else { return XCTFail("dense input") }
        XCTAssertEqual(x.shape, [4, 2, 3])
        XCTAssertEqual(dense.lengths, [2, 4])
        XCTAssertThrowsError(try SequenceBatch<Float>(padding: [[1], []])) {
            XCTAssertEqual("\($0)", "sequence 1 is empty")
        }
    }

    func testSlidingWindows() throws {
        let series = try Tensor<Double>(shape: [10, 2], scalars: (0..<20).map(Double.init))
        let windows = try SlidingWindows(series: series, window: 3, horizon: 2)
        XCTAssertEqual(windows.count, 6)
        let (x, y) = try windows.batch(starts: [0, 5])
        XCTAssertEqual(x.shape, [3, 2, 2])
        XCTAssertEqual(try x[0], try Tensor(shape: [2, 2], scalars: [0, 1, 10, 11]))
        XCTAssertEqual(y, try Tensor(shape: [2, 4], scalars: [6, 7, 8, 9, 16, 17, 18, 19]))
        XCTAssertEqual(try windows.batch(starts: [0, 5], layout: .batchFirst).inputs, try x.transposed(0, 1))
        XCTAssertThrowsError(try windows.batch(starts: [6])) {
            XCTAssertEqual("\($0)", "window start 6 of row 0 is outside [0, 6)")
        }
        XCTAssertThrowsError(try SlidingWindows(series: Tensor<Double>(zeros: [4]), window: 4)) {
            XCTAssertEqual("\($0)", "a series of 4 steps has no window of 4 + 1 steps")
        }
    }
}
