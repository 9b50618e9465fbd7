// `infmllm retry JOB` and `infmllm cancel JOB`.

import ArgumentParser
import Foundation
import Jobs
import Postgres
import RabbitMQ
import Worker

/// The store and, when needed, the queue, resolved from the shared options.
struct JobServices {
    let store: PostgresJobStore
    let job: JobSummary

    init(_ reference: String, options: ServiceOptions) throws {
        let environment = ProcessInfo.processInfo.environment
        store = PostgresJobStore(connection: try PostgresConnection(url: options.resolvedDatabaseURL(environment)))
        guard let job = try store.job(reference) else { throw ValidationError("no job \(reference)") }
        self.job = job
    }

    /// Publishes queued tasks whose messages were never confirmed, reporting (not throwing) a failure: the
    /// command's own work goes on, and workers reconcile too.
    static func reconcile(_ outbox: TaskOutbox, store: PostgresJobStore, grace: Double) {
        do {
            if let published = try outbox.reconcile(store: store, grace: grace), published > 0 {
                FileHandle.standardError.write(
                    Data("published \(published) queued task(s) whose messages were never confirmed\n".utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("could not publish earlier unconfirmed tasks: \(error)\n".utf8))
        }
    }

    /// Publishes the tasks `ids` of `job` to the job's model queue with confirms, marking them published.
    func publish(_ ids: [Int64], outbox: TaskOutbox) throws {
        try outbox.publish(ids.map { ($0, job.id) }, model: job.model, store: store)
    }
}

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Queue a job's failed tasks again.")

    @Argument(help: "The job's id or name.") var job: String
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as JSON.") var json = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let resolved = try JobServices(job, options: services)
        let outbox = try services.outbox(environment)
        JobServices.reconcile(outbox, store: resolved.store, grace: try services.resolvedRepublishAfter(environment))
        let ids = try resolved.store.requeueFailed(job: resolved.job.id)
        try resolved.publish(ids, outbox: outbox)
        print(
            json
                ? try JSONOutput.encode(["job_id": resolved.job.id, "requeued": Int64(ids.count)])
                : "requeued \(ids.count) failed task(s) of job \(resolved.job.name)")
    }
}

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a job: queued tasks end as cancelled; running ones finish.")

    @Argument(help: "The job's id or name.") var job: String
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as JSON.") var json = false

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let count = try resolved.store.cancel(job: resolved.job.id)
        print(
            json
                ? try JSONOutput.encode(["job_id": resolved.job.id, "cancelled": Int64(count)])
                : "cancelled \(count) queued task(s) of job \(resolved.job.name)")
    }
}
