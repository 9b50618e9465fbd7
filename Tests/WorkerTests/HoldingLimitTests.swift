// How many messages a worker holds under the broker's consumer timeout.

import Testing

@testable import Worker

@Suite struct HoldingLimitTests {
    @Test func untilABatchIsTimedOneBatchIsHeld() {
        let limit = HoldingLimit(consumerTimeout: 1800, prefetch: 16, batchSize: 8)
        #expect(limit.prefetch == 8 && limit.batchSize == 8)
    }

    @Test func fastBatchesHoldWhatWasAskedFor() {
        var limit = HoldingLimit(consumerTimeout: 1800, prefetch: 16, batchSize: 8)
        limit.observe(seconds: 4, tasks: 8)  // half a second a task
        #expect(limit.prefetch == 16 && limit.batchSize == 8)
        #expect(!limit.exceedsTimeout)
    }

    @Test func slowBatchesHoldOnlyWhatFitsInHalfTheTimeout() {
        var limit = HoldingLimit(consumerTimeout: 1800, prefetch: 16, batchSize: 8)
        limit.observe(seconds: 8 * 150, tasks: 8)  // 150 s a task: 900 s fit 6
        #expect(limit.prefetch == 6 && limit.batchSize == 6)
        limit.observe(seconds: 8 * 1000, tasks: 8)  // one task alone is past half the timeout
        #expect(limit.prefetch == 1 && limit.batchSize == 1)
        #expect(limit.exceedsTimeout)
    }

    @Test func aSlowerBatchCountsAtOnceAndFasterOnesGradually() {
        var limit = HoldingLimit(consumerTimeout: 100, prefetch: 64, batchSize: 8)
        limit.observe(seconds: 8, tasks: 8)
        #expect(limit.secondsPerTask == 1)
        limit.observe(seconds: 16, tasks: 8)
        #expect(limit.secondsPerTask == 2)
        limit.observe(seconds: 8, tasks: 8)
        #expect(limit.secondsPerTask! > 1 && limit.secondsPerTask! < 2)
        limit.observe(seconds: 8, tasks: 0)  // nothing ran: ignored
        limit.observe(seconds: .nan, tasks: 8)
        #expect(limit.secondsPerTask! > 1)
    }
}
