// The one pool of threads every parallel kernel of the CPU backend runs on.

import Dispatch

/// Splits work into at most `threads` contiguous ranges and runs them at once (the caller's thread takes one).
public struct ThreadPool: Sendable {
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
    }

    /// Runs `body` over `0..<count` cut into up to `threads` ranges of near-equal size, each at least
    /// `minimumChunk` long; returns when all are done.
    public func run(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = min(threads, max(1, count / max(1, minimumChunk)))
        if parts == 1 {
            body(0..<count)
            return
        }
        // The ranges are disjoint and `run` returns only after every one is done, so the body may touch memory
        // the caller owns (as kernels over slices of one array do).
        withoutActuallyEscaping(body) { body in
            let shared = SharedBody(body: body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = count * part / parts, end = count * (part + 1) / parts
                if start < end { shared.body(start..<end) }
            }
        }
    }
}

/// A body handed to the pool's threads for the duration of one `run`.
private struct SharedBody: @unchecked Sendable {
    let body: (Range<Int>) -> Void
}
