// Where the scheduler keeps visual tokens between jobs: the pool-adapter's output for an image, keyed by the image's
// content, the vision weights, the preprocessing and the arithmetic, so that a second job over the same images skips
// the vision encoder.

import Imaging

/// A store of visual tokens (`[visualTokens, hidden]` f32, exactly as computed) by key. Implementations are safe to
/// use from several threads and processes; a missing, damaged or foreign entry is a miss, never an error.
public protocol VisualEmbeddingCache: AnyObject, Sendable {
    /// The tokens stored under `key` with `count` values, or nil.
    func tokens(for key: String, count: Int) -> [Float]?
    /// Stores `tokens` under `key`; failures (a full disk, say) are the cache's own business.
    func store(_ tokens: [Float], for key: String)
}

/// Keys of a `VisualEmbeddingCache`.
public enum VisualEmbeddingCacheKey {
    /// The key of an image's tokens: its content digest with the model's vision `fingerprint` (vision weights,
    /// preprocessing, compute mode and kernels), hashed so that it is a fixed-length file name.
    public static func make(imageSHA256: String, fingerprint: String) -> String {
        SHA256.hex(of: Array("infmllm visual tokens v1\u{0}\(fingerprint)\u{0}\(imageSHA256)".utf8))
    }
}
