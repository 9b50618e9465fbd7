// Time as the worker measures it: seconds on a monotonic clock, and sleeping. Tests inject a clock they move.

import Foundation

/// Seconds that only move forward, and waiting for some of them to pass.
public protocol MonotonicClock: Sendable {
    /// Seconds since an arbitrary start.
    func now() -> Double
    func sleep(_ seconds: Double)
}

/// The system's monotonic clock.
public struct SystemClock: MonotonicClock {
    public init() {}

    public func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    public func sleep(_ seconds: Double) {
        if seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
    }
}
