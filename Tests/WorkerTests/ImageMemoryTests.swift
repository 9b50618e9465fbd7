// The memory images being decoded may hold: a reservation waits for room, one larger than the whole share fails at
// once, and the share is carved from the worker's memory budget.

import Foundation
import Imaging
import TestSupport
import Testing

@testable import Worker

@Suite struct ImageMemoryTests {
    @Test func aReservationWaitsUntilAnotherIsReleased() throws {
        let memory = ImageMemory(capacity: 100)
        try memory.reserve(70)
        let reserved = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? memory.reserve(50)
            reserved.signal()
        }
        // It cannot get in while 70 are held: it waits.
        while memory.waiters == 0 { Thread.sleep(forTimeInterval: 0.001) }
        #expect(memory.inUse == 70)
        memory.release(70)
        reserved.wait()
        #expect(memory.inUse == 50)
        memory.release(50)
    }

    @Test func reservationsAreServedInTheOrderTheyCame() throws {
        let memory = ImageMemory(capacity: 100)
        try memory.reserve(60)
        let order = OrderLog()
        // A large one asks first, then a small one that would fit now: the small one waits its turn.
        Thread.detachNewThread {
            try? memory.reserve(90)
            order.append("large")
            memory.release(90)
        }
        while memory.waiters < 1 { Thread.sleep(forTimeInterval: 0.001) }
        Thread.detachNewThread {
            try? memory.reserve(30)
            order.append("small")
            memory.release(30)
        }
        while memory.waiters < 2 { Thread.sleep(forTimeInterval: 0.001) }
        #expect(order.items.isEmpty)
        memory.release(60)
        while order.items.count < 2 { Thread.sleep(forTimeInterval: 0.001) }
        #expect(order.items == ["large", "small"])
    }

    /// A header's size is checked for overflow before anything is computed from it: 4294967295 x 4294967295 declares
    /// more pixels than an Int holds.
    @Test func theCostComesFromTheHeaderAndSurvivesAbsurdSizes() {
        func png(_ width: UInt32, _ height: UInt32) -> [UInt8] { PNGWriter.header(width: width, height: height) }
        #expect(ImageDecoder(maxPixels: 89_478_485).decodingBytes(of: png(.max, .max)) == nil)
        #expect(ImageDecoder(maxPixels: 89_478_485).decodingBytes(of: png(100_000, 100_000)) == nil)
        #expect(ImageDecoder(maxPixels: 89_478_485).decodingBytes(of: png(640, 480)) == 640 * 480 * 16 + 480 * 8)
        #expect(ImageDecoder(maxPixels: 89_478_485).decodingBytes(of: Array("text".utf8)) == nil)
    }

    @Test func anImageLargerThanTheShareFailsAtOnce() {
        let memory = ImageMemory(capacity: 1 << 20)
        #expect { try memory.reserve(2 << 20) } throws: { "\($0)".contains("more than the 1.0 MiB") }
        #expect(memory.inUse == 0)
    }

    @Test func theShareIsAQuarterOfTheBudgetAtMostAndRoomForTwoLargestImages() {
        // 10 million pixels in one column, as HEIF decodes them (the widest): 24 bytes a pixel and 8 a row.
        let largest = 32 * 10_000_000
        #expect(WorkerConfiguration.imageMemory(of: 40 << 30, maxImagePixels: 10_000_000) == 2 * largest)
        #expect(WorkerConfiguration.imageMemory(of: 1 << 30, maxImagePixels: 89_478_485) == 256 << 20)
        #expect(WorkerConfiguration.imageMemory(of: 100 << 20, maxImagePixels: 89_478_485) == 64 << 20)
    }
}

/// Names appended from several threads.
final class OrderLog: @unchecked Sendable {
    // Invariant: `values` is only read and written while holding `lock`.
    private let lock = NSLock()
    private var values: [String] = []
    func append(_ value: String) { lock.withLock { values.append(value) } }
    var items: [String] { lock.withLock { values } }
}
