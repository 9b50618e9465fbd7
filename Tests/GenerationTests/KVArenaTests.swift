// The key/value arena: regions of whole blocks from a free list that merges neighbours, growth in place, and the
// copies a scheduler makes (a prefix into sequences, beams reordered) moving exactly the rows asked for.

import CPUBackend
import Compute
import Testing

@testable import Models

@Suite struct KVArenaTests {
    static let backend = CPUBackend(precision: .f32, threads: 1)

    @Test func regionsAreWholeBlocksAndFreedBlocksMerge() {
        var arena = KVArena(layerCount: 1, kvWidth: 2, positions: 64, blockSize: 16, backend: Self.backend)
        let a = arena.allocate(positions: 1)!, b = arena.allocate(positions: 17)!, c = arena.allocate(positions: 16)!
        #expect(a == KVRegion(start: 0, capacity: 16) && b == KVRegion(start: 16, capacity: 32))
        #expect(c == KVRegion(start: 48, capacity: 16) && arena.freePositions == 0)
        #expect(arena.allocate(positions: 1) == nil)
        arena.release(a)
        arena.release(c)
        #expect(arena.largestFreeRegion == 16, "two runs of one block, not adjacent")
        arena.release(b)
        #expect(arena.largestFreeRegion == 64, "all merged again")
    }

    @Test func aRegionGrowsInPlaceOnlyIntoFreeBlocks() {
        var arena = KVArena(layerCount: 1, kvWidth: 2, positions: 64, blockSize: 16, backend: Self.backend)
        let a = arena.allocate(positions: 16)!
        let grown = arena.extend(a, to: 40)!
        #expect(grown == KVRegion(start: 0, capacity: 48) && arena.freePositions == 16)
        let b = arena.allocate(positions: 16)!
        #expect(arena.extend(grown, to: 60) == nil && b.start == 48)
    }

    @Test func copiesMoveTheRowsAsked() {
        var arena = KVArena(layerCount: 2, kvWidth: 2, positions: 64, blockSize: 4, backend: Self.backend)
        let regions = (0..<3).map { _ in arena.allocate(positions: 4)! }
        // Row r of region i holds (10 i + r) in every element.
        for (index, region) in regions.enumerated() {
            let rows = (0..<4).flatMap { row in [Float](repeating: Float(10 * index + row), count: 2) }
            for layer in 0..<2 {
                arena.store(
                    layer: layer, keys: Self.backend.buffer(rows), values: Self.backend.buffer(rows),
                    runs: [(from: 0, to: region.start, count: 4)])
            }
        }
        func row(_ region: KVRegion, _ row: Int) -> Float { arena.keys[1].floats[(region.start + row) * 2] }
        arena.reorder(regions, sources: [2, 0, 0], rows: 3)
        #expect((0..<3).map { row(regions[0], $0) } == [20, 21, 22])
        #expect((0..<3).map { row(regions[1], $0) } == [0, 1, 2] && row(regions[2], 1) == 1)
        #expect(row(regions[1], 3) == 13, "rows past the ones asked stay")
        arena.copy(rows: 2, from: regions[0], to: [regions[2]])
        #expect(row(regions[2], 0) == 20 && row(regions[2], 2) == 2)
    }
}
