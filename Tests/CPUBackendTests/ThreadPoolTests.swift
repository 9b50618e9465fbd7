// The pool's spinning workers: every index of every run exactly once, with runs back to back (workers still
// spinning), after the workers have gone to sleep, nested inside a run, and from several threads at once.

import CPUBackend
import Dispatch
import Foundation
import Synchronization
import Testing

@Suite struct ThreadPoolTests {
    /// Runs `count` indices on `pool` and returns how many times each was visited.
    static func visits(_ pool: ThreadPool, count: Int, minimumChunk: Int = 1) -> [Int] {
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let shared = SharedCounts(counts: counts)
        pool.run(count, minimumChunk: minimumChunk) { range in
            for index in range { shared.counts[index] += 1 }  // ranges are disjoint
        }
        return Array(counts)
    }

    @Test func everyIndexOnceInRunsBackToBackAndAfterTheWorkersSleep() {
        let pool = ThreadPool(threads: 4)
        for count in [1, 2, 3, 7, 64, 1000] {
            for _ in 0..<50 { #expect(Self.visits(pool, count: count) == Array(repeating: 1, count: count)) }
        }
        Thread.sleep(forTimeInterval: 0.01)  // past the spin: the workers sleep and must be woken
        #expect(Self.visits(pool, count: 100, minimumChunk: 10) == Array(repeating: 1, count: 100))
    }

    @Test func nestedAndConcurrentRunsEachCompleteWhole() {
        let pool = ThreadPool(threads: 3)
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { caller in
            for round in 0..<40 {
                let count = 10 + (caller * 7 + round) % 50
                if Self.visits(pool, count: count) != Array(repeating: 1, count: count) {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        let inner = Atomic<Int>(0)
        pool.run(4) { outer in
            for _ in outer {
                if Self.visits(pool, count: 9) == Array(repeating: 1, count: 9) { inner.add(1, ordering: .relaxed) }
            }
        }
        #expect(inner.load(ordering: .relaxed) == 4)
    }
}

/// Per-index counters written by disjoint ranges of one run.
private struct SharedCounts: @unchecked Sendable {
    let counts: UnsafeMutableBufferPointer<Int>
}
