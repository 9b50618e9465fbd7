// The one pool of threads every parallel kernel of the CPU backend runs on.

import CKernels
import Dispatch
import Foundation
import Synchronization

/// Splits work into at most `threads` contiguous ranges and runs them at once (the caller's thread takes one).
///
/// The other ranges go to worker threads that spin for a while after each piece of work before they sleep: a
/// decoding step hands the pool some 25 products of a millisecond or two, and a sleeping thread takes about 50 µs
/// to wake on a virtual machine (an idle vCPU halts), which a step would otherwise pay each time.
public struct ThreadPool: Sendable {
    public let threads: Int
    /// The most capable kernel set every part of a run may use: CKernels' choice on the thread that runs a part is
    /// set to it around the part. nil: each thread's own choice (the best set, unless a test forced another).
    public let kernels: KernelSet?

    public init(threads: Int, kernels: KernelSet? = nil) {
        self.threads = max(1, threads)
        self.kernels = kernels
    }

    /// Runs `body` over `0..<count` cut into up to `threads` ranges of near-equal size, each at least
    /// `minimumChunk` long; returns when all are done.
    public func run(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = min(threads, max(1, count / max(1, minimumChunk)))
        if let kernels {
            let limit = kernels.rawValue
            run(count, parts: parts) { range in
                let previous = ck_force_kernels(limit)
                body(range)
                ck_force_kernels(previous)
            }
        } else {
            run(count, parts: parts, body)
        }
    }

    private func run(_ count: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        if parts == 1 {
            body(0..<count)
            return
        }
        // The ranges are disjoint and `run` returns only after every one is done, so the body may touch memory
        // the caller owns (as kernels over slices of one array do).
        withoutActuallyEscaping(body) { body in
            let job = PoolJob(count: count, parts: parts, body: body)
            // One run at a time holds the spinning workers; another at the same moment (tests in parallel, a
            // nested run) goes to Dispatch's threads instead.
            if !SpinningWorkers.shared.run(job) {
                DispatchQueue.concurrentPerform(iterations: parts) { job.runPart($0) }
            }
        }
    }
}

/// One `run`: its ranges and its body, for the duration of the call.
struct PoolJob: @unchecked Sendable {
    // Invariant: used only while the `run` that made it has not returned (its body does not escape).
    let count: Int
    let parts: Int
    let body: (Range<Int>) -> Void

    func runPart(_ part: Int) {
        let start = count * part / parts, end = count * (part + 1) / parts
        if start < end { body(start..<end) }
    }
}

/// Worker threads shared by every pool of the process, started as runs ask for them and kept.
final class SpinningWorkers: Sendable {
    static let shared = SpinningWorkers()

    /// How long a worker spins for the next run before it sleeps.
    static let spinNanoseconds: UInt64 = 200_000

    /// Held by the run using the workers.
    private let busy = Atomic<Bool>(false)
    /// The published run: its generation times 65,536 plus its part count, so that a worker reads both at once.
    private let published = Atomic<Int>(0)
    /// Parts still running on workers.
    private let remaining = Atomic<Int>(0)
    /// The published run's job, read only by the workers that take a part of it (the run waits for each of them,
    /// so the job they read is the one published), and cleared before the run returns.
    private let current = Mutex<PoolJob?>(nil)
    /// The number of workers started.
    private let started = Mutex<Int>(0)
    /// Workers sleep on it once they have spun for `spinNanoseconds`; runs are published under it.
    private let wake = NSCondition()

    /// Runs `job` on the caller's thread (part 0) and on workers (the other parts); false, doing nothing, when
    /// another run holds the workers (or the job has more parts than the published word can count).
    func run(_ job: PoolJob) -> Bool {
        guard job.parts <= 0xffff, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return false }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(job.parts - 1)
        current.withLock { $0 = job }
        remaining.store(job.parts - 1, ordering: .relaxed)
        let generation = (published.load(ordering: .relaxed) >> 16) + 1
        wake.lock()
        published.store((generation << 16) | job.parts, ordering: .releasing)
        wake.broadcast()
        wake.unlock()
        job.runPart(0)
        while remaining.load(ordering: .acquiring) > 0 { ck_spin_pause() }
        current.withLock { $0 = nil }
        return true
    }

    private func startWorkers(_ wanted: Int) {
        started.withLock { started in
            while started < wanted {
                let index = started
                let seen = published.load(ordering: .acquiring) >> 16
                let thread = Thread { [self] in work(index: index, seen: seen) }
                thread.name = "infmllm-pool-\(index + 1)"
                thread.start()
                started += 1
            }
        }
    }

    /// Worker `index` takes part `index + 1` of every run that has that many parts.
    private func work(index: Int, seen start: Int) {
        var seen = start
        while true {
            let word = waitForRun(after: seen)
            seen = word >> 16
            guard index + 1 < (word & 0xffff) else { continue }
            do {
                // The job's body must not outlive the run: this copy ends before the run can see the part done.
                let job = current.withLock { $0 }
                job?.runPart(index + 1)
            }
            remaining.subtract(1, ordering: .releasing)
        }
    }

    /// Spins, then sleeps, until a run later than generation `seen` is published; returns its word.
    private func waitForRun(after seen: Int) -> Int {
        let deadline = DispatchTime.now().uptimeNanoseconds + Self.spinNanoseconds
        var spins = 0
        while true {
            let word = published.load(ordering: .acquiring)
            if word >> 16 != seen { return word }
            spins += 1
            if spins % 64 == 0 {
                if DispatchTime.now().uptimeNanoseconds > deadline { break }
                // Other threads that want this core (a worker's image decoding, more threads than cores) get it.
                sched_yield()
            }
            ck_spin_pause()
        }
        wake.lock()
        defer { wake.unlock() }
        while true {
            let word = published.load(ordering: .acquiring)
            if word >> 16 != seen { return word }
            wake.wait()
        }
    }
}
