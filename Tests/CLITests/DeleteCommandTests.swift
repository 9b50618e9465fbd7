// `infmllm delete JOB` through the binary against the real PostgreSQL and RabbitMQ: refused while tasks could still
// run and for the client login; otherwise the job goes with its tasks, results, boxes and counts, and nothing else.

import Foundation
import TestSupport
import Testing

@Suite struct DeleteCommandTests {
    static let images = EnqueueCommandTests.images

    @Test func aJobGoesWithItsTasksAndResultsOnlyOnceNothingCanRun() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let two = ["rgb_64x64.png", "gray_64x48.png"].map { Self.images + "/" + $0 }
        #expect(try sandbox.run(["enqueue", "caption"] + two + ["--job", "gone", "--model", "tiny"]).status == 0)
        #expect(try sandbox.run(["enqueue", "caption"] + two + ["--job", "kept", "--model", "tiny"]).status == 0)

        let queued = try sandbox.run(["delete", "gone"])
        #expect(queued.status != 0 && queued.output.contains("2 queued and 0 running tasks: cancel it first"))
        // A task that is running keeps it too, even in a cancelled job.
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE tasks SET status = 'running' WHERE id = (SELECT min(t.id) FROM tasks t JOIN jobs j ON j.id = t.job_id
                                                            WHERE j.name = 'gone')
            """)
        #expect(try sandbox.run(["cancel", "gone"]).status == 0)
        let running = try sandbox.run(["delete", "gone"])
        #expect(running.status != 0 && running.output.contains("0 queued and 1 running"), "\(running.output)")
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE tasks SET status = 'done' WHERE status = 'running';
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker)
            SELECT t.id, t.job_id, 'a caption', 5, 2, 'tiny', 'p', '{}', 'cpu', 'w'
            FROM tasks t WHERE t.status = 'done';
            INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
            SELECT task_id, 0, 0, 0, 1, 1, 0, 0, 10, 10 FROM results;
            """)

        // The client login may cancel, not delete.
        let client = "infmllm_client_login"
        let clientURL = "postgresql://\(client):\(client)@127.0.0.1:5432/\(sandbox.database)"
        let refused = try sandbox.run(["delete", "gone", "--database-url", clientURL])
        #expect(refused.status != 0 && refused.output.contains("may not delete jobs"), "\(refused.output)")

        let deleted = try sandbox.run(["delete", "gone", "--json"])
        let outcome = EnqueueCommandTests.json(deleted.output)
        #expect(deleted.status == 0, "\(deleted.output)")
        #expect((outcome["deleted"] as? [String: Any])?["tasks"] as? Int == 2)
        #expect((outcome["deleted"] as? [String: Any])?["results"] as? Int == 1)
        #expect(try sandbox.run(["show", "gone"]).output.contains("no job gone"))
        let left = try EnqueueStreamingTests.sql(
            sandbox,
            """
            SELECT (SELECT count(*) FROM jobs) || ' ' || (SELECT count(*) FROM tasks) || ' '
                   || (SELECT count(*) FROM results) || ' ' || (SELECT count(*) FROM result_boxes) || ' '
                   || (SELECT count(DISTINCT job_id) FROM task_counts)
            """)
        #expect(left == "1 2 0 0 1", "the other job stays whole")
        let kept = EnqueueCommandTests.json(try sandbox.run(["show", "kept", "--json"]).output)
        #expect(((kept["job"] as? [String: Any])?["counts"] as? [String: Int])?["queued"] == 2, "\(kept)")
    }
}
