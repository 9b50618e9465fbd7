// A caption job over s3:// objects and a tar shard in a bucket, on a real S3 server (moto's, signatures required):
// `enqueue` lists a prefix's objects and the shard with signed requests, workers read every image with the credentials of their
// environment, and a missing object fails with the reason.

import Foundation
import Postgres
import TestSupport
import Testing

@Suite(.enabled(if: S3Server.runs, "needs moto's S3 server: INFMLLM_S3_SERVER=$(tools/s3_server.sh)"))
struct S3JobTests {
    @Test func imagesAndShardMembersInABucketEndDone() throws {
        let cluster = try Cluster()
        let server = try S3Server()
        let png = try Data(contentsOf: URL(fileURLWithPath: Cluster.images + "/rgb_64x64.png"))
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Cluster.images + "/gray_64x48.jpg"))
        try server.put("photos", "2026/one.png", png)
        let tree = cluster.scratch.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("a"), withIntermediateDirectories: true)
        try png.write(to: tree.appendingPathComponent("a/one.png"))
        try jpeg.write(to: tree.appendingPathComponent("a/two.jpg"))
        let tar = cluster.scratch.appendingPathComponent("s-000.tar")
        let made = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "cd '\(tree.path)' && tar -cf '\(tar.path)' a"])
        #expect(made.status == 0, "\(made.output)")
        try server.put("photos", "shards/s-000.tar", try Data(contentsOf: tar))
        try server.requireSignatures()
        let aws = [
            "AWS_ACCESS_KEY_ID": server.accessKey, "AWS_SECRET_ACCESS_KEY": server.secretKey,
            "AWS_ENDPOINT_URL_S3": server.endpoint, "AWS_REGION": "us-east-1",
        ]
        let enqueue = try ProcessResult.run(
            try RepositoryFiles.binary(),
            [
                "enqueue", "caption", "--dir", "s3://photos/2026/", "s3://photos/2026/none.png", "--archive",
                "s3://photos/shards/s-000.tar", "--job", "bucket", "--model", "tiny", "--max-new-tokens", "2",
            ], environment: cluster.environment.merging(aws) { $1 })
        #expect(enqueue.status == 0, "\(enqueue.output)")
        // No --allow-private-urls: the configured endpoint is reached on its loopback address all the same.
        try cluster.startWorker(["--read-retries", "0"], environment: aws)
        _ = try cluster.waitUntilFinished(job: "bucket", timeout: 120)
        var outcome: [String: (status: String, error: String)] = [:]
        for row in try cluster.query("SELECT image_uri, status, coalesce(last_error, '') AS e FROM tasks") {
            outcome[try row.string("image_uri")] = (try row.string("status"), try row.string("e"))
        }
        #expect(outcome.count == 4, "\(outcome)")
        #expect(outcome["s3://photos/2026/one.png"]?.status == "done", "\(outcome)")
        #expect(
            outcome["s3://photos/2026/none.png"].map { $0.status == "failed" && $0.error.hasSuffix("HTTP 404") } == true
        )
        let members = outcome.filter { $0.key.hasPrefix("tar:s3://photos/shards/s-000.tar#") }
        #expect(members.count == 2 && members.values.allSatisfy { $0.status == "done" }, "\(outcome)")
        cluster.stopWorkers()
    }
}
