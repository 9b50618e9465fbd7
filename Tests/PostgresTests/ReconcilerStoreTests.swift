// The outbox and reconciler queries on a real database: publishers claim disjoint tasks, expired leases are found,
// messages confirmed long ago and never delivered are found, and only workers can take the reconciler's lock.

import Foundation
import Jobs
import Postgres
import Testing

@Suite struct ReconcilerStoreTests {
    /// A migrated database with one job of `count` queued tasks, and a store on it as the owner.
    static func withJob(count: Int, _ body: (String, PostgresJobStore, Int64) throws -> Void) throws {
        try TestDatabase.withEmpty { url in
            let owner = try PostgresConnection(url: url)
            try Migrator(connection: owner).migrate(Migration.load(directory: TestDatabase.migrationsDirectory))
            let store = PostgresJobStore(connection: owner)
            let job = try store.openJob(
                name: "j", kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: "{}",
                reuseResults: false)
            _ = try store.addTasks((0..<count).map { NewTask(imageURI: "/\($0).jpg", inputText: "") }, to: job.id)
            try body(url, store, job.id)
        }
    }

    /// A task whose image is to be read later is queued again, unpublished, and claimed by no publisher (the
    /// reconciler's nor enqueue's) before its `retry_at`; a retry of a failed task starts its count again.
    @Test func aTaskToReadLaterWaitsForItsTime() throws {
        try Self.withJob(count: 2) { _, store, job in
            _ = try store.claimUnpublished(olderThan: 0, job: job, limit: 100) { _ in }
            let provenance = Provenance(modelName: "tiny", weightsSHA256: "w", device: "cpu", worker: "w")
            try store.record(
                [TaskOutcome(taskID: 1, jobID: job, ending: .readLater(reason: "HTTP 503", after: 3600))],
                provenance: provenance)
            let row = try store.connection.execute(
                """
                SELECT status, last_error, read_retries, published_at IS NULL AS unpublished,
                       retry_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes' AS later
                FROM tasks WHERE id = 1
                """
            ).first
            #expect(try row?.string("status") == "queued" && row?.text("last_error") == "HTTP 503")
            #expect(try row?.int("read_retries") == 1 && row?.bool("unpublished") == true && row?.bool("later") == true)
            #expect(try store.tasks([1])[1]?.readRetries == 1 && store.tasks([1])[1]?.waitsToRead == true)
            let waiting = try store.waitingToRead(job: job)
            #expect(waiting.count == 1 && (3590...3600).contains(waiting.firstIn ?? 0), "\(waiting)")
            #expect(try store.claimUnpublished(olderThan: 0, job: job, limit: 100) { _ in } == 0, "not before its time")
            try store.connection.execute("UPDATE tasks SET retry_at = now() - interval '1 second' WHERE id = 1")
            var claimed: [Int64] = []
            _ = try store.claimUnpublished(olderThan: 0, job: job, limit: 100) { claimed += $0.map(\.task.taskID) }
            #expect(claimed == [1])
            // Failed for good later, then retried by the user: the count starts again.
            try store.record(
                [TaskOutcome(taskID: 1, jobID: job, ending: .failed(reason: "HTTP 503 (read again 1 time(s) later)"))],
                provenance: provenance)
            #expect(try store.requeueFailed(job: job).map(\.taskID) == [1])
            let retried = try store.connection.execute("SELECT read_retries, retry_at FROM tasks WHERE id = 1").first
            #expect(try retried?.int("read_retries") == 0 && retried?.text("retry_at") == nil)
            // A task another worker runs (a second message of it) or finished meanwhile is left as it is.
            for status in ["running", "done", "cancelled"] {
                try store.connection.execute("UPDATE tasks SET status = \(status) WHERE id = 2")
                try store.record(
                    [TaskOutcome(taskID: 2, jobID: job, ending: .readLater(reason: "HTTP 503", after: 1))],
                    provenance: provenance)
                let row = try store.connection.execute("SELECT status, read_retries FROM tasks WHERE id = 2").first
                #expect(try row?.string("status") == status && row?.int("read_retries") == 0, "\(status)")
            }
            #expect(try store.tasks([1])[1]?.waitsToRead == false, "queued again and not waiting: a retry")
        }
    }

    @Test func twoPublishersOnOneJobNeverClaimTheSameTask() throws {
        try Self.withJob(count: 10) { url, store, job in
            let other = PostgresJobStore(connection: try PostgresConnection(url: url))
            var first: [Int64] = [], second: [Int64] = []
            // While the first holds its chunk (publishing it), the second claims what is left, and nothing of it.
            _ = try store.claimUnpublished(olderThan: 0, job: job, limit: 6) { chunk in
                first += chunk.map(\.task.taskID)
                _ = try other.claimUnpublished(olderThan: 0, job: job, limit: 100) { chunk in
                    second += chunk.map(\.task.taskID)
                }
            }
            #expect(first.count == 10 - second.count && second.count == 4, "\(first) \(second)")
            #expect(Set(first).isDisjoint(with: second))
            // All are published now: nothing is left to claim.
            #expect(try store.claimUnpublished(olderThan: 0, job: job, limit: 100) { _ in } == 0)
            // A chunk whose publishing fails stays unpublished.
            try store.connection.execute("UPDATE tasks SET published_at = NULL WHERE id = 1")
            #expect(throws: CancellationError.self) {
                _ = try store.claimUnpublished(olderThan: 0, job: job, limit: 100) { _ in throw CancellationError() }
            }
            #expect(try store.claimUnpublished(olderThan: 0, job: job, limit: 100) { _ in } == 1)
        }
    }

    @Test func expiredLeasesAreEndedAndRenewedOnesAreNot() throws {
        try Self.withJob(count: 4) { _, store, job in
            // Task 4 was started five times already: a sixth expiry fails it with the reason.
            try store.connection.execute("UPDATE tasks SET attempts = 5 WHERE id = 4")
            try store.start([1, 2, 4], worker: "w1", lease: 0.001)
            try store.start([3], worker: "w2", lease: 0.001)
            try store.renewLeases(worker: "w2", lease: 3600)
            var expired: [ExpiredLease] = []
            while expired.isEmpty { expired = try store.endExpiredLeases(maxAttempts: 6) }
            #expect(expired.map(\.taskID).sorted() == [1, 2, 4] && Set(expired.map(\.worker)) == ["w1"])
            let rows = try store.tasks([1, 2, 3, 4])
            #expect(rows[1]?.status == .queued && rows[3]?.status == .running && rows[4]?.status == .failed)
            let reason = try store.connection.execute("SELECT last_error FROM tasks WHERE id = 4").first!
            #expect(try reason.string("last_error").contains("lease expired after the model started on it 6 time(s)"))
            let unpublished = try store.connection.execute(
                "SELECT count(*) AS n FROM tasks WHERE published_at IS NULL AND status = 'queued'")
            #expect(try unpublished.first!.int("n") == 2, "the requeued ones go out again")
            // A task of a cancelled job whose lease expires is cancelled, not queued.
            try store.start([1], worker: "w1", lease: 0.001)
            try store.connection.execute("UPDATE jobs SET cancelled_at = now() WHERE id = \(job)")
            var cancelled: [ExpiredLease] = []
            while cancelled.isEmpty { cancelled = try store.endExpiredLeases(maxAttempts: 6) }
            #expect(cancelled.map(\.status) == [.cancelled])
        }
    }

    @Test func messagesConfirmedLongAgoAndNeverDeliveredAreFound() throws {
        try Self.withJob(count: 3) { _, store, _ in
            try store.connection.execute(
                "UPDATE tasks SET published_at = now() - interval '1 hour' WHERE id IN (1, 2)")
            try store.markDelivered([2])
            #expect(try store.modelsWithUndelivered(publishedBefore: 600) == ["tiny"])
            #expect(try store.requeueUndelivered(model: "tiny", publishedBefore: 600) == 1)
            let published = try store.connection.execute("SELECT id FROM tasks WHERE published_at IS NOT NULL")
            #expect(try published.map { try $0.int("id") } == [2])
            #expect(try store.modelsWithUndelivered(publishedBefore: 600).isEmpty)
        }
    }

    @Test func onlyWorkersTakeTheReconcilersLockAndOneAtATime() throws {
        try Self.withJob(count: 1) { url, store, _ in
            let database = String(url[url.index(after: url.range(of: "/", options: .backwards)!.lowerBound)...])
            func login(_ group: String) throws -> PostgresJobStore {
                let user = "infmllm_\(group)_login"
                return PostgresJobStore(
                    connection: try PostgresConnection(url: "postgresql://\(user):\(user)@127.0.0.1:5432/\(database)"))
            }
            let worker = try login("worker"), client = try login("client")
            #expect(try worker.reconcilerIdleSeconds() == nil)
            let inner: Int?? = try worker.withReconcilerLock(holder: "w1") {
                // Held by w1: another worker is turned away at once; a client may not take it at all.
                let other = try login("worker")
                let second = try other.withReconcilerLock(holder: "w2") { 2 }
                #expect {
                    _ = try client.withReconcilerLock(holder: "c") { 3 }
                } throws: { "\($0)".contains("permission denied") }
                return second
            }
            #expect(inner == .some(nil))
            #expect((try worker.reconcilerIdleSeconds() ?? 99) < 60)
            #expect(try store.withReconcilerLock(holder: "w2") { 5 } == 5, "released after the run")
        }
    }
}
