// How many messages a worker holds under the broker's consumer timeout.

import Testing

@testable import Worker

@Suite struct HoldingLimitTests {
    @Test func untilTasksAreTimedTheInitialPrefetchIsHeld() {
        let limit = HoldingLimit(consumerTimeout: 1800, prefetch: 16, initial: 8)
        #expect(limit.prefetch(tasksPerMessage: 1) == 8)
    }

    @Test func fastTasksHoldWhatWasAskedFor() {
        var limit = HoldingLimit(consumerTimeout: 1800, prefetch: 16, initial: 8)
        limit.observe(seconds: 4, tasks: 8)  // half a second a task
        #expect(limit.prefetch(tasksPerMessage: 8) == 16)
        #expect(!limit.exceedsTimeout(tasksPerMessage: 8))
    }

    @Test func slowTasksHoldOnlyWhatFitsInHalfTheTimeout() {
        var limit = HoldingLimit(consumerTimeout: 1800, prefetch: 16, initial: 8)
        limit.observe(seconds: 8 * 150, tasks: 8)  // 150 s a task: 900 s fit 6 tasks
        #expect(limit.prefetch(tasksPerMessage: 1) == 6)
        #expect(limit.prefetch(tasksPerMessage: 3) == 2, "messages of three tasks: two messages")
        #expect(limit.exceedsTimeout(tasksPerMessage: 8), "one message of 8 tasks takes 1,200 s")
        limit.observe(seconds: 8 * 1000, tasks: 8)  // one task alone is past half the timeout
        #expect(limit.prefetch(tasksPerMessage: 1) == 1)
        #expect(limit.exceedsTimeout(tasksPerMessage: 1))
    }

    @Test func aSlowerReadingCountsAtOnceAndFasterOnesGradually() {
        var limit = HoldingLimit(consumerTimeout: 100, prefetch: 64, initial: 8)
        limit.observe(seconds: 8, tasks: 8)
        #expect(limit.secondsPerTask == 1)
        limit.observe(seconds: 16, tasks: 8)
        #expect(limit.secondsPerTask == 2)
        limit.observe(seconds: 8, tasks: 8)
        #expect(limit.secondsPerTask! > 1 && limit.secondsPerTask! < 2)
        limit.observe(seconds: 8, tasks: 0)  // nothing finished: ignored
        limit.observe(seconds: .nan, tasks: 8)
        #expect(limit.secondsPerTask! > 1)
    }
}
