// `infmllm retry JOB`, `infmllm cancel JOB` and `infmllm delete JOB`.

import ArgumentParser
import Foundation
import Jobs
import Postgres
import RabbitMQ

/// The store and, when needed, the queue, resolved from the shared options.
struct JobServices {
    let store: PostgresJobStore
    let job: JobSummary

    init(_ reference: String, options: ServiceOptions) throws {
        store = try Self.store(options.resolvedDatabaseURL(ProcessInfo.processInfo.environment))
        guard let job = try store.job(reference) else { throw ValidationError("no job \(reference)") }
        self.job = job
    }

    /// A store on the database at `url`, for the commands: they read and write this build's columns, so a database
    /// short of its migrations is named as such (`checkSchema`) rather than failing on a missing column.
    static func store(_ url: String) throws -> PostgresJobStore {
        let store = PostgresJobStore(connection: try PostgresConnection(url: url))
        try store.checkSchema()
        return store
    }

    /// Consumers of `model`'s queue, or nil when the broker cannot be asked.
    static func consumers(of model: String, publisher: any TaskPublisher) -> Int? {
        try? publisher.queueState(model: model).consumers
    }

    /// What to say when no worker consumes `model`'s queue: the key tasks are routed by, and how a worker serves it.
    static func nobodyServes(_ model: String) -> String {
        let key = ModelKey.of(model)
        return "no worker is consuming the queue of model \(key): tasks wait until a worker serves it "
            + "(`infmllm worker --model DIR` whose folder is named \(key), or with --model-name \(key))"
    }

    /// Publishes the job's queued tasks without a message, claimed so that no other publisher sends them too.
    func publishUnpublished(outbox: TaskOutbox) throws -> Int {
        try outbox.publishUnpublished(store: store, grace: 0, job: job.id)
    }
}

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Queue a job's failed tasks again.",
        discussion: """
            `infmllm show JOB` lists the failure reasons with their counts; --reason retries only the tasks whose \
            reason contains a text from it (e.g. --reason "timed out" after a network outage), leaving failures \
            that would only fail again (an unreadable file) as they are.
            """)

    @Argument(help: "The job's id or name.") var job: String
    @Option(help: "Only the failed tasks whose reason contains this text.") var reason: String?
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as JSON.") var json = false

    func validate() throws {
        if let reason, reason.isEmpty || reason.utf8.contains(0) {
            throw ValidationError("--reason must be a non-empty text without NUL characters")
        }
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let resolved = try JobServices(job, options: services)
        guard !resolved.job.cancelled else {
            throw ValidationError(
                "job \(resolved.job.name) was cancelled, and its tasks are never run again: enqueue the failed ones "
                    + "into a new job (`infmllm enqueue \(resolved.job.taskKind) --from-job JOB --from-status failed` "
                    + "with the new job's name, the model and the job's prompt and decoding flags)")
        }
        let outbox = try services.outbox(environment, role: "retry")
        let tasks = try resolved.store.requeueFailed(job: resolved.job.id, reasonContaining: reason)
        _ = try resolved.publishUnpublished(outbox: outbox)
        print(
            json
                ? try JSONOutput.encode(["job_id": resolved.job.id, "requeued": Int64(tasks.count)])
                : "requeued \(tasks.count) failed task(s) of job \(resolved.job.name)")
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

struct PriorityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "priority", abstract: "Move a job to another queue lane: high, normal or low.",
        discussion: """
            The job's queued tasks are published again in the new lane, so that workers take them in its turn; \
            their earlier messages, still in the old lane, are settled without running when they come (a task \
            that is done by then, or running on another worker, is not run again). Tasks published later (retries \
            included) go to the new lane too.
            """)

    @Argument(help: "The job's id or name.") var job: String
    @Argument(help: "high, normal or low.") var priority: TaskPriority
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as JSON.") var json = false

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let moved = try resolved.store.setPriority(job: resolved.job.id, priority)
        let published = try resolved.publishUnpublished(
            outbox: try services.outbox(ProcessInfo.processInfo.environment, role: "priority"))
        print(
            json
                ? try JSONOutput.encode(
                    Moved(job_id: resolved.job.id, priority: priority.rawValue, queued: moved, published: published))
                : "job \(resolved.job.name): \(priority.rawValue) priority; \(moved) queued task(s) published again "
                    + "in its lane (\(published) published)")
    }

    struct Moved: Encodable {
        let job_id: Int64
        let priority: String
        let queued: Int
        let published: Int
    }
}

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a job with its tasks, results and boxes.",
        discussion: """
            Refused while any of the job's tasks is queued or running: cancel it first and let the running ones \
            end. Takes the database login that owns the tables (the one `infmllm migrate` runs with): the client \
            role may cancel a job, not delete its results.
            """)

    @Argument(help: "The job's id or name.") var job: String
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as JSON.") var json = false

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let deleted: PostgresJobStore.Deleted
        do {
            deleted = try resolved.store.delete(job: resolved.job.id)
        } catch let PostgresError.queryFailed(_, state, _) where state == "42501" {
            throw ValidationError(
                "this login may not delete jobs: deleting takes the login that owns the tables (the one `infmllm "
                    + "migrate` runs with)")
        } catch let PostgresError.refused(reason) {
            throw ValidationError(reason)
        } catch let PostgresError.queryFailed(_, state, _) where state == "40P01" {
            throw ValidationError(
                "a worker was writing to job \(resolved.job.name) at the same moment, and the delete gave way; "
                    + "nothing was deleted: run it again once the job's running tasks have ended")
        }
        print(
            json
                ? try JSONOutput.encode(Outcome(job_id: resolved.job.id, job: resolved.job.name, deleted: deleted))
                : "deleted job \(resolved.job.name): \(deleted.tasks) task(s), \(deleted.results) result(s)")
    }

    struct Outcome: Encodable {
        let job_id: Int64
        let job: String
        let deleted: PostgresJobStore.Deleted
    }
}
