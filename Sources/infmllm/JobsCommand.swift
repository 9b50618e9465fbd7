// `infmllm jobs` and `infmllm show JOB`: what is queued, running, done and failed.

import ArgumentParser
import Foundation
import Postgres

struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List jobs with their task counts.")

    @OptionGroup var services: ServiceOptions
    @Option(help: "Show at most this many jobs, newest first.") var limit = 50
    @Flag(help: "Print the jobs as a JSON array.") var json = false

    func run() throws {
        let store = try JobServices.store(services.resolvedDatabaseURL(ProcessInfo.processInfo.environment))
        let jobs = try store.jobs(limit: limit)
        if json {
            print(try JSONOutput.encode(jobs))
            return
        }
        print("id\tname\tkind\tdone\tfailed\tqueued\trunning\ttotal\tpriority")
        for job in jobs {
            let c = job.counts
            print(
                "\(job.id)\t\(job.name)\t\(job.taskKind)\t\(c["done"]!)\t\(c["failed"]!)\t\(c["queued"]!)\t\(c["running"]!)\t\(job.total)\t\(job.priority)"
            )
        }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one job: settings, task counts and failure reasons grouped.")

    @Argument(help: "The job's id or name.") var job: String
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the job as one JSON object.") var json = false

    struct Detail: Encodable {
        let job: JobSummary
        let failures: [Failure]
        /// Queued tasks waiting to read their image again (`worker --read-retries`).
        let waiting_to_read: Int
    }

    struct Failure: Encodable {
        let reason: String
        let count: Int
    }

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let (store, summary) = (resolved.store, resolved.job)
        let failures = try store.failureReasons(job: summary.id).map { Failure(reason: $0.reason, count: $0.count) }
        let waiting = try store.waitingToRead(job: summary.id)
        if json {
            print(try JSONOutput.encode(Detail(job: summary, failures: failures, waiting_to_read: waiting.count)))
            return
        }
        print(
            "job \(summary.id) \(summary.name): \(summary.taskKind) with \(summary.model), created \(summary.createdAt)"
                + (summary.priority != "normal" ? ", \(summary.priority) priority" : "")
                + (summary.cancelled ? ", cancelled" : ""))
        for status in ["done", "failed", "queued", "running", "cancelled"] {
            print("  \(status): \(summary.counts[status] ?? 0)")
        }
        if waiting.count > 0 {
            let first = waiting.firstIn.map { ", the first in \(ProgressCommand.clock(max(0, $0)))" } ?? ""
            print("  of the queued, \(waiting.count) wait to read their image again\(first)")
        }
        if !failures.isEmpty {
            print("failures:")
            for failure in failures { print("  \(failure.count) x \(failure.reason)") }
        }
    }
}
