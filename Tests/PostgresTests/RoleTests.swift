// The group roles of migration 0004, through the login users ops/services.sh makes in each: what each may do, and
// that the rest is refused with insufficient_privilege (SQLSTATE 42501).

import Foundation
import Postgres
import Testing

@Suite struct RoleTests {
    /// A migrated database with a job, a task and a result, and connections to it as each login user.
    static func withRoles(
        _ body: (_ owner: PostgresConnection, _ login: (String) throws -> PostgresConnection) throws -> Void
    )
        throws
    {
        try TestDatabase.withEmpty { url in
            let owner = try PostgresConnection(url: url)
            try Migrator(connection: owner).migrate(Migration.load(directory: TestDatabase.migrationsDirectory))
            try owner.executeScript(
                """
                INSERT INTO jobs (name, task_kind, model) VALUES ('j', 'caption', 'tiny');
                INSERT INTO tasks (job_id, image_uri) VALUES (1, '/a.jpg'), (1, '/b.jpg');
                INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                     prompt, decoding, device, worker)
                VALUES (1, 1, 'a cat', 3, 2, 'tiny', 'p', '{}', 'cpu', 'w');
                CREATE SCHEMA private;
                CREATE TABLE private.notes (note text);
                """)
            let database = String(url[url.index(after: url.range(of: "/", options: .backwards)!.lowerBound)...])
            try body(owner) { group in
                let user = "infmllm_\(group)_login"
                return try PostgresConnection(url: "postgresql://\(user):\(user)@127.0.0.1:5432/\(database)")
            }
        }
    }

    static func refused(_ connection: PostgresConnection, _ sql: String) -> Bool {
        do {
            try connection.executeScript(sql)
            return false
        } catch let PostgresError.queryFailed(_, state, _) {
            return state == "42501"
        } catch {
            return false
        }
    }

    @Test func aWorkerUpdatesTaskStateAndAddsResultsAndNothingElse() throws {
        try Self.withRoles { _, login in
            let worker = try login("worker")
            try worker.executeScript(
                """
                SELECT count(*) FROM jobs JOIN tasks ON tasks.job_id = jobs.id;
                UPDATE tasks SET status = 'running', attempts = attempts + 1, worker = 'w1', started_at = now() WHERE id = 2;
                INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                     prompt, decoding, device, worker)
                VALUES (2, 1, 'a dog', 3, 2, 'tiny', 'p', '{}', 'cpu', 'w1');
                INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
                VALUES (2, 0, 0, 0, 1, 1, 0, 0, 10, 10);
                UPDATE tasks SET status = 'done', finished_at = now(), published_at = now() WHERE id = 2;
                UPDATE tasks SET status = 'queued', last_error = 'HTTP 503', read_retries = read_retries + 1,
                    retry_at = now() + interval '1 minute', published_at = NULL, lease_expires_at = NULL WHERE id = 1;
                """)
            for sql in [
                "DELETE FROM tasks", "DELETE FROM results", "DROP TABLE results", "TRUNCATE tasks",
                "INSERT INTO jobs (name, task_kind, model) VALUES ('x', 'caption', 'tiny')",
                "INSERT INTO tasks (job_id, image_uri) VALUES (1, '/c.jpg')", "UPDATE tasks SET image_uri = '/x.jpg'",
                "UPDATE jobs SET cancelled_at = now()", "UPDATE results SET output_text = 'x'",
                "CREATE TABLE public.mine (x int)", "SELECT * FROM private.notes",
                "ALTER TABLE tasks ADD COLUMN x int",
            ] {
                #expect(Self.refused(worker, sql), "\(sql)")
            }
        }
    }

    @Test func aClientCreatesJobsAndTasksAndCancelsAndRetriesAndNothingElse() throws {
        try Self.withRoles { _, login in
            let client = try login("client")
            try client.executeScript(
                """
                INSERT INTO jobs (name, task_kind, model, generation) VALUES ('k', 'vqa', 'tiny', '{}');
                INSERT INTO tasks (job_id, image_uri, input_text, metadata) VALUES (2, '/c.jpg', 'what?', '{"id": 1}');
                UPDATE tasks SET published_at = now() WHERE job_id = 2;
                UPDATE jobs SET cancelled_at = now() WHERE id = 2;
                UPDATE tasks SET status = 'cancelled', finished_at = now() WHERE job_id = 2;
                UPDATE tasks SET status = 'queued', last_error = NULL, published_at = NULL, enqueued_at = now() WHERE id = 1;
                SELECT * FROM captions; SELECT * FROM answers; SELECT * FROM boxes; SELECT * FROM results;
                """)
            for sql in [
                "DELETE FROM jobs", "DELETE FROM tasks", "DROP VIEW captions", "TRUNCATE tasks",
                "INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name, prompt, decoding, device, worker) VALUES (2, 1, 'x', 1, 1, 'm', 'p', '{}', 'cpu', 'w')",
                "UPDATE tasks SET attempts = attempts + 1", "UPDATE jobs SET model = 'other'",
                "SELECT * FROM private.notes",
                "CREATE TABLE public.mine (x int)",
                // Status values are the workers': a client cannot mark tasks done, failed or running, cancel a
                // finished one, or write an error.
                "UPDATE tasks SET status = 'done' WHERE id = 1", "UPDATE tasks SET status = 'failed' WHERE id = 1",
                "UPDATE tasks SET status = 'running' WHERE id = 1", "UPDATE tasks SET last_error = 'x' WHERE id = 1",
            ] {
                #expect(Self.refused(client, sql), "\(sql)")
            }
        }
    }

    @Test func aClientCannotTurnAFinishedTaskBack() throws {
        try Self.withRoles { owner, login in
            try owner.executeScript(
                """
                UPDATE tasks SET status = 'done' WHERE id = 1;
                UPDATE tasks SET status = 'failed', attempts = 4 WHERE id = 2;
                """
            )
            let client = try login("client")
            #expect(Self.refused(client, "UPDATE tasks SET status = 'cancelled' WHERE id = 1"))
            #expect(Self.refused(client, "UPDATE tasks SET status = 'queued' WHERE id = 1"))
            // A retry may set attempts back to 0, and only a retry, and only to 0.
            #expect(Self.refused(client, "UPDATE tasks SET attempts = 0 WHERE id = 2"))
            #expect(Self.refused(client, "UPDATE tasks SET status = 'queued', attempts = 1 WHERE id = 2"))
            // Likewise its reads again (migration 0015): back to none, in a retry only.
            try owner.executeScript("UPDATE tasks SET read_retries = 2, retry_at = now() WHERE id = 2")
            #expect(Self.refused(client, "UPDATE tasks SET read_retries = 0, retry_at = NULL WHERE id = 2"))
            #expect(
                Self.refused(
                    client,
                    "UPDATE tasks SET status = 'queued', attempts = 0, read_retries = 1, retry_at = NULL WHERE id = 2"
                ))
            try client.executeScript(
                """
                UPDATE tasks SET status = 'queued', last_error = NULL, attempts = 0, read_retries = 0, retry_at = NULL
                WHERE id = 2
                """)
            // The owner (migrations, operators) is not limited.
            try owner.executeScript("UPDATE tasks SET status = 'failed', last_error = 'by hand' WHERE id = 2")
            let schemaCreate = try owner.execute(
                "SELECT has_schema_privilege('public', 'public', 'CREATE') AS c"
            ).first!.bool("c")
            #expect(schemaCreate == false)
        }
    }

    @Test func aReaderSeesTheViewsOnly() throws {
        try Self.withRoles { owner, login in
            let reader = try login("reader")
            let captions = try reader.execute("SELECT caption FROM captions")
            #expect(try captions.first?.string("caption") == "a cat")
            try reader.executeScript("SELECT * FROM answers; SELECT * FROM boxes;")
            // Provenance and progress (migration 0008): how the result was made, and where the job stands.
            let made = try reader.execute("SELECT device, worker, decoding::text AS decoding FROM captions").first
            #expect(try made?.string("device") == "cpu" && made?.string("decoding") == "{}")
            let states = try reader.execute("SELECT status, tasks FROM task_states WHERE job = 'j' ORDER BY status")
            #expect(try states.map { "\(try $0.string("status")) \(try $0.int("tasks"))" } == ["queued 2"])
            try owner.execute(
                "UPDATE tasks SET status = 'failed', last_error = 'not a JPEG', finished_at = now() WHERE id = 2")
            let failures = try reader.execute("SELECT image_uri, reason FROM failures WHERE job = 'j'")
            #expect(
                try failures.map { try $0.string("image_uri") + ": " + $0.string("reason") } == ["/b.jpg: not a JPEG"])
            for sql in [
                "SELECT * FROM tasks", "SELECT * FROM results", "SELECT * FROM jobs",
                "UPDATE tasks SET status = 'done'",
                "INSERT INTO jobs (name, task_kind, model) VALUES ('x', 'caption', 'tiny')", "DELETE FROM results",
                "SELECT * FROM private.notes",
            ] {
                #expect(Self.refused(reader, sql), "\(sql)")
            }
        }
    }
}
