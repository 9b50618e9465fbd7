// The share of --max-memory that images being decoded may hold. Each image reserves what decoding it can take at
// most, from its header's size, before any pixel is allocated; one that would not fit waits for others to finish,
// and one larger than the whole share fails its tasks with the reason. The share is carved out of the memory the
// model's working set is sized from, so images and the model together stay within the limit.

import Foundation
import Imaging
import Models

/// A byte budget for image decoding, shared by the pipeline's threads. Thread-safe.
final class ImageMemory: @unchecked Sendable {
    /// Bytes images may hold at once.
    let capacity: Int
    // Invariant: `held`, `waiting`, `nextTicket` and `serving` are only read and written while holding `condition`.
    private let condition = NSCondition()
    private var held = 0
    private var waiting = 0
    /// Reservations are served in the order they came: one waiting for much room is not passed forever by small
    /// ones.
    private var nextTicket = 0
    private var serving = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Bytes held now.
    var inUse: Int { condition.withLock { held } }
    /// Reservations waiting for room now.
    var waiters: Int { condition.withLock { waiting } }

    /// The share of `budget` (the memory beyond the weights) kept for decoding: room for two of the largest images
    /// allowed, at most a quarter of the budget, and at least 64 MiB.
    static func share(of budget: Int, maxImagePixels: Int) -> Int {
        // The tallest image allowed has the longest row table.
        let largest = min(
            Int.max / 4,
            ImageDecoder.decodingBytes(width: 1, height: maxImagePixels, bytesPerPixel: ImageDecoder.heifBytesPerPixel))
        return max(64 << 20, min(budget / 4, 2 * largest))
    }

    /// Waits until `bytes` fit, then holds them; the caller releases them with `release`.
    ///
    /// - Throws: `ImageMemoryError` when `bytes` exceed the whole capacity (waiting would never end).
    func reserve(_ bytes: Int) throws {
        guard bytes <= capacity else { throw ImageMemoryError(needed: bytes, capacity: capacity) }
        condition.withLock {
            let ticket = nextTicket
            nextTicket += 1
            waiting += 1
            while ticket != serving || held + bytes > capacity { condition.wait() }
            waiting -= 1
            serving += 1
            held += bytes
            condition.broadcast()  // the next ticket may fit too
        }
    }

    func release(_ bytes: Int) {
        condition.withLock {
            held -= bytes
            condition.broadcast()
        }
    }
}

/// An image that needs more memory to decode than the worker keeps for images.
struct ImageMemoryError: Error, CustomStringConvertible {
    let needed: Int
    let capacity: Int

    var description: String {
        "decoding needs up to \(byteCount(needed)), more than the \(byteCount(capacity)) this worker keeps for images "
            + "(a share of --max-memory)"
    }
}
