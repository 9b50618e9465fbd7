// A LlamaDecoder and its KV cache, driven token by token: the `TokenDecoder` that generation uses.

import Models

/// One batch's decoding state over a shared, immutable decoder.
public struct DecoderSession: TokenDecoder {
    let decoder: LlamaDecoder
    let capacity: Int
    var cache: KVCache
    /// Time spent in `prefill` and in `step`, and the steps run.
    public private(set) var prefillTime = Duration.zero
    public private(set) var decodeTime = Duration.zero
    public private(set) var steps = 0

    /// - Parameter capacity: the most positions any row will hold (prompt plus new tokens).
    public init(decoder: LlamaDecoder, capacity: Int) {
        self.decoder = decoder
        self.capacity = capacity
        cache = decoder.makeCache(batch: 0, capacity: capacity)
    }

    public var vocabularySize: Int { decoder.configuration.vocabularySize }
    public var eosTokenID: Int { decoder.configuration.eosTokenID }

    public mutating func prefill(_ embeddings: [Float], length: Int, valid: [Bool], batch: Int) -> [Float] {
        let start = ContinuousClock.now
        defer { prefillTime += ContinuousClock.now - start }
        cache = decoder.makeCache(batch: batch, capacity: capacity)
        return decoder.forward(embeddings, count: length, valid: valid, cache: &cache)
    }

    public mutating func step(_ tokens: [Int]) -> [Float] {
        let start = ContinuousClock.now
        defer {
            decodeTime += ContinuousClock.now - start
            steps += 1
        }
        return decoder.forward(
            decoder.embed(tokens), count: 1, valid: [Bool](repeating: true, count: tokens.count), cache: &cache)
    }

    public mutating func reorder(_ sources: [Int]) {
        let start = ContinuousClock.now
        defer { decodeTime += ContinuousClock.now - start }
        cache.reorder(sources)
    }
}
