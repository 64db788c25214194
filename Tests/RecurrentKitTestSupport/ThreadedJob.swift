// An in-process data-parallel job for tests: threads as processes, sums as MPI_Allreduce gives them.
import Foundation
import RecurrentKit

/// N threads, each a "process" of a job; sums meet at a barrier and add the buffers in rank order, so every thread
/// gets the identical sum (as MPI_Allreduce guarantees).
public final class ThreadedJob: @unchecked Sendable {
    /// The processes of the job.
    public let count: Int
    private let condition = NSCondition()
    private var arrived = 0, generation = 0
    private var buffers: [UnsafeMutableRawPointer?]

    /// A job of `count` processes.
    public init(count: Int) {
        self.count = count
        buffers = Array(repeating: nil, count: count)
    }

    /// Waits until every process has arrived.
    public func barrier() {
        condition.lock()
        let g = generation
        arrived += 1
        if arrived == count {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while g == generation { condition.wait() }
        }
        condition.unlock()
    }

    /// Replaces `values` of process `rank` by the sum over every process, added in rank order.
    public func sum<T: BinaryFloatingPoint>(_ values: UnsafeMutablePointer<T>, count n: Int, rank: Int) {
        condition.lock()
        buffers[rank] = UnsafeMutableRawPointer(values)
        condition.unlock()
        barrier()
        var total = [T](repeating: 0, count: n)
        for r in 0..<count {
            let p = buffers[r]!.assumingMemoryBound(to: T.self)
            for i in 0..<n { total[i] += p[i] }
        }
        barrier()  // every thread has read every buffer
        values.update(from: total, count: n)
    }

    /// The reducer of one process.
    public final class Reducer: GradientReducer {
        let job: ThreadedJob
        public let rank: Int
        public var processCount: Int { job.count }
        public init(job: ThreadedJob, rank: Int) { self.job = job; self.rank = rank }
        public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
            job.sum(values, count: count, rank: rank)
        }
        public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {
            job.sum(values, count: count, rank: rank)
        }
    }

    /// Runs `body` on `processes` threads, each with its reducer; returns the results in rank order or the first error.
    public static func run<R>(processes: Int, _ body: @escaping (GradientReducer) throws -> R) throws -> [R] {
        let job = ThreadedJob(count: processes)
        let results = ThreadResults<R>(count: processes, body: body)
        let group = DispatchGroup()
        for rank in 0..<processes {
            group.enter()
            let thread = Thread {
                results.run(rank: rank, reducer: Reducer(job: job, rank: rank))
                group.leave()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        group.wait()
        if let error = results.error { throw error }
        return results.values.map { $0! }
    }
}

/// The threads' results (each thread writes its own slot under the lock).
final class ThreadResults<R>: @unchecked Sendable {
    private let lock = NSLock()
    private let body: (GradientReducer) throws -> R
    var values: [R?]
    var error: Error?

    init(count: Int, body: @escaping (GradientReducer) throws -> R) {
        values = Array(repeating: nil, count: count)
        self.body = body
    }

    func run(rank: Int, reducer: GradientReducer) {
        do {
            let value = try body(reducer)
            lock.lock(); values[rank] = value; lock.unlock()
        } catch {
            lock.lock(); if self.error == nil { self.error = error }; lock.unlock()
        }
    }
}
