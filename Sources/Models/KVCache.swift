// Keys and values of every position seen so far, per layer and per sequence, with the attention mask that
// hides left padding.

import Compute
import Tensors

/// The decoder's memory of a batch of sequences. Rows can be reordered (beam search) and grow by one token per step.
///
/// Keys and values are stored as f32 or bf16 (the backend says which), `[row][position][kvWidth]` per layer.
public struct KVCache: Sendable {
    public let layerCount: Int
    public let kvWidth: Int  // kvHeadCount * headSize
    public let elementType: KVElementType
    public private(set) var batch: Int
    public private(set) var capacity: Int
    /// Positions filled so far (the same for every row: rows are left-padded to one length).
    public private(set) var length = 0
    /// [layer] -> bytes of [row * capacity * kvWidth ...] elements.
    var keys: [[UInt8]]
    var values: [[UInt8]]
    /// [row * capacity + position]: 1 when that position is a real token (0 for left padding).
    public private(set) var mask: [UInt8]
    /// The rotary position the next token of each row takes.
    public private(set) var nextPosition: [Int]

    public init(layerCount: Int, kvWidth: Int, batch: Int, capacity: Int, elementType: KVElementType = .f32) {
        self.layerCount = layerCount
        self.kvWidth = kvWidth
        self.elementType = elementType
        self.batch = batch
        self.capacity = capacity
        keys = Array(
            repeating: [UInt8](repeating: 0, count: batch * capacity * kvWidth * elementType.size), count: layerCount)
        values = keys
        mask = [UInt8](repeating: 0, count: batch * capacity)
        nextPosition = [Int](repeating: 0, count: batch)
    }

    /// Bytes a cache of this shape holds.
    public static func bytes(layerCount: Int, kvWidth: Int, batch: Int, capacity: Int, elementType: KVElementType)
        -> Int
    {
        2 * layerCount * batch * capacity * kvWidth * elementType.size + batch * capacity
    }

    /// Marks `count` new positions per row as real (`valid[row * count + t]`) and returns their rotary positions:
    /// for the prompt, the count of real tokens before each one (pads take position 1, as Hugging Face does);
    /// afterwards, one more than the last.
    mutating func append(count: Int, valid: [Bool]) -> [Int] {
        precondition(length + count <= capacity, "KV cache capacity \(capacity) exceeded")
        var positions = [Int](repeating: 0, count: batch * count)
        for row in 0..<batch {
            for t in 0..<count {
                let real = valid[row * count + t]
                mask[row * capacity + length + t] = real ? 1 : 0
                positions[row * count + t] = real ? nextPosition[row] : 1
                if real { nextPosition[row] += 1 }
            }
        }
        return positions
    }

    /// Writes the new positions' keys and values (`[batch * count, kvWidth]` f32) of `layer`.
    mutating func store(layer: Int, keys newKeys: [Float], values newValues: [Float], count: Int) {
        let width = kvWidth, size = elementType.size, type = elementType, rows = batch, capacity = capacity
        let length = length
        func write(_ storage: inout [UInt8], _ source: [Float]) {
            storage.withUnsafeMutableBytes { bytes in
                source.withUnsafeBufferPointer { input in
                    for row in 0..<rows {
                        let destination = bytes.baseAddress! + (row * capacity + length) * width * size
                        let from = input.baseAddress! + row * count * width
                        switch type {
                        case .f32:
                            destination.copyMemory(from: from, byteCount: count * width * 4)
                        case .bf16:
                            let halves = destination.assumingMemoryBound(to: UInt16.self)
                            for i in 0..<(count * width) { halves[i] = DType.bfloat16Bits(from[i]) }
                        }
                    }
                }
            }
        }
        write(&keys[layer], newKeys)
        write(&values[layer], newValues)
    }

    mutating func advance(by count: Int) {
        length += count
    }

    /// Rebuilds the cache so that row `i` holds what row `sources[i]` held (beam search keeps, drops and
    /// duplicates hypotheses). `sources` may be longer or shorter than the current batch.
    ///
    /// Only the filled positions move, and only rows whose source changed: the rows that are read are copied
    /// aside first, so a step of beam search costs the changed rows' `length` positions, not whole caches.
    public mutating func reorder(_ sources: [Int]) {
        precondition(sources.allSatisfy { (0..<batch).contains($0) }, "reorder: a source row outside 0..<\(batch)")
        let rowBytes = capacity * kvWidth * elementType.size, filled = length * kvWidth * elementType.size
        if sources.count == batch {
            let changed = sources.indices.filter { sources[$0] != $0 }
            if !changed.isEmpty {
                let read = Array(Set(changed.map { sources[$0] })).sorted()
                let slot = Dictionary(uniqueKeysWithValues: read.enumerated().map { ($1, $0) })
                var aside = [UInt8](repeating: 0, count: max(1, read.count * filled))
                func permute(_ storage: inout [UInt8]) {
                    storage.withUnsafeMutableBytes { bytes in
                        aside.withUnsafeMutableBytes { temporary in
                            for (index, row) in read.enumerated() {
                                (temporary.baseAddress! + index * filled).copyMemory(
                                    from: bytes.baseAddress! + row * rowBytes, byteCount: filled)
                            }
                            for row in changed {
                                (bytes.baseAddress! + row * rowBytes).copyMemory(
                                    from: temporary.baseAddress! + slot[sources[row]]! * filled, byteCount: filled)
                            }
                        }
                    }
                }
                for layer in 0..<layerCount {
                    permute(&keys[layer])
                    permute(&values[layer])
                }
            }
        } else {
            for layer in 0..<layerCount {
                keys[layer] = Self.gather(keys[layer], rows: sources, rowBytes: rowBytes, filled: filled)
                values[layer] = Self.gather(values[layer], rows: sources, rowBytes: rowBytes, filled: filled)
            }
        }
        mask = sources.flatMap { mask[($0 * capacity)..<(($0 + 1) * capacity)] }
        nextPosition = sources.map { nextPosition[$0] }
        batch = sources.count
    }

    private static func gather(_ storage: [UInt8], rows: [Int], rowBytes: Int, filled: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: rows.count * rowBytes)
        out.withUnsafeMutableBytes { destination in
            storage.withUnsafeBytes { source in
                for (row, from) in rows.enumerated() {
                    (destination.baseAddress! + row * rowBytes).copyMemory(
                        from: source.baseAddress! + from * rowBytes, byteCount: filled)
                }
            }
        }
        return out
    }
}
