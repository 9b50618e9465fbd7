// How `enqueue` writes what it lists: 5,000 tasks at a time, each chunk committed and then published, so that a
// listing of millions never sits in memory and a run that stops leaves a job the same command completes.

import Foundation
import ImageSources
import Jobs
import Postgres

/// Adds listed images to a job a chunk at a time: drops repeats within the chunk, leaves out those already done
/// (`--skip-done`), inserts the rest (the job's existing tasks are kept as they are) and publishes the job's
/// unpublished tasks. The job is opened with the first chunk, so an empty listing creates none.
struct EnqueueWriter {
    static let chunkSize = 5000
    /// Images listed between two progress lines.
    static let progressEvery = 100_000

    let store: PostgresJobStore
    /// Publishes the job's tasks; nil for a dry run.
    let outbox: TaskOutbox?
    let open: () throws -> (id: Int64, created: Bool)
    /// The tasks without a result yet, for `--skip-done`.
    let skipDone: (([NewTask]) throws -> [NewTask])?
    let progress: ((String) -> Void)?

    private(set) var opened: (id: Int64, created: Bool)?
    private(set) var found = 0
    private(set) var skipped = 0
    private(set) var added = 0
    private(set) var published = 0
    private var chunk: [NewTask] = []
    private var inChunk = Set<[String]>()

    init(
        store: PostgresJobStore, outbox: TaskOutbox?, open: @escaping () throws -> (id: Int64, created: Bool),
        skipDone: (([NewTask]) throws -> [NewTask])?, progress: ((String) -> Void)?
    ) {
        self.store = store
        self.outbox = outbox
        self.open = open
        self.skipDone = skipDone
        self.progress = progress
    }

    mutating func take(_ image: ListedImage) throws {
        found += 1
        if inChunk.insert([image.uri, image.text]).inserted {
            chunk.append(NewTask(imageURI: image.uri, inputText: image.text, metadataJSON: image.metadata))
        }
        if chunk.count >= Self.chunkSize { try flush() }
        if found % Self.progressEvery == 0 {
            progress?("\(found) images listed, \(added) new tasks \(outbox == nil ? "to add" : "queued")")
        }
    }

    /// Writes the last chunk.
    mutating func finish() throws {
        if !chunk.isEmpty { try flush() }
    }

    private mutating func flush() throws {
        let job = try opened ?? open()
        opened = job
        let wanted = try skipDone?(chunk) ?? chunk
        skipped += chunk.count - wanted.count
        added += try store.addTasks(wanted, to: job.id).count
        // Tasks an earlier run left unpublished go out here too; a failure strands at most this chunk, which the
        // next run on the job or a worker's reconciler publishes (they are claimed, so nothing is sent twice).
        if let outbox { published += try outbox.publishUnpublished(store: store, grace: 0, job: job.id) }
        chunk.removeAll(keepingCapacity: true)
        inChunk.removeAll(keepingCapacity: true)
    }
}

/// An enqueue that stopped part way: what it added stays in the job, and the same command adds the rest.
struct EnqueueInterrupted: Error, CustomStringConvertible {
    let added: Int
    let underlying: any Error

    var description: String {
        let reason = (underlying as? ImageSourceError).map { "\($0)" } ?? "\(underlying)"
        return "enqueue stopped after \(added) new tasks were added, which the job keeps; run the same command again "
            + "to add and publish the rest: \(reason)"
    }
}

extension EnqueueCommand {
    /// A dry run's estimate for one device: the mean worker time of a task there, and of the tasks to add.
    struct Estimate: Encodable, Equatable {
        let device: String
        /// The results the mean is taken over.
        let results: Int
        let seconds_per_task: Double
        /// Worker-seconds for the tasks the run would add: divide by the workers that serve the queue.
        let worker_seconds: Double

        init(_ cost: TaskCost, tasks: Int) {
            device = cost.device
            results = cost.results
            seconds_per_task = cost.milliseconds / 1000
            worker_seconds = cost.milliseconds / 1000 * Double(tasks)
        }
    }

    /// The estimate as lines for the terminal; with `consumers` workers serving the model's queue now (more than
    /// one), also the time on that many.
    static func estimateLines(_ estimates: [Estimate], tasks: Int, consumers: Int?) -> String {
        guard tasks > 0 else { return "dry run: nothing would be added\n" }
        guard !estimates.isEmpty else {
            return "dry run: no earlier results of this model with these settings to estimate the work from\n"
        }
        return estimates.map {
            var line =
                "dry run: on \($0.device), \(String(format: "%.2f", $0.seconds_per_task)) s a task (mean of "
                + "\($0.results) results): \(ProgressCommand.clock($0.worker_seconds)) on one worker"
            if let consumers, consumers > 1 {
                line +=
                    ", \(ProgressCommand.clock($0.worker_seconds / Double(consumers))) on the \(consumers) serving "
                    + "the queue now"
            }
            return line + "\n"
        }.joined()
    }
}
