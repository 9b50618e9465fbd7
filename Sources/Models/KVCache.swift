// Keys and values of every position seen so far, per layer and per sequence, with the attention mask that
// hides left padding.

import Compute
import Tensors

/// The decoder's memory of a batch of sequences. Rows can be reordered (beam search) and grow by one token per step.
///
/// Keys and values are stored as f32 or bf16 (the backend says which), `[row][position][kvWidth]` per layer, in the
/// backend's memory (on the GPU for a GPU backend). Copies of a cache share that memory: keep one.
public struct KVCache: Sendable {
    public let layerCount: Int
    public let kvWidth: Int  // kvHeadCount * headSize
    public let elementType: KVElementType
    public private(set) var batch: Int
    public private(set) var capacity: Int
    /// Positions filled so far (the same for every row: rows are left-padded to one length).
    public private(set) var length = 0
    /// [layer] -> [row * capacity * kvWidth ...] elements.
    var keys: [ComputeBuffer]
    var values: [ComputeBuffer]
    let backend: any ComputeBackend
    /// [row * capacity + position]: 1 when that position is a real token (0 for left padding).
    public private(set) var mask: [UInt8]
    /// The rotary position the next token of each row takes.
    public private(set) var nextPosition: [Int]

    public init(layerCount: Int, kvWidth: Int, batch: Int, capacity: Int, backend: any ComputeBackend) {
        self.layerCount = layerCount
        self.kvWidth = kvWidth
        self.backend = backend
        let elementType = backend.kvElementType
        self.elementType = elementType
        self.batch = batch
        self.capacity = capacity
        keys = (0..<layerCount).map { _ in backend.zeros(batch * capacity * kvWidth, elementType) }
        values = (0..<layerCount).map { _ in backend.zeros(batch * capacity * kvWidth, elementType) }
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
    mutating func store(layer: Int, keys newKeys: ComputeBuffer, values newValues: ComputeBuffer, count: Int) {
        let width = kvWidth, capacity = capacity, length = length
        let runs = (0..<batch).map { row in (from: row * count * width, to: (row * capacity + length) * width) }
        backend.copy(newKeys, into: &keys[layer], runs: runs, length: count * width)
        backend.copy(newValues, into: &values[layer], runs: runs, length: count * width)
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
        let rowElements = capacity * kvWidth, filled = length * kvWidth
        if sources.count == batch {
            let changed = sources.indices.filter { sources[$0] != $0 }
            if !changed.isEmpty {
                let read = Array(Set(changed.map { sources[$0] })).sorted()
                let slot = Dictionary(uniqueKeysWithValues: read.enumerated().map { ($1, $0) })
                let out = read.enumerated().map { (from: $1 * rowElements, to: $0 * filled) }
                let back = changed.map { (from: slot[sources[$0]]! * filled, to: $0 * rowElements) }
                // One buffer for the rows read, reused by every layer.
                var aside = backend.zeros(max(1, read.count * filled), elementType)
                let backend = backend
                func permute(_ storage: inout ComputeBuffer) {
                    backend.copy(storage, into: &aside, runs: out, length: filled)
                    backend.copy(aside, into: &storage, runs: back, length: filled)
                }
                for layer in 0..<layerCount {
                    permute(&keys[layer])
                    permute(&values[layer])
                }
            }
        } else {
            let runs = sources.enumerated().map { (from: $1 * rowElements, to: $0 * rowElements) }
            for layer in 0..<layerCount {
                var newKeys = backend.zeros(sources.count * rowElements, elementType)
                var newValues = backend.zeros(sources.count * rowElements, elementType)
                backend.copy(keys[layer], into: &newKeys, runs: runs, length: filled)
                backend.copy(values[layer], into: &newValues, runs: runs, length: filled)
                keys[layer] = newKeys
                values[layer] = newValues
            }
        }
        mask = sources.flatMap { mask[($0 * capacity)..<(($0 + 1) * capacity)] }
        nextPosition = sources.map { nextPosition[$0] }
        batch = sources.count
    }
}
