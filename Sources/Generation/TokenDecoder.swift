// The language model as generation sees it: prefill a batch of embedded prompts, then step one token at a time.

/// What the decoding loops need from a model. `VisionLanguageModel` provides it; tests can fake it.
public protocol TokenDecoder {
    var vocabularySize: Int { get }
    var eosTokenID: Int { get }
    /// Runs the left-padded prompts (`[batch, length, hidden]`, `valid` false on padding) and returns the logits
    /// of each row's last position, `[batch, vocab]`.
    mutating func prefill(_ embeddings: [Float], length: Int, valid: [Bool], batch: Int) -> [Float]
    /// Feeds one token per row and returns the next logits.
    mutating func step(_ tokens: [Int]) -> [Float]
    /// Makes row `i` continue from what row `sources[i]` held.
    mutating func reorder(_ sources: [Int])
}
