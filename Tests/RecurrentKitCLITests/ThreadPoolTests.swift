import _RecurrentKitKernels
import Foundation
import RecurrentKit
import RecurrentKitTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kernels' thread pool: the default thread count (usable cores, MPI processes on the host, the pool's limit), the
/// limit as the range of `Kernels.threadCount` and `rnn --threads`, and the caller's spin-then-sleep wait for chunks
/// still running on workers. (Bit-identical results at 1 and 2 threads: `KernelTests` and the other kernel tests.)
final class ThreadPoolTests: XCTestCase {
    private var savedThreads = 1

    override func setUp() { super.setUp(); savedThreads = Kernels.threadCount }
    override func tearDown() { Kernels.threadCount = savedThreads; super.tearDown() }

    func testDefaultIsTheUsableCoresWithinThePoolLimit() {
        XCTAssertEqual(Kernels.maxThreadCount, 64)  // rk_set_threads clamps there
        let cores = Kernels.usableCoreCount, ranks = Int(rk_local_ranks())
        XCTAssertGreaterThanOrEqual(cores, 1)
        XCTAssertLessThanOrEqual(cores, ProcessInfo.processInfo.processorCount)  // never more than the machine has
        XCTAssert((1...Kernels.maxThreadCount).contains(Kernels.defaultThreadCount))
        XCTAssertEqual(Kernels.defaultThreadCount, min(Kernels.maxThreadCount, max(1, cores / ranks)))
    }

    /// `Kernels.threadCount` is always in 1...maxThreadCount.
    func testThreadCountRangeIsThePoolLimit() {
        Kernels.threadCount = Kernels.maxThreadCount
        XCTAssertEqual(Kernels.threadCount, Kernels.maxThreadCount)
        Kernels.threadCount = 1000
        XCTAssertEqual(Kernels.threadCount, Kernels.maxThreadCount)
        Kernels.threadCount = 0
        XCTAssertEqual(Kernels.threadCount, 1)
    }

    /// An affinity mask of one CPU (here the calling thread's, which the default reads) means one thread.
    func testDefaultRespectsTheAffinityMask() throws {
        #if os(Linux) && canImport(Glibc)
        // sched_{get,set}affinity are GNU extensions the Glibc module does not import: looked up at run time.
        typealias Affinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
        guard let get = dlsym(nil, "sched_getaffinity"), let set = dlsym(nil, "sched_setaffinity") else {
            throw XCTSkip("no sched_setaffinity")
        }
        let getAffinity = unsafeBitCast(get, to: Affinity.self), setAffinity = unsafeBitCast(set, to: Affinity.self)
        var saved = [UInt64](repeating: 0, count: 16)  // 1024 CPUs, glibc's cpu_set_t
        let bytes = saved.count * 8
        guard getAffinity(0, bytes, &saved) == 0 else { throw XCTSkip("sched_getaffinity failed") }
        guard let word = saved.firstIndex(where: { $0 != 0 }) else { throw XCTSkip("empty affinity mask") }
        var one = [UInt64](repeating: 0, count: 16)
        one[word] = saved[word] & (~saved[word] &+ 1)  // the lowest CPU of the mask
        guard setAffinity(0, bytes, &one) == 0 else { throw XCTSkip("sched_setaffinity refused") }
        let cores = Kernels.usableCoreCount, threads = Kernels.defaultThreadCount
        XCTAssertEqual(setAffinity(0, bytes, &saved), 0)
        XCTAssertEqual(cores, 1)
        XCTAssertEqual(threads, 1)
        #else
        throw XCTSkip("no affinity masks to set here")
        #endif
    }

    /// The processes of an mpirun job on this host share the cores: Open MPI's and MPICH's variables.
    func testDefaultIsSharedAmongMPIProcessesOnTheHost() throws {
        let names = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE"]
        let saved = names.map { name in getenv(name).map { String(cString: $0) } }
        defer {
            for (name, value) in zip(names, saved) { if let value { setenv(name, value, 1) } else { unsetenv(name) } }
        }
        for name in names { unsetenv(name) }
        let cores = Kernels.usableCoreCount, alone = min(Kernels.maxThreadCount, cores)
        XCTAssertEqual(Kernels.defaultThreadCount, alone)
        for name in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"] {
            setenv(name, "2", 1)
            XCTAssertEqual(Kernels.defaultThreadCount, min(Kernels.maxThreadCount, max(1, cores / 2)), name)
            setenv(name, String(cores + 1), 1)  // more processes than cores: still one thread each
            XCTAssertEqual(Kernels.defaultThreadCount, 1, name)
            setenv(name, "junk", 1)
            XCTAssertEqual(Kernels.defaultThreadCount, alone, name)
            unsetenv(name)
        }
    }

    /// `--threads` above the pool's limit is refused with one line (the limit itself is accepted).
    func testThreadsAboveThePoolLimitRefusedWithOneLine() throws {
        let limit = Kernels.maxThreadCount
        for command in [
            ["train", "--output", FileManager.default.temporaryDirectory.path + "/rk-never-written"], ["bench"],
        ] {
            let result = try runCLI(command + ["--threads", String(limit + 1)])
            XCTAssertNotEqual(result.status, 0, "\(command): --threads \(limit + 1) should fail")
            XCTAssertEqual(result.err.split(separator: "\n").count, 1, "one line expected, got: \(result.err)")
            XCTAssertTrue(
                result.err.contains("threads \(limit + 1)") && result.err.contains("1...\(limit)"), result.err)
        }
        let accepted = try runCLI(["bench", "--threads", String(limit), "--filter", "no such row"])
        XCTAssertEqual(accepted.status, 0, accepted.err)
        XCTAssertTrue(accepted.out.contains("threads: \(limit)"), accepted.out)
    }

    /// Many jobs whose chunks last 0 to ~1 ms, so the caller sometimes runs out of chunks and waits longer than its
    /// spin for a worker's (then sleeps and must be woken): every chunk of every job runs exactly once, and no wake-up
    /// is lost (that would hang here).
    func testCallerWaitsForWorkersChunks() {
        Kernels.threadCount = 2
        let chunks = 6
        let runs = UnsafeMutablePointer<Int32>.allocate(capacity: chunks + 1)  // [0]: the job; [1...]: runs per chunk
        defer { runs.deallocate() }
        for job in 0..<300 {
            runs.initialize(repeating: 0, count: chunks + 1)
            runs[0] = Int32(job)
            rk_parallel(
                Int32(chunks),
                { context, chunk, _ in
                    let runs = context!.assumingMemoryBound(to: Int32.self)
                    // Busy for 0, 0.05, 0.1, ... ms by chunk, up to 0.6 ms every third job: longer than the caller's
                    // spin, shorter than the 1 ms wait that makes the pool run the next jobs on the caller alone.
                    let seconds = Double((Int(runs[0]) + Int(chunk)) % 7) * (runs[0] % 3 == 0 ? 1e-4 : 5e-5)
                    let start = monotonicSeconds()
                    while monotonicSeconds() - start < seconds {}
                    runs[Int(chunk) + 1] += 1
                }, runs)
            let counts = (1...chunks).map { runs[$0] }
            if counts != Array(repeating: 1, count: chunks) {
                XCTFail("job \(job): chunks ran \(counts) times"); return
            }
        }
    }

    /// A worker preempted in the middle of a chunk (here: sleeping 20 ms in it) makes the caller wait longer than it
    /// worked; the pool then runs the next jobs on the caller alone, and after the window (at most 1.28 s) with the
    /// workers again. Every chunk runs once either way.
    func testAPreemptedWorkerMakesTheNextJobsRunOnTheCaller() {
        Kernels.threadCount = 2
        final class Job {
            let caller = pthread_self()
            var workerStarted = false  // written by the worker, read by the caller (a test's loose flag, then a lock)
            let lock = NSLock()
            var workerChunks = 0, runs = [Int](repeating: 0, count: 8)
            var sleepInWorker = true
        }
        let job = Job()
        let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { context, chunk, _ in
            let job = Unmanaged<Job>.fromOpaque(context!).takeUnretainedValue()
            let onCaller = pthread_equal(pthread_self(), job.caller) != 0
            job.lock.lock()
            job.runs[Int(chunk)] += 1
            if !onCaller { job.workerChunks += 1; job.workerStarted = true }
            let sleep = !onCaller && job.sleepInWorker && job.workerChunks == 1
            job.lock.unlock()
            if sleep { usleep(20_000) }
            // The caller's first chunk waits (up to 0.2 s) for a worker to take one, so the job is really shared.
            if onCaller && chunk == 0 {
                let start = monotonicSeconds()
                while monotonicSeconds() - start < 0.2 {
                    job.lock.lock()
                    let started = job.workerStarted
                    job.lock.unlock()
                    if started { break }
                    usleep(50)
                }
            }
        }
        let context = Unmanaged.passUnretained(job).toOpaque()
        let before = rk_pool_serial_windows()
        // Under load the caller itself can be preempted long enough that the worker's sleep is not what it waited
        // for (or the worker runs every chunk): a few tries.
        for _ in 0..<5 where rk_pool_serial_windows() == before {
            job.runs = Array(repeating: 0, count: 8)
            (job.workerChunks, job.workerStarted, job.sleepInWorker) = (0, false, true)
            rk_parallel(8, task, context)
            XCTAssertEqual(job.runs, Array(repeating: 1, count: 8))
        }
        XCTAssertGreaterThan(rk_pool_serial_windows(), before, "a worker 20 ms late should open a serial window")
        // The next job, at once: on the caller alone (its first chunk gives up waiting for a worker after 0.2 s),
        // unless this thread was itself preempted past the shortest window (20 ms) before it started.
        let end = monotonicSeconds()
        job.runs = Array(repeating: 0, count: 8)
        (job.workerChunks, job.workerStarted, job.sleepInWorker) = (0, false, false)
        let gap = monotonicSeconds() - end
        rk_parallel(8, task, context)
        XCTAssertEqual(job.runs, Array(repeating: 1, count: 8))
        if gap < 0.005 { XCTAssertEqual(job.workerChunks, 0) }
        // After the longest window, the workers take chunks again.
        usleep(1_300_000)
        (job.workerChunks, job.workerStarted) = (0, false)
        rk_parallel(8, task, context)
        XCTAssertEqual(job.runs, Array(repeating: 2, count: 8))
        XCTAssertGreaterThan(job.workerChunks, 0)
    }

    /// Runs the `rnn` executable next to the test bundle.
    private func runCLI(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let result = try runRNN(arguments)
        XCTAssertFalse(result.timedOut, "rnn \(arguments.joined(separator: " ")) was killed after 600 s")
        return (result.status, result.out, result.err)
    }
}
