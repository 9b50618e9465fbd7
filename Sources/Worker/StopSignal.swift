// A stop request that signal handlers and other threads can raise and the worker loop polls.

import Dispatch
import Foundation

/// Set once (SIGTERM, SIGINT, or a caller), read often. Thread-safe.
public final class StopSignal: @unchecked Sendable {
    // Invariant: `raised` is only read and written while holding `lock`.
    private let lock = NSLock()
    private var raised = false
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    public var isRaised: Bool { lock.withLock { raised } }

    public func raise() { lock.withLock { raised = true } }

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
