// A caption job over images where archives really live: URLs on a real HTTP server (nginx) and members of tar and
// zip shards, local and served over HTTP. Each image ends done or failed with its reason, and the rest of the job completes.

import Foundation
import Postgres
import TestSupport
import Testing

@Suite struct ImageSourceJobTests {
    static func copy(_ fixture: String, to path: URL) throws {
        try FileManager.default.createDirectory(
            at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Cluster.images + "/" + fixture, toPath: path.path)
    }

    static func shell(_ command: String) throws {
        let result = try ProcessResult.run(URL(fileURLWithPath: "/bin/sh"), ["-c", command])
        guard result.status == 0 else { throw ClusterError(message: "\(command): \(result.output)") }
    }

    @Test func urlsAndArchiveMembersEndDoneOrFailedWithTheirReasons() throws {
        let cluster = try Cluster()
        let server = try NginxServer()
        let png = try Data(contentsOf: URL(fileURLWithPath: Cluster.images + "/rgb_64x64.png"))
        try server.put("/images/good.png", png)
        try server.put("/slow/slow.png", Data(repeating: 7, count: 64 << 10))
        try server.put("/big.png", Data(repeating: 1, count: 3 << 20))
        try server.put("/page.jpg", Data("<!doctype html><html><body>Not found</body></html>".utf8))
        let urls = [
            "/images/good.png", "/moved/images/good.png", "/flaky/late.png", "/images/missing.png", "/slow/slow.png",
            "/loop", "/big.png", "/page.jpg",
        ].map(server.url)
        let list = cluster.scratch.appendingPathComponent("urls.txt")
        try Data(urls.joined(separator: "\n").utf8).write(to: list)

        // Shards: nested folders, a member that is not an image, a corrupt image, and a truncated archive.
        let tree = cluster.scratch.appendingPathComponent("tree")
        try Self.copy("rgb_64x64.png", to: tree.appendingPathComponent("a/one.png"))
        try Self.copy("gray_64x48.jpg", to: tree.appendingPathComponent("a/b/two.jpg"))
        try Data("a caption sidecar".utf8).write(to: tree.appendingPathComponent("a/one.txt"))
        try Data([0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 0x42, count: 300)).write(
            to: tree.appendingPathComponent("a/bad.jpg"))
        var noise = SplitMix64(seed: 9)
        try Data((0..<60_000).map { _ in UInt8(truncatingIfNeeded: noise.next()) }).write(
            to: tree.appendingPathComponent("z-cut.png"))
        let shards = cluster.scratch.appendingPathComponent("shards")
        try FileManager.default.createDirectory(at: shards, withIntermediateDirectories: true)
        try Self.shell("cd '\(tree.path)' && tar -cf '\(shards.path)/s-000.tar' a")
        try Self.shell("cd '\(tree.path)' && tar -b 1 -cf '\(shards.path)/s-001.tar' a/one.png z-cut.png")
        try Self.shell("truncate -s -30000 '\(shards.path)/s-001.tar'")
        try Self.shell("cd '\(tree.path)' && zip -q -r '\(shards.path)/s-002.zip' a")
        // The same shard served over HTTP twice; the second is replaced after it is listed. The zip served too.
        let shard = try Data(contentsOf: shards.appendingPathComponent("s-000.tar"))
        try server.put("/shards/r-000.tar", shard)
        try server.put("/shards/r-001.tar", shard)
        try server.put("/shards/r-002.zip", try Data(contentsOf: shards.appendingPathComponent("s-002.zip")))

        let enqueue = try cluster.run([
            "enqueue", "caption", "--urls", list.path, "--archive", shards.path + "/*.tar", shards.path + "/*.zip",
            server.url("/shards/r-{000..001}.tar"), server.url("/shards/r-002.zip"), "--job", "sources", "--model",
            "tiny", "--max-new-tokens", "4",
            "--json",
        ])
        #expect(enqueue.status == 0, "\(enqueue.output)")
        #expect(
            enqueue.output.contains("\"skipped_members\":5"),
            "one.txt in the tar, the zip and the served shards: \(enqueue.output)")
        #expect(enqueue.output.contains("truncated in member z-cut.png"), "\(enqueue.output)")
        try server.put("/shards/r-001.tar", try Data(contentsOf: shards.appendingPathComponent("s-001.tar")))

        // The file behind /flaky/ appears once the worker has been answered 500.
        let fixer = Thread {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, !server.accessLog().contains(where: { $0.contains("/flaky/late.png") }) {
                Thread.sleep(forTimeInterval: 0.01)
            }
            try? server.put("/flaky/late.png", png)
        }
        fixer.start()
        // Failures that may pass fail at once here (--read-retries 0): reading them again later has a test of its own.
        try cluster.startWorker([
            "--fetch-timeout", "1", "--fetch-attempts", "3", "--max-image-bytes", "1048576", "--allow-private-urls",
            "--read-retries", "0",
        ])
        _ = try cluster.waitUntilFinished(job: "sources", timeout: 120)

        var outcome: [String: (status: String, error: String)] = [:]
        for row in try cluster.query("SELECT image_uri, status, coalesce(last_error, '') AS e FROM tasks") {
            outcome[try row.string("image_uri")] = (try row.string("status"), try row.string("e"))
        }
        func expectDone(_ uri: String) {
            #expect(outcome[uri]?.status == "done", "\(uri): \(String(describing: outcome[uri]))")
        }
        func expectFailed(_ uri: String, _ reason: String) {
            #expect(
                outcome[uri]?.status == "failed" && outcome[uri]!.error.contains(reason),
                "\(uri): \(String(describing: outcome[uri]))")
        }
        for path in ["/images/good.png", "/moved/images/good.png", "/flaky/late.png"] { expectDone(server.url(path)) }
        expectFailed(server.url("/images/missing.png"), "HTTP 404")
        expectFailed(server.url("/slow/slow.png"), "within 1.0 s (after 3 attempts)")
        expectFailed(server.url("/loop"), "more than 5 redirects")
        expectFailed(server.url("/big.png"), "over the 1048576-byte limit")
        expectFailed(server.url("/page.jpg"), "not a JPEG, PNG, WebP, GIF, HEIC or AVIF image")
        for shard in ["s-000.tar", "s-002.zip"] {
            let prefix = (shard.hasSuffix(".zip") ? "zip:" : "tar:") + shards.path + "/" + shard + "!/"
            expectDone(prefix + "a/one.png")
            expectDone(prefix + "a/b/two.jpg")
            expectFailed(prefix + "a/bad.jpg", "corrupt JPEG")
        }
        expectDone("tar:" + shards.path + "/s-001.tar!/a/one.png")
        // Members of the served shards: read with range requests, or failed where the shard changed.
        func served(_ shard: String, _ member: String) -> String {
            let archive = String(shard.suffix(3)) + ":" + server.url("/shards/\(shard)#")
            return outcome.keys.first { $0.hasPrefix(archive) && $0.hasSuffix("!/" + member) }
                ?? "no task for \(member) of \(shard)"
        }
        for shard in ["r-000.tar", "r-002.zip"] {
            expectDone(served(shard, "a/one.png"))
            expectDone(served(shard, "a/b/two.jpg"))
            expectFailed(served(shard, "a/bad.jpg"), "corrupt JPEG")
        }
        for member in ["a/one.png", "a/b/two.jpg", "a/bad.jpg"] {
            let uri = served("r-001.tar", member)
            #expect(
                outcome[uri]?.status == "failed"
                    && (outcome[uri]!.error.contains("the archive has changed since it was listed")
                        || outcome[uri]!.error.contains("the file is shorter")),
                "\(uri): \(String(describing: outcome[uri]))")
        }
        #expect(outcome.count == 24, "\(outcome.keys.sorted())")
        let hashed = try cluster.query(
            "SELECT count(*) AS n FROM tasks WHERE status = 'done' AND image_sha256 IS NOT NULL AND image_width = 64"
        ).first!
        #expect(try hashed.int("n") == 12, "every done image has its hash and size")
        // Members were read in place: nothing was written beside the shards.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: shards.path).sorted() == [
                "s-000.tar", "s-001.tar", "s-002.zip",
            ])

        // The shards' results travel with the shards, keyed as webdataset keys members.
        let exported = cluster.scratch.appendingPathComponent("exported")
        try cluster.check(try cluster.run(["export", "sources", "--format", "shard-jsonl", "--output", exported.path]))
        let lines = try String(contentsOf: exported.appendingPathComponent("s-000.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(Set(lines.compactMap { $0["__key__"] as? String }) == ["a/one", "a/b/two", "a/bad"])
        #expect(lines.contains { $0["member"] as? String == "a/bad.jpg" && $0["status"] as? String == "failed" })
        let remote = try String(contentsOf: exported.appendingPathComponent("r-000.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(Set(remote.compactMap { $0["__key__"] as? String }) == ["a/one", "a/b/two", "a/bad"], "one shard")
        let remoteZip = try String(contentsOf: exported.appendingPathComponent("r-002.jsonl"), encoding: .utf8)
        #expect(remoteZip.split(separator: "\n").count == 3, "the served zip is a shard of its own: \(remoteZip)")
        let sidecars = cluster.scratch.appendingPathComponent("sidecars")
        try cluster.check(try cluster.run(["export", "sources", "--format", "sidecars", "--output", sidecars.path]))
        let sidecar =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: sidecars.appendingPathComponent("s-002/a/b/two.json"))) as? [String: Any]
        #expect(sidecar?["status"] as? String == "done" && sidecar?["output"] is String)
        // txt: a text file per member with a result, under its shard's folder, named by its key.
        let texts = cluster.scratch.appendingPathComponent("texts")
        try cluster.check(try cluster.run(["export", "sources", "--format", "txt", "--output", texts.path]))
        let caption = try String(contentsOf: texts.appendingPathComponent("s-002/a/b/two.txt"), encoding: .utf8)
        #expect(caption == (sidecar?["output"] as? String ?? "?") + "\n")
        #expect(!FileManager.default.fileExists(atPath: texts.appendingPathComponent("s-000/a/bad.txt").path))
        // An --output that is a file is refused with its name, for every format that writes a folder.
        let file = cluster.scratch.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        for format in ["sidecars", "shard-jsonl", "txt"] {
            let refused = try cluster.run(["export", "sources", "--format", format, "--output", file.path])
            #expect(
                refused.status != 0 && refused.output.contains("--output \(file.path) is a file"), "\(refused.output)")
        }
        // A shard folder that is a symbolic link out of --output is not written into.
        let linked = cluster.scratch.appendingPathComponent("linked"),
            outside = cluster.scratch.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: linked, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            at: linked.appendingPathComponent("s-002"), withDestinationURL: outside)
        let refusedLink = try cluster.run(["export", "sources", "--format", "txt", "--output", linked.path])
        #expect(refusedLink.output.contains("symbolic links lead out of"), "\(refusedLink.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
        // One archive spelled two ways, and another folder's archive of the same name: three shards, none
        // overwriting another (the later ones by URI bytes get a hash of their URI in the name).
        _ = try cluster.query(
            """
            INSERT INTO jobs (name, task_kind, model) VALUES ('spellings', 'caption', 'tiny');
            """)
        _ = try cluster.query(
            """
            INSERT INTO tasks (job_id, image_uri)
            SELECT id, uri FROM jobs, unnest(ARRAY['TAR:/x/a.tar!/1.jpg', 'tar:/x/a.tar!/2.jpg', 'tar:/y/a.tar!/3.jpg',
                                                   'tar:/x/a.tar!/4.jpg']) uri
            WHERE name = 'spellings'
            """)
        let spellings = cluster.scratch.appendingPathComponent("spellings")
        try cluster.check(
            try cluster.run(["export", "spellings", "--format", "shard-jsonl", "--output", spellings.path]))
        let files = try FileManager.default.contentsOfDirectory(atPath: spellings.path).sorted()
        #expect(files.count == 3 && files.contains("a.jsonl"), "\(files)")
        let counts = try files.map {
            try String(contentsOf: spellings.appendingPathComponent($0), encoding: .utf8).split(separator: "\n").count
        }
        #expect(counts.sorted() == [1, 1, 2], "\(files): \(counts)")
        cluster.stopWorkers()
    }

    /// An image that cannot be read for a reason that may pass is read again later instead of failing its task at
    /// once: a URL answered 500 until its file appears ends done, one never served fails after the reads again,
    /// saying so, and each wait is a task queued (unpublished) with the reason as its last error.
    @Test func anImageUnreachableForAWhileIsReadAgainLater() throws {
        let cluster = try Cluster()
        let server = try NginxServer()
        let png = try Data(contentsOf: URL(fileURLWithPath: Cluster.images + "/rgb_64x64.png"))
        let urls = ["/flaky/later.png", "/flaky/never.png"].map(server.url)
        let list = cluster.scratch.appendingPathComponent("urls.txt")
        try Data(urls.joined(separator: "\n").utf8).write(to: list)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--urls", list.path, "--job", "later", "--model", "tiny", "--max-new-tokens", "4",
            ]))
        try cluster.startWorker([
            "--fetch-attempts", "1", "--read-retries", "2", "--read-retry-after", "1", "--republish-after", "2",
            "--allow-private-urls",
        ])
        try cluster.wait(for: "the first read to fail") {
            try !cluster.query(
                "SELECT 1 FROM tasks WHERE image_uri = \(urls[0]) AND status = 'queued' AND read_retries >= 1"
            ).isEmpty
        }
        let waiting = try cluster.query(
            "SELECT last_error, published_at IS NULL OR retry_at IS NOT NULL AS waits FROM tasks WHERE image_uri = \(urls[0])"
        ).first
        #expect(try waiting?.text("last_error")?.contains("HTTP 500") == true && waiting?.bool("waits") == true)
        try server.put("/flaky/later.png", png)
        let counts = try cluster.waitUntilFinished(job: "later", timeout: 120)
        #expect(counts == ["done": 1, "failed": 1], "\(cluster.workerLogs())")
        let rows = try cluster.query("SELECT image_uri, status, last_error, read_retries FROM tasks ORDER BY image_uri")
        var byURI: [String: (status: String, error: String?, retries: Int)] = [:]
        for row in rows {
            byURI[try row.string("image_uri")] = (
                try row.string("status"), try row.text("last_error"), try row.int("read_retries")
            )
        }
        #expect(byURI[urls[0]]?.status == "done" && byURI[urls[0]]?.error == nil && (byURI[urls[0]]?.retries ?? 0) >= 1)
        #expect(byURI[urls[1]]?.status == "failed" && byURI[urls[1]]?.retries == 2)
        #expect(
            byURI[urls[1]]?.error?.contains("HTTP 500 (after 1 attempts) (read again 2 time(s) later, to no avail)")
                == true, "\(String(describing: byURI[urls[1]]))")
        // One request per read: the first and the two later ones.
        #expect(try server.settledAccessLog().filter { $0.contains("/flaky/never.png") }.count == 3)
        cluster.stopWorkers()
    }

    @Test func skipDoneReusesResultsForTheSameContentFromAnotherSource() throws {
        let cluster = try Cluster()
        let tree = cluster.scratch.appendingPathComponent("tree")
        for name in ["rgb_64x64.png", "gray_64x48.jpg", "rgb_100x37.png"] {
            try Self.copy(name, to: tree.appendingPathComponent(name))
        }
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", tree.path + "/rgb_64x64.png", tree.path + "/gray_64x48.jpg", "--job", "files",
                "--model", "tiny", "--max-new-tokens", "6",
            ]))
        try cluster.startWorker()
        #expect(try cluster.waitUntilFinished(job: "files") == ["done": 2])
        // The same two images and a third, now as members of a shard: only the third runs through the model.
        let shard = cluster.scratch.appendingPathComponent("s.tar").path
        try Self.shell("cd '\(tree.path)' && tar -cf '\(shard)' rgb_64x64.png gray_64x48.jpg rgb_100x37.png")
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--archive", shard, "--job", "shard", "--model", "tiny", "--max-new-tokens", "6",
                "--skip-done",
            ]))
        #expect(try cluster.waitUntilFinished(job: "shard") == ["done": 3])
        let rows = try cluster.query(
            """
            SELECT t.image_uri, r.output_text, r.reused_from, o.image_uri AS original, o_r.output_text AS original_text
            FROM results r JOIN tasks t ON t.id = r.task_id JOIN jobs j ON j.id = t.job_id
            LEFT JOIN tasks o ON o.id = r.reused_from LEFT JOIN results o_r ON o_r.task_id = r.reused_from
            WHERE j.name = 'shard' ORDER BY t.image_uri
            """)
        let reused = try rows.filter { try $0.text("reused_from") != nil }
        #expect(reused.count == 2, "the two images with a result were not run again")
        for row in reused {
            #expect(try row.string("output_text") == row.string("original_text"))
            #expect(try row.string("original").hasPrefix(tree.path))
        }
        #expect(
            try rows.filter { try $0.text("reused_from") == nil }.map { try $0.string("image_uri") } == [
                "tar:\(shard)!/rgb_100x37.png"
            ])
        // A result made from another prompt (a default template that changed between releases, both jobs storing
        // no template) is not reused: the images run again.
        _ = try cluster.query(
            "UPDATE results SET prompt = 'an earlier default prompt' WHERE reused_from IS NULL")
        try Self.copy("rgb_64x64.png", to: tree.appendingPathComponent("again.png"))
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", tree.path + "/again.png", "--job", "again", "--model", "tiny",
                "--max-new-tokens", "6", "--skip-done",
            ]))
        #expect(try cluster.waitUntilFinished(job: "again") == ["done": 1])
        let again = try cluster.query(
            "SELECT r.reused_from FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.name = 'again'")
        #expect(try again.first?.text("reused_from") == nil, "computed again, not copied from another prompt's result")
        cluster.stopWorkers()
    }
}
