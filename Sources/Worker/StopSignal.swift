// A stop request that signal handlers and other threads can raise and the worker loop polls.

import Dispatch
import Foundation

/// Set once (SIGTERM, SIGINT, or a caller), read often. Thread-safe.
public final class StopSignal: @unchecked Sendable {
    // Invariant: `raised` and `actions` are only read and written while holding `lock`.
    private let lock = NSLock()
    private var raised = false
    private var actions: [@Sendable () -> Void] = []
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    public var isRaised: Bool { lock.withLock { raised } }

    /// Raises the signal; the first call runs the actions registered with `onRaise`, on the calling thread.
    public func raise() {
        let pending: [@Sendable () -> Void] = lock.withLock {
            guard !raised else { return [] }
            raised = true
            defer { actions = [] }
            return actions
        }
        for action in pending { action() }
    }

    /// Runs `action` once when the signal is raised (at once on another thread when it already is).
    public func onRaise(_ action: @escaping @Sendable () -> Void) {
        let runNow: Bool = lock.withLock {
            if raised { return true }
            actions.append(action)
            return false
        }
        if runNow { DispatchQueue.global().async(execute: action) }
    }

    /// Raises this signal on SIGTERM and SIGINT instead of letting them end the process.
    public func installHandlers() {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.raise() }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }
}
