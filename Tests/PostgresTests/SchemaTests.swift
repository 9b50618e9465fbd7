// The core schema's contract: Swift's vocabulary fits its checks, duplicates are refused, the views read right.

import Jobs
import Postgres
import Testing

@Suite struct SchemaTests {
    @Test func everyTaskKindAndStatusIsAccepted() throws {
        try TestDatabase.withMigrated { connection throws in
            for kind in TaskKind.allCases {
                let job = try insertJob(connection, name: "job-\(kind.rawValue)", kind: kind)
                for status in TaskStatus.allCases {
                    try connection.execute(
                        "INSERT INTO tasks (job_id, image_uri, status) VALUES (\(job), \("\(status).jpg"), \(status.rawValue))"
                    )
                }
            }
            let count = try connection.execute("SELECT count(*) AS n FROM tasks").first?.int("n")
            #expect(count == TaskKind.allCases.count * TaskStatus.allCases.count)
        }
    }

    @Test func unknownStatusIsRefusedByACheckConstraint() throws {
        try TestDatabase.withMigrated { connection throws in
            let job = try insertJob(connection, name: "j", kind: .caption)
            #expect {
                try connection.execute("INSERT INTO tasks (job_id, image_uri, status) VALUES (\(job), 'a.jpg', 'lost')")
            } throws: { error in
                guard case let .queryFailed(_, state, _) = error as? PostgresError else { return false }
                return state == "23514"
            }
        }
    }

    @Test func theSameImageAndInputIsOneTaskPerJob() throws {
        try TestDatabase.withMigrated { connection throws in
            let job = try insertJob(connection, name: "dedupe", kind: .vqa)
            let insert: (String) throws -> Int = { question in
                try connection.execute(
                    """
                    INSERT INTO tasks (job_id, image_uri, input_text) VALUES (\(job), 'cat.jpg', \(question))
                    ON CONFLICT DO NOTHING
                    """
                ).affectedRowCount
            }
            #expect(try insert("what colour?") == 1)
            #expect(try insert("what colour?") == 0)
            #expect(try insert("how many?") == 1)
        }
    }

    @Test func viewsJoinResultsWithImagesAndFlagUnparsedBoxes() throws {
        try TestDatabase.withMigrated { connection throws in
            let job = try insertJob(connection, name: "refs", kind: .ground)
            let found = try insertTask(connection, job: job, uri: "/data/dog.png", input: "the dog")
            let missed = try insertTask(connection, job: job, uri: "/data/sky.png", input: "a unicorn")
            try insertResult(connection, task: found, job: job, text: "[0.1,0.2,0.5,0.6]")
            try insertResult(connection, task: missed, job: job, text: "I cannot see one.")
            try connection.execute(
                """
                INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
                VALUES (\(found), 0, 0.1, 0.2, 0.5, 0.6, 64, 96, 320, 288)
                """)
            let rows = try connection.execute(
                "SELECT image_uri, expression, parsed, x2 FROM boxes WHERE job = 'refs' ORDER BY image_uri")
            let summary = try rows.map {
                [try $0.string("image_uri"), try $0.string("expression"), "\(try $0.bool("parsed"))"]
            }
            #expect(summary == [["/data/dog.png", "the dog", "true"], ["/data/sky.png", "a unicorn", "false"]])
            #expect(try rows.first?.double("x2") == 320)
            #expect(try connection.execute("SELECT * FROM captions").isEmpty)
        }
    }

    @Test func aTaskHasAtMostOneResult() throws {
        try TestDatabase.withMigrated { connection throws in
            let job = try insertJob(connection, name: "once", kind: .caption)
            let task = try insertTask(connection, job: job, uri: "a.jpg", input: "")
            try insertResult(connection, task: task, job: job, text: "a cat")
            #expect(throws: PostgresError.self) {
                try insertResult(connection, task: task, job: job, text: "a cat again")
            }
            let captions = try connection.execute("SELECT caption FROM captions").map { try $0.string("caption") }
            #expect(captions == ["a cat"])
        }
    }

    private func insertJob(_ connection: PostgresConnection, name: String, kind: TaskKind) throws -> Int {
        try connection.execute(
            "INSERT INTO jobs (name, task_kind, model) VALUES (\(name), \(kind.rawValue), 'tiny') RETURNING id"
        ).first!.int("id")
    }

    private func insertTask(_ connection: PostgresConnection, job: Int, uri: String, input: String) throws -> Int {
        try connection.execute(
            """
            INSERT INTO tasks (job_id, image_uri, input_text, image_width, image_height, status)
            VALUES (\(job), \(uri), \(input), 640, 480, 'done') RETURNING id
            """
        ).first!.int("id")
    }

    private func insertResult(_ connection: PostgresConnection, task: Int, job: Int, text: String) throws {
        try connection.execute(
            """
            INSERT INTO results (task_id, job_id, output_text, output_token_ids, prompt_token_count,
                                 output_token_count, model_name, prompt, decoding, device, worker)
            VALUES (\(task), \(job), \(text), \([5, 6, 7]), 10, 3, 'tiny', '<ImageHere>', '{"beams": 5}', 'cpu', 'w1')
            """)
    }
}
