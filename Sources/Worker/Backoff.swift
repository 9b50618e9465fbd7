// Retrying an operation that failed for a transient reason, with exponential backoff, until it works or the
// worker is asked to stop.

import Foundation
import Jobs

struct Backoff {
    var initial = 0.2
    var maximum = 5.0
    var clock: any MonotonicClock = SystemClock()

    /// Runs `body` until it succeeds; on an error that `isTransient` accepts, waits (doubling up to `maximum`)
    /// and calls `reconnect` before trying again. Permanent errors and a raised `stop` end the retries.
    func retry<T>(
        _ what: String, stop: StopSignal, log: (String) -> Void, isTransient: (Error) -> Bool,
        reconnect: () throws -> Void,
        _ body: () throws -> T
    ) throws -> T {
        var delay = initial
        while true {
            do {
                return try body()
            } catch  where isTransient(error) && !stop.isRaised {
                log("\(what) failed, retrying in \(String(format: "%.1f", delay)) s: \(error)")
                clock.sleep(delay)
                delay = min(delay * 2, maximum)
                do { try reconnect() } catch { log("reconnecting for \(what) failed: \(error)") }
            }
        }
    }

    /// Whether retrying can help: the error is a service's and says it is transient.
    static func isTransient(_ error: Error) -> Bool {
        (error as? ServiceError)?.isTransient ?? false
    }
}
