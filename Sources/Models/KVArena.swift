// Key/value memory shared by every sequence the decoder runs: per layer one buffer of positions, handed out in
// contiguous regions of fixed-size blocks from a free list. A sequence's keys start at its region's first position,
// so attention reads them as one run, without padding, whatever else is in memory.

import Compute
import Tensors

/// Positions `start ..< start + capacity` of a `KVArena`, held by one sequence (or one shared prompt prefix).
public struct KVRegion: Sendable, Hashable {
    public let start: Int
    public let capacity: Int
}

/// The decoder's key/value memory for many sequences at once.
///
/// Keys and values are stored as f32 or bf16 (the backend says which), `[position][kvWidth]` per layer, in the
/// backend's memory. Regions are whole blocks of `blockSize` positions. Copies of an arena share its memory: keep
/// one (the scheduler owns it).
public struct KVArena: Sendable {
    public let layerCount: Int
    public let kvWidth: Int  // kvHeadCount * headSize
    public let blockSize: Int
    public let blockCount: Int
    public let elementType: KVElementType
    /// [layer] -> [position * kvWidth ...] elements.
    var keys: [ComputeBuffer]
    var values: [ComputeBuffer]
    let backend: any ComputeBackend
    /// Free runs of blocks, by first block, none adjacent to another.
    private var free: [(start: Int, count: Int)]

    /// - Parameter positions: the positions to hold, rounded up to whole blocks.
    public init(layerCount: Int, kvWidth: Int, positions: Int, blockSize: Int = 16, backend: any ComputeBackend) {
        precondition(blockSize > 0 && positions >= 0, "arena of \(positions) positions in blocks of \(blockSize)")
        self.layerCount = layerCount
        self.kvWidth = kvWidth
        self.blockSize = blockSize
        blockCount = (positions + blockSize - 1) / blockSize
        self.backend = backend
        elementType = backend.kvElementType
        let elements = max(1, blockCount * blockSize * kvWidth)
        // Only positions a region has written are ever read: memory is committed as regions first use it.
        keys = (0..<layerCount).map { _ in backend.uninitialized(elements, backend.kvElementType) }
        values = (0..<layerCount).map { _ in backend.uninitialized(elements, backend.kvElementType) }
        free = blockCount > 0 ? [(0, blockCount)] : []
    }

    /// Bytes one position takes across every layer (keys and values).
    public static func bytesPerPosition(layerCount: Int, kvWidth: Int, elementType: KVElementType) -> Int {
        2 * layerCount * kvWidth * elementType.size
    }

    public var positions: Int { blockCount * blockSize }
    public var freePositions: Int { free.reduce(0) { $0 + $1.count } * blockSize }
    /// The largest region `allocate` could hand out now.
    public var largestFreeRegion: Int { (free.map(\.count).max() ?? 0) * blockSize }

    /// Positions a region for `positions` takes: whole blocks.
    public func rounded(_ positions: Int) -> Int { (max(positions, 1) + blockSize - 1) / blockSize * blockSize }

    /// A region of at least `positions` positions (the first free run that fits), or nil when none does.
    public mutating func allocate(positions: Int) -> KVRegion? {
        let blocks = rounded(positions) / blockSize
        guard let index = free.firstIndex(where: { $0.count >= blocks }) else { return nil }
        let run = free[index]
        if run.count == blocks {
            free.remove(at: index)
        } else {
            free[index] = (run.start + blocks, run.count - blocks)
        }
        return KVRegion(start: run.start * blockSize, capacity: blocks * blockSize)
    }

    /// Gives `region`'s blocks back.
    public mutating func release(_ region: KVRegion) {
        let start = region.start / blockSize, count = region.capacity / blockSize
        precondition(start * blockSize == region.start && count > 0, "release: \(region) is not a region of blocks")
        let index = free.firstIndex { $0.start > start } ?? free.count
        precondition(
            (index == 0 || free[index - 1].start + free[index - 1].count <= start)
                && (index == free.count || start + count <= free[index].start),
            "release: \(region) is already free")
        free.insert((start, count), at: index)
        // Merge with the neighbours so that large regions stay possible.
        if index + 1 < free.count, free[index].start + free[index].count == free[index + 1].start {
            free[index].count += free[index + 1].count
            free.remove(at: index + 1)
        }
        if index > 0, free[index - 1].start + free[index - 1].count == free[index].start {
            free[index - 1].count += free[index].count
            free.remove(at: index)
        }
    }

    /// `region` grown in place to at least `positions`, taking the free blocks right after it; nil when they are
    /// not free.
    public mutating func extend(_ region: KVRegion, to positions: Int) -> KVRegion? {
        let wanted = rounded(positions)
        guard wanted > region.capacity else { return region }
        let end = (region.start + region.capacity) / blockSize, more = (wanted - region.capacity) / blockSize
        guard let index = free.firstIndex(where: { $0.start == end }), free[index].count >= more else { return nil }
        if free[index].count == more {
            free.remove(at: index)
        } else {
            free[index] = (free[index].start + more, free[index].count - more)
        }
        return KVRegion(start: region.start, capacity: wanted)
    }

    /// Writes rows of new keys and values (`[rows, kvWidth]` f32) of `layer`: for each run, `count` rows from row
    /// `from` of the new values to position `to` of the arena.
    mutating func store(
        layer: Int, keys newKeys: ComputeBuffer, values newValues: ComputeBuffer,
        runs: [(from: Int, to: Int, count: Int)]
    ) {
        let width = kvWidth
        for (count, group) in Dictionary(grouping: runs, by: \.count) {
            let copies = group.map { (from: $0.from * width, to: $0.to * width) }
            backend.copy(newKeys, into: &keys[layer], runs: copies, length: count * width)
            backend.copy(newValues, into: &values[layer], runs: copies, length: count * width)
        }
    }

    /// Copies the first `rows` positions of `source` into each of `destinations` (a shared prompt prefix into the
    /// sequences that continue it, a beam's prompt into its siblings, a sequence into a larger region).
    public mutating func copy(rows: Int, from source: KVRegion, to destinations: [KVRegion]) {
        guard rows > 0, !destinations.isEmpty else { return }
        precondition(destinations.allSatisfy { $0.capacity >= rows } && source.capacity >= rows, "copy: \(rows) rows")
        permute(rows: rows, reads: [source], writes: destinations.map { ($0, 0) })
    }

    /// Makes region `i` of `regions` hold the first `rows` positions that region `sources[i]` held (beam search
    /// keeps, drops and duplicates hypotheses). Only regions whose source changed are written.
    public mutating func reorder(_ regions: [KVRegion], sources: [Int], rows: Int) {
        precondition(sources.count == regions.count && sources.allSatisfy(regions.indices.contains), "reorder")
        let changed = sources.indices.filter { sources[$0] != $0 }
        guard rows > 0, !changed.isEmpty else { return }
        let read = Array(Set(changed.map { sources[$0] })).sorted()
        let slot = Dictionary(uniqueKeysWithValues: read.enumerated().map { ($1, $0) })
        permute(rows: rows, reads: read.map { regions[$0] }, writes: changed.map { (regions[$0], slot[sources[$0]]!) })
    }

    /// Moves `regions` (one sequence's rows, each holding its first `rows` positions) to new regions of at least
    /// `positions` each, reading them aside first so that the new regions may take the old ones' blocks; nil, with
    /// nothing changed, when they do not fit even so.
    public mutating func relocate(_ regions: [KVRegion], rows: Int, to positions: Int) -> [KVRegion]? {
        let before = free
        for region in regions { release(region) }
        var moved: [KVRegion] = []
        for _ in regions {
            guard let region = allocate(positions: positions) else {
                free = before
                return nil
            }
            moved.append(region)
        }
        if rows > 0 { permute(rows: rows, reads: regions, writes: moved.enumerated().map { ($1, $0) }) }
        return moved
    }

    /// Copies the rows of every region read aside first, then into the regions written (`writes`: a region and the
    /// index of the read it takes), so that reads and writes may overlap.
    private mutating func permute(rows: Int, reads: [KVRegion], writes: [(KVRegion, Int)]) {
        let filled = rows * kvWidth
        let out = reads.enumerated().map { (from: $1.start * kvWidth, to: $0 * filled) }
        let back = writes.map { (from: $0.1 * filled, to: $0.0.start * kvWidth) }
        // One buffer for the rows read, reused by every layer.
        var aside = backend.uninitialized(reads.count * filled, elementType)
        let backend = backend
        func move(_ storage: inout ComputeBuffer) {
            backend.copy(storage, into: &aside, runs: out, length: filled)
            backend.copy(aside, into: &storage, runs: back, length: filled)
        }
        for layer in 0..<layerCount {
            move(&keys[layer])
            move(&values[layer])
        }
    }
}
