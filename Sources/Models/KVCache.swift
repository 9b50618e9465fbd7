// Keys and values of every position seen so far, per layer and per sequence, with the attention mask that
// hides left padding.

/// The decoder's memory of a batch of sequences. Rows can be reordered (beam search) and grow by one token per step.
public struct KVCache: Sendable {
    public let layerCount: Int
    public let kvWidth: Int  // kvHeadCount * headSize
    public private(set) var batch: Int
    public private(set) var capacity: Int
    /// Positions filled so far (the same for every row: rows are left-padded to one length).
    public private(set) var length = 0
    /// [layer][row * capacity * kvWidth ...]
    var keys: [[Float]]
    var values: [[Float]]
    /// [row * capacity + position]: whether that position is a real token (false for left padding).
    public private(set) var mask: [Bool]
    /// The rotary position the next token of each row takes.
    public private(set) var nextPosition: [Int]

    public init(layerCount: Int, kvWidth: Int, batch: Int, capacity: Int) {
        self.layerCount = layerCount
        self.kvWidth = kvWidth
        self.batch = batch
        self.capacity = capacity
        keys = Array(repeating: [Float](repeating: 0, count: batch * capacity * kvWidth), count: layerCount)
        values = keys
        mask = [Bool](repeating: false, count: batch * capacity)
        nextPosition = [Int](repeating: 0, count: batch)
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
                mask[row * capacity + length + t] = real
                positions[row * count + t] = real ? nextPosition[row] : 1
                if real { nextPosition[row] += 1 }
            }
        }
        return positions
    }

    mutating func store(layer: Int, keys newKeys: [Float], values newValues: [Float], count: Int) {
        for row in 0..<batch {
            for t in 0..<count {
                let destination = (row * capacity + length + t) * kvWidth
                let source = (row * count + t) * kvWidth
                for i in 0..<kvWidth {
                    keys[layer][destination + i] = newKeys[source + i]
                    values[layer][destination + i] = newValues[source + i]
                }
            }
        }
    }

    mutating func advance(by count: Int) {
        length += count
    }

    /// Rebuilds the cache so that row `i` holds what row `sources[i]` held (beam search keeps, drops and
    /// duplicates hypotheses). `sources` may be longer or shorter than the current batch.
    public mutating func reorder(_ sources: [Int]) {
        let stride = capacity * kvWidth
        for layer in 0..<layerCount {
            var newKeys = [Float](repeating: 0, count: sources.count * stride)
            var newValues = newKeys
            for (row, source) in sources.enumerated() {
                newKeys.replaceSubrange(
                    (row * stride)..<((row + 1) * stride),
                    with: keys[layer][(source * stride)..<((source + 1) * stride)])
                newValues.replaceSubrange(
                    (row * stride)..<((row + 1) * stride),
                    with: values[layer][(source * stride)..<((source + 1) * stride)])
            }
            keys[layer] = newKeys
            values[layer] = newValues
        }
        mask = sources.flatMap { mask[($0 * capacity)..<(($0 + 1) * capacity)] }
        nextPosition = sources.map { nextPosition[$0] }
        batch = sources.count
    }
}
