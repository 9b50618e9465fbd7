// `infmllm retry JOB` and `infmllm cancel JOB`.

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
        let environment = ProcessInfo.processInfo.environment
        store = PostgresJobStore(connection: try PostgresConnection(url: options.resolvedDatabaseURL(environment)))
        guard let job = try store.job(reference) else { throw ValidationError("no job \(reference)") }
        self.job = job
    }

    /// Publishes one message per task id, with confirms.
    static func publish(_ ids: [Int64], job: Int64, options: ServiceOptions) throws {
        let environment = ProcessInfo.processInfo.environment
        let connection = try AMQPConnection(url: AMQPURL(options.resolvedAMQPURL(environment)))
        let topology = TaskTopology(
            prefix: options.resolvedQueuePrefix(environment),
            deliveryLimit: try options.resolvedDeliveryLimit(environment))
        try topology.declare(on: connection)
        for start in stride(from: 0, to: ids.count, by: 1000) {
            try connection.publish(
                ids[start..<min(start + 1000, ids.count)].map {
                    OutgoingMessage(
                        exchange: topology.exchange, routingKey: topology.routingKey,
                        body: TaskMessage(taskID: $0, jobID: job).encoded())
                })
        }
    }
}

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Queue a job's failed tasks again.")

    @Argument(help: "The job's id or name.") var job: String
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as JSON.") var json = false

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let ids = try resolved.store.requeueFailed(job: resolved.job.id)
        try JobServices.publish(ids, job: resolved.job.id, options: services)
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
