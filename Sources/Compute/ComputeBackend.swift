// The seam between the networks and the hardware: every matrix product, attention and row kernel the three
// networks run goes through a `ComputeBackend`. The CPU backend is one implementation; a GPU backend is another.

import Tensors

/// How a backend does its arithmetic.
public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    /// The exact reference: f32 products (weights widened from their stored type) and f32 row kernels, as
    /// PyTorch computes in f32. Generated ids match transformers' `generate`.
    case f32
    /// The fast mode: weights held as bf16, products of bf16 activations with f32 accumulation, row kernels and
    /// residuals in f32, key/value cache in bf16.
    case bf16
    /// Decoding at half the bytes: weight matrices quantised at load to int8 with one scale per output and group of
    /// 64 inputs, activations quantised the same way in each product (integer dot products per group, f32 sums);
    /// attention, row kernels and the bf16 cache as in `bf16`.
    case int8
}

/// A weight matrix `[out, in]` in the form a backend multiplies with (packed, converted or on a device),
/// prepared once at load.
public protocol PreparedMatrix: AnyObject, Sendable {
    var name: String { get }
    var outFeatures: Int { get }
    var inFeatures: Int { get }
    /// Bytes of memory this form holds beyond the checkpoint's mapped file.
    var ownedBytes: Int { get }
}

/// How key and value rows are stored for attention.
public enum KVElementType: Sendable {
    case f32, bf16

    public var size: Int { self == .f32 ? 4 : 2 }
}

/// The shape of one attention call over `items` independent sequences (images, or batch rows of the decoder).
///
/// For item `i` and head `h`, query row `t` (of `queries`) attends to key rows `s < min(keys, limit + t)` whose
/// `valid` flag is set (all, when `valid` is nil), with keys and values of head `h / (heads / kvHeads)`.
public struct AttentionShape: Sendable {
    public var items: Int
    public var queries: Int
    public var keys: Int
    public var heads: Int
    public var kvHeads: Int
    public var headSize: Int
    public var scale: Float
    /// Keys visible to the first query: `keys` for full attention, `keys - queries + 1` for causal.
    public var limit: Int
    /// Floats between query rows (and output rows), and between items' first query rows.
    public var queryStride: Int, queryItemStride: Int
    public var outputStride: Int, outputItemStride: Int
    /// Elements between key (and value) rows, and between items' first key rows.
    public var kvStride: Int, kvItemStride: Int
    public var kvType: KVElementType

    public init(
        items: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headSize: Int, scale: Float, limit: Int,
        queryStride: Int, queryItemStride: Int, outputStride: Int, outputItemStride: Int, kvStride: Int,
        kvItemStride: Int, kvType: KVElementType
    ) {
        precondition(heads % kvHeads == 0, "\(heads) heads cannot share \(kvHeads) key/value heads")
        self.items = items
        self.queries = queries
        self.keys = keys
        self.heads = heads
        self.kvHeads = kvHeads
        self.headSize = headSize
        self.scale = scale
        self.limit = limit
        self.queryStride = queryStride
        self.queryItemStride = queryItemStride
        self.outputStride = outputStride
        self.outputItemStride = outputItemStride
        self.kvStride = kvStride
        self.kvItemStride = kvItemStride
        self.kvType = kvType
    }
}

/// Matrix products, attention and the row kernels of the three networks.
///
/// Activations cross the seam as host `[Float]` arrays, rows contiguous. Implementations are immutable and
/// safe to share between threads; each call may use the backend's own threads.
public protocol ComputeBackend: Sendable {
    var precision: ComputePrecision { get }
    /// How the decoder's key/value cache is stored for this backend's attention.
    var kvElementType: KVElementType { get }
    /// Names the backend, its kernels and its threads, for logs and results.
    var summary: String { get }

    /// Prepares `weight` (`[out, in]`, any stored type) for `linear`.
    func prepare(_ weight: WeightTensor) -> any PreparedMatrix

    /// `x` `[rows, in]` times the weight's transpose, plus `bias` `[out]`: `[rows, out]`.
    func linear(_ x: [Float], rows: Int, weight: any PreparedMatrix, bias: [Float]?) -> [Float]

    /// LayerNorm of each `width` row: (x - mean) / sqrt(var + eps) * weight + bias, biased variance.
    func layerNorm(_ x: [Float], width: Int, weight: [Float], bias: [Float], epsilon: Float) -> [Float]
    /// LLaMA's RMSNorm: x / sqrt(mean(x²) + eps) * weight.
    func rmsNorm(_ x: [Float], width: Int, weight: [Float], epsilon: Float) -> [Float]
    /// Exact GELU in place: x · Φ(x).
    func gelu(_ x: inout [Float])
    /// gate = SiLU(gate) * up, in place.
    func siluMultiply(_ gate: inout [Float], _ up: [Float])
    /// x += y.
    func add(_ x: inout [Float], _ y: [Float])
    /// Adds `bias` `[width]` to every row of x.
    func addBias(_ x: inout [Float], width: Int, bias: [Float])
    /// Rotate-half rotary embedding in place on `[positions.count, heads * headSize]`.
    func rotary(_ x: inout [Float], heads: Int, headSize: Int, positions: [Int], inverseFrequencies: [Float])
    /// Softmax attention for every item and head (see `AttentionShape`). `valid`, when given, holds one flag per
    /// key row (nonzero: the key takes part), the items' flags `validItemStride` apart.
    func attention(
        q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, out: UnsafeMutablePointer<Float>,
        valid: UnsafePointer<UInt8>?, validItemStride: Int, shape: AttentionShape)
}

/// A fully connected layer: a prepared weight, an optional bias and the backend that multiplies.
public struct Linear: Sendable {
    public let weight: any PreparedMatrix
    public let bias: [Float]?
    public let backend: any ComputeBackend

    public var outFeatures: Int { weight.outFeatures }
    public var inFeatures: Int { weight.inFeatures }

    public init(weight: WeightTensor, bias: [Float]?, backend: any ComputeBackend) {
        precondition(weight.shape.count == 2, "\(weight.name): a linear weight is 2-D, not \(weight.shape)")
        precondition(bias == nil || bias!.count == weight.shape[0], "\(weight.name): bias size")
        self.weight = backend.prepare(weight)
        self.bias = bias
        self.backend = backend
    }

    /// `x` is `[rows, inFeatures]`; returns `[rows, outFeatures]`.
    public func callAsFunction(_ x: [Float], rows: Int) -> [Float] {
        precondition(x.count == rows * inFeatures, "\(weight.name): input \(x.count) is not \(rows) x \(inFeatures)")
        return backend.linear(x, rows: rows, weight: weight, bias: bias)
    }
}
