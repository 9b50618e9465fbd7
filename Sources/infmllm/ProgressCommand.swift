// `infmllm progress JOB`: a live bar on a terminal, plain lines otherwise; exits when the job has ended.

import ArgumentParser
import Foundation
import Jobs
import Postgres

#if canImport(Glibc)
    import Glibc
#endif

struct ProgressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "progress", abstract: "Follow a job until every task has ended: counts, tasks per second, ETA.")

    @Argument(help: "The job's id or name.") var job: String
    @Option(help: "Seconds between updates.") var interval: Double = 1
    @Option(help: "Give up after this many seconds (0: never).") var timeout: Double = 0
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print one JSON object per update.") var json = false

    struct Update: Encodable {
        let job_id: Int64
        let done: Int
        let failed: Int
        let cancelled: Int
        let queued: Int
        let running: Int
        let total: Int
        let images_per_second: Double
        let eta_seconds: Double?
        let finished: Bool
        /// The key the job's tasks are routed by, and the workers consuming its queue (nil when the broker could
        /// not say).
        let model_key: String
        let consumers: Int?
    }

    func validate() throws {
        guard interval.isFinite, interval > 0 else {
            throw ValidationError("--interval must be a number of seconds > 0")
        }
        guard timeout.isFinite, timeout >= 0 else { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
    }

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let publisher = try services.publisher(ProcessInfo.processInfo.environment, role: "progress")
        let terminal = isatty(STDOUT_FILENO) == 1 && !json
        let start = Date()
        // Until this command has watched for a while, the rate the job has kept over the last ten minutes.
        let recent = try? resolved.store.recentEndRate(job: resolved.job.id)
        var first: (time: Date, finished: Int)?
        var lastLine = ""
        while true {
            guard let summary = try resolved.store.job(String(resolved.job.id)) else {
                throw ValidationError("job vanished")
            }
            let c = summary.counts
            let finished = c["done"]! + c["failed"]! + c["cancelled"]!
            let now = Date()
            // Tasks per second since this command started watching: steady under a worker that finishes tasks in
            // bursts (an image's tasks together) with long pauses between.
            let origin = first ?? (now, finished)
            first = origin
            let watched = now.timeIntervalSince(origin.time)
            let rate = Self.rate(
                watched: watched, ended: finished - origin.finished, recent: recent)
            let remaining = summary.total - finished
            let eta = Self.eta(remaining: remaining, rate: rate)
            let consumers = summary.isFinished ? nil : JobServices.consumers(of: summary.model, publisher: publisher)
            let update = Update(
                job_id: summary.id, done: c["done"]!, failed: c["failed"]!, cancelled: c["cancelled"]!,
                queued: c["queued"]!,
                running: c["running"]!, total: summary.total, images_per_second: (rate * 100).rounded() / 100,
                eta_seconds: eta.map { $0.rounded() }, finished: summary.isFinished,
                model_key: ModelKey.of(summary.model),
                consumers: consumers)
            let line = describe(update, name: summary.name)
            if json {
                print(try JSONOutput.encode(update))
            } else if terminal {
                print("\r\u{1B}[2K" + line, terminator: summary.isFinished ? "\n" : "")
            } else if line != lastLine {
                print(line)
            }
            fflush(nil)  // all output streams: a live bar must reach the terminal now
            lastLine = line
            if summary.isFinished || (summary.cancelled && c["running"]! == 0) { return }
            if timeout > 0 && now.timeIntervalSince(start) > timeout { throw ExitCode(2) }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// Tasks a second: what this command saw end over `watched` seconds, or the job's `recent` rate (when there is
    /// one) for the first ten seconds, and up to a minute while nothing has ended.
    static func rate(watched: Double, ended: Int, recent: Double?) -> Double {
        let seen = watched > 0 ? Double(ended) / watched : 0
        guard let recent, watched < 60, ended == 0 || watched < 10 else { return seen }
        return recent
    }

    /// Seconds until `remaining` tasks end at `rate` a second; nil when the rate says nothing (no task ended yet)
    /// or the answer is beyond a year.
    static func eta(remaining: Int, rate: Double) -> Double? {
        guard rate > 0, rate.isFinite else { return nil }
        let seconds = Double(remaining) / rate
        return seconds.isFinite && seconds < 365 * 86_400 ? seconds : nil
    }

    /// A duration as m:ss, h:mm:ss from an hour, and with days from a day ("2d 03:04:05").
    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let (days, hours, minutes, rest) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60)
        if days > 0 { return String(format: "%dd %02d:%02d:%02d", days, hours, minutes, rest) }
        if hours > 0 { return String(format: "%d:%02d:%02d", hours, minutes, rest) }
        return String(format: "%d:%02d", minutes, rest)
    }

    private func describe(_ u: Update, name: String) -> String {
        let fraction = u.total > 0 ? Double(u.done + u.failed + u.cancelled) / Double(u.total) : 0
        let width = 30, filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let eta = u.eta_seconds.map(Self.clock) ?? "-"
        let waiting = u.consumers == 0 && u.queued > 0 ? " | " + JobServices.nobodyServes(u.model_key) : ""
        return "\(name) [\(bar)] \(Int(fraction * 100))% done \(u.done) failed \(u.failed) queued \(u.queued) "
            + "running \(u.running) of \(u.total) | \(String(format: "%.1f", u.images_per_second)) tasks/s | ETA \(eta)"
            + waiting
    }
}
