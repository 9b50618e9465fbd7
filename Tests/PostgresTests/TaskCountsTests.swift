// The task_counts ledger of migration 0011: a job's counts by state, kept by triggers, agree with its tasks through
// every kind of change (inserts, status changes in bulk and one by one, cancels, retries, deleted jobs, compaction at
// any point); writers in open transactions never wait on one another there; the migration counts existing tasks; the
// roles read it and compact it but cannot write it.

import Jobs
import Postgres
import TestSupport
import Testing

@Suite struct TaskCountsTests {
    /// Every non-zero (job, state) count, from the ledger and from the tasks themselves.
    static func counts(_ connection: PostgresConnection) throws -> (ledger: [String], tasks: [String]) {
        let ledger = try connection.execute(
            """
            SELECT job_id || ' ' || status || ' ' || sum(tasks) AS line FROM task_counts
            GROUP BY job_id, status HAVING sum(tasks) <> 0 ORDER BY 1
            """
        ).map { try $0.string("line") }
        let tasks = try connection.execute(
            "SELECT job_id || ' ' || status || ' ' || count(*) AS line FROM tasks GROUP BY job_id, status ORDER BY 1"
        ).map { try $0.string("line") }
        return (ledger, tasks)
    }

    @Test func theLedgerAgreesWithTheTasksThroughEveryChange() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            var random = SplitMix64(seed: 11)
            var jobs: [Int64] = []
            let states = ["queued", "running", "done", "failed", "cancelled"]
            for round in 0..<60 {
                switch random.next() % 8 {
                case 0, 1:
                    let job = try store.openJob(
                        name: "job-\(round)", kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: "{}")
                    jobs.append(job.id)
                    let count = Int(random.next() % 300) + 1
                    _ = try store.addTasks((0..<count).map { NewTask(imageURI: "/\(round)/\($0).jpg") }, to: job.id)
                case 2 where !jobs.isEmpty, 3 where !jobs.isEmpty:
                    // A bulk change of state to part of a job, as a worker's batch or a cancel does.
                    let job = jobs[Int(random.next() % UInt64(jobs.count))]
                    let state = states[Int(random.next() % 5)]
                    try connection.execute(
                        "UPDATE tasks SET status = \(state) WHERE job_id = \(job) AND id % 3 = \(Int(random.next() % 3))"
                    )
                case 4 where !jobs.isEmpty:
                    // One task at a time, and a statement that changes no state (a lease, a publish mark).
                    let job = jobs[Int(random.next() % UInt64(jobs.count))]
                    try connection.execute(
                        """
                        UPDATE tasks SET status = 'done'
                        WHERE id = (SELECT min(id) FROM tasks WHERE job_id = \(job) AND status <> 'done')
                        """)
                    try connection.execute("UPDATE tasks SET published_at = now() WHERE job_id = \(job)")
                case 5 where !jobs.isEmpty:
                    _ = try store.job(String(jobs[Int(random.next() % UInt64(jobs.count))]))  // compacts when grown
                    try connection.execute("SELECT compact_task_counts(\(jobs[0]))")
                case 6 where jobs.count > 2:
                    let job = jobs.remove(at: Int(random.next() % UInt64(jobs.count)))
                    try connection.execute("DELETE FROM jobs WHERE id = \(job)")
                    // Some tasks of another job deleted by themselves (an operator's cleanup).
                    try connection.execute("DELETE FROM tasks WHERE job_id = \(jobs[0]) AND id % 5 = 0")
                default:
                    try connection.execute("UPDATE tasks SET status = 'queued' WHERE status = 'failed'")  // a retry
                }
                let (ledger, tasks) = try Self.counts(connection)
                #expect(ledger == tasks, "round \(round)")
                for job in jobs {
                    let summary = try #require(try store.job(String(job)))
                    let expected = try connection.execute(
                        "SELECT status, count(*) AS n FROM tasks WHERE job_id = \(job) GROUP BY status")
                    var byState = Dictionary(uniqueKeysWithValues: states.map { ($0, 0) })
                    for row in expected { byState[try row.string("status")] = try row.int("n") }
                    #expect(summary.counts == byState, "round \(round), job \(job)")
                }
            }
            // Compaction leaves a row per state and job at most.
            for job in jobs { try connection.execute("SELECT compact_task_counts(\(job))") }
            let rows = try connection.execute("SELECT count(*) AS n FROM task_counts").first!.int("n")
            #expect(rows <= jobs.count * states.count)
            #expect(try Self.counts(connection).ledger == Self.counts(connection).tasks)
            // A deleted job leaves no rows; truncating the tasks leaves none at all.
            try connection.execute("DELETE FROM jobs WHERE id = \(jobs[0])")
            #expect(try connection.execute("SELECT 1 FROM task_counts WHERE job_id = \(jobs[0])").isEmpty)
            try connection.execute("TRUNCATE tasks CASCADE")
            #expect(try connection.execute("SELECT 1 FROM task_counts").isEmpty)
        }
    }

    /// Two workers' transactions that change states in opposite orders, and a compaction while both are open: with a
    /// counter row per state the second statement of each would wait for the other (a deadlock); the ledger only
    /// appends. A statement that had to wait would fail on the lock timeout instead of passing.
    @Test func openTransactionsNeverWaitOnTheCountsAndCompactionKeepsTheirChanges() throws {
        try TestDatabase.withEmpty { url in
            let owner = try PostgresConnection(url: url)
            try Migrator(connection: owner).migrate(Migration.load(directory: TestDatabase.migrationsDirectory))
            try owner.executeScript(
                """
                INSERT INTO jobs (name, task_kind, model) VALUES ('j', 'caption', 'tiny');
                INSERT INTO tasks (job_id, image_uri, status) SELECT 1, '/' || n || '.jpg', 'running'
                FROM generate_series(1, 6) n;
                """)
            let first = try PostgresConnection(url: url), second = try PostgresConnection(url: url)
            for connection in [first, second] { try connection.execute("SET lock_timeout = '10s'") }
            try first.execute("BEGIN")
            try second.execute("BEGIN")
            try first.execute("UPDATE tasks SET status = 'done' WHERE id = 1")
            try second.execute("UPDATE tasks SET status = 'failed' WHERE id = 2")
            try first.execute("UPDATE tasks SET status = 'failed' WHERE id = 3")
            try second.execute("UPDATE tasks SET status = 'done' WHERE id = 4")
            try owner.execute("SELECT compact_task_counts(1)")
            try first.execute("COMMIT")
            try owner.execute("SELECT compact_task_counts(1)")
            try second.execute("COMMIT")
            let (ledger, tasks) = try Self.counts(owner)
            #expect(ledger == tasks && tasks == ["1 done 2", "1 failed 2", "1 running 2"], "\(ledger)")
        }
    }

    /// Migration 0011 counts the tasks that exist when it runs.
    @Test func theMigrationCountsTheTasksThereAre() throws {
        try TestDatabase.withEmpty { url in
            let connection = try PostgresConnection(url: url)
            let migrations = try Migration.load(directory: TestDatabase.migrationsDirectory)
            let before = migrations.filter { $0.version < 11 }
            try Migrator(connection: connection).migrate(before)
            try connection.executeScript(
                """
                INSERT INTO jobs (name, task_kind, model) VALUES ('a', 'caption', 'tiny'), ('b', 'vqa', 'tiny');
                INSERT INTO tasks (job_id, image_uri, status)
                SELECT 1 + n % 2, '/' || n || '.jpg', (ARRAY['queued', 'done', 'failed'])[1 + n % 3]
                FROM generate_series(1, 100) n;
                """)
            try Migrator(connection: connection).migrate(migrations)
            let (ledger, tasks) = try Self.counts(connection)
            #expect(ledger == tasks && tasks.count == 6, "\(ledger)")
        }
    }

    @Test func theRolesReadAndCompactTheCountsButCannotWriteThem() throws {
        try RoleTests.withRoles { _, login in
            for group in ["client", "worker"] {
                let connection = try login(group)
                let queued = try connection.execute(
                    "SELECT sum(tasks) AS n FROM task_counts WHERE job_id = 1 AND status = 'queued'")
                #expect(try queued.first?.int("n") == 2, "\(group)")
                try connection.execute("SELECT compact_task_counts(1)")
                for sql in [
                    "INSERT INTO task_counts VALUES (1, 'done', 100)", "DELETE FROM task_counts",
                    "UPDATE task_counts SET tasks = 0",
                ] {
                    #expect(RoleTests.refused(connection, sql), "\(group): \(sql)")
                }
            }
            let reader = try login("reader")
            #expect(RoleTests.refused(reader, "SELECT * FROM task_counts"))
            // The job_progress view reads the ledger for a reader.
            let progress = try reader.execute("SELECT status, tasks FROM job_progress WHERE job = 'j' ORDER BY status")
            #expect(try progress.map { "\(try $0.string("status")) \(try $0.int("tasks"))" } == ["queued 2"])
        }
    }

    /// A login's temporary tables named task_counts and jobs (searched before the schema's for that login) do not
    /// stand in for the real ones in the triggers and the compaction, which run as the owner.
    @Test func temporaryTablesDoNotShadowTheLedger() throws {
        try RoleTests.withRoles { owner, login in
            let client = try login("client")
            try client.executeScript(
                """
                CREATE TEMP TABLE task_counts (job_id bigint, status text, tasks bigint);
                CREATE TEMP TABLE jobs (id bigint);
                INSERT INTO public.tasks (job_id, image_uri) VALUES (1, '/c.jpg');
                UPDATE public.tasks SET status = 'cancelled' WHERE id = 1;
                SELECT compact_task_counts(1);
                """)
            #expect(try client.execute("SELECT count(*) AS n FROM pg_temp.task_counts").first?.int("n") == 0)
            let (ledger, tasks) = try Self.counts(owner)
            #expect(ledger == tasks && tasks == ["1 cancelled 1", "1 queued 2"], "\(ledger)")
            let rows = try owner.execute("SELECT count(*) AS n FROM task_counts WHERE job_id = 1").first?.int("n")
            #expect(rows == 2, "compacted in the real ledger")
        }
    }

    /// The workers' reconciler compacts the ledger of every job that has grown, watched or not.
    @Test func theReconcilerCompactsEveryGrownJob() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            try connection.executeScript(
                """
                INSERT INTO jobs (name, task_kind, model) VALUES ('a', 'caption', 'tiny'), ('b', 'caption', 'tiny');
                INSERT INTO tasks (job_id, image_uri) SELECT 1 + n % 2, '/' || n || '.jpg' FROM generate_series(1, 200) n;
                """)
            for id in 1...100 {
                try connection.execute("UPDATE tasks SET status = 'done' WHERE id = \(id * 2)")  // job 1's, one by one
            }
            #expect(try store.compactTaskCounts() == 1)
            let rows = try connection.execute("SELECT job_id, count(*) AS n FROM task_counts GROUP BY 1 ORDER BY 1")
                .map { "\(try $0.int("job_id")): \(try $0.int("n"))" }
            #expect(rows == ["1: 1", "2: 1"], "\(rows)")
            #expect(try Self.counts(connection).ledger == Self.counts(connection).tasks)
            #expect(try store.compactTaskCounts() == 0)
        }
    }
}
