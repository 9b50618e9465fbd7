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
/// Values cross the seam as `ComputeBuffer`s in the backend's own memory: a GPU backend keeps them on the device from
/// the first layer to the last, and only `buffer(_:)` and `values(_:)` copy between host and device. Implementations
/// are immutable and safe to share between threads; each call may use the backend's own threads.
public protocol ComputeBackend: Sendable {
    var precision: ComputePrecision { get }
    /// How the decoder's key/value cache is stored for this backend's attention.
    var kvElementType: KVElementType { get }
    /// Names the backend, its kernels and its threads, for logs and results.
    var summary: String { get }
    /// What decides the bits of its results, and nothing else: the device kind, the mode and the kernels (not the
    /// threads, which split work without changing any sum). Keys of computed values that are kept (visual tokens).
    var arithmetic: String { get }

    /// Prepares `weight` (`[out, in]`, any stored type) for `linear`.
    func prepare(_ weight: WeightTensor) -> any PreparedMatrix

    /// Host values in the backend's memory (copied to a device; kept as they are on the CPU).
    func buffer(_ values: [Float]) -> ComputeBuffer
    /// `count` zeros of `type` in the backend's memory.
    func zeros(_ count: Int, _ type: KVElementType) -> ComputeBuffer
    /// Memory for `count` elements of `type` whose values are unspecified until written: the key/value arena, whose
    /// pages the system commits only as positions are first written.
    func uninitialized(_ count: Int, _ type: KVElementType) -> ComputeBuffer
    /// The f32 values of `x` on the host.
    func values(_ x: ComputeBuffer) -> [Float]

    /// `x` `[rows, in]` times the weight's transpose, plus `bias` `[out]`: `[rows, out]`.
    func linear(_ x: ComputeBuffer, rows: Int, weight: any PreparedMatrix, bias: ComputeBuffer?) -> ComputeBuffer

    /// LayerNorm of each `width` row: (x - mean) / sqrt(var + eps) * weight + bias, biased variance.
    func layerNorm(_ x: ComputeBuffer, width: Int, weight: ComputeBuffer, bias: ComputeBuffer, epsilon: Float)
        -> ComputeBuffer
    /// LLaMA's RMSNorm: x / sqrt(mean(x²) + eps) * weight.
    func rmsNorm(_ x: ComputeBuffer, width: Int, weight: ComputeBuffer, epsilon: Float) -> ComputeBuffer
    /// Exact GELU in place: x · Φ(x).
    func gelu(_ x: inout ComputeBuffer)
    /// gate = SiLU(gate) * up, in place.
    func siluMultiply(_ gate: inout ComputeBuffer, _ up: ComputeBuffer)
    /// x += y.
    func add(_ x: inout ComputeBuffer, _ y: ComputeBuffer)
    /// Adds `bias` `[width]` to every `width` elements of x.
    func addBias(_ x: inout ComputeBuffer, width: Int, bias: ComputeBuffer)
    /// Rotate-half rotary embedding in place on `[positions.count, heads * headSize]`.
    func rotary(
        _ x: inout ComputeBuffer, heads: Int, headSize: Int, positions: [Int], inverseFrequencies: ComputeBuffer)
    /// Each `[3, size, size]` image's `patch` x `patch` patches as rows (row-major over the grid), a row holding the
    /// patch's pixels in (channel, y, x) order, so that the patch convolution is a matrix product.
    func patchRows(_ images: [[Float]], size: Int, patch: Int) -> ComputeBuffer
    /// Rows `rows` of `x` (`width` elements each), in that order.
    func gatherRows(_ x: ComputeBuffer, width: Int, rows: [Int]) -> ComputeBuffer
    /// The pool-adapter's pooling: for each of `images` blocks of `1 + grid²` rows of `width` (the first row, cls,
    /// skipped), the mean of each `grid / pool` square of patch rows, `pool²` rows per image, row-major.
    func averagePool(_ x: ComputeBuffer, images: Int, grid: Int, pool: Int, width: Int) -> ComputeBuffer
    /// Copies runs of `length` elements from `source` into `destination` (`runs`: element offsets in each), converting
    /// f32 to the destination's type. The runs' destinations must not overlap (a GPU copies them in parallel).
    func copy(_ source: ComputeBuffer, into destination: inout ComputeBuffer, runs: [(from: Int, to: Int)], length: Int)
    /// Softmax attention for every item and head (see `AttentionShape`), queries from `q` at element `offsets.q`,
    /// keys and values from `k` and `v` at `offsets.k` and `offsets.v` (f32 activations or a bf16 cache). `valid`,
    /// when given, holds one flag per key row (nonzero: the key takes part), the items' flags `validItemStride`
    /// apart. Returns `[items * queries, heads * headSize]` when the shape's output strides are dense.
    func attention(
        q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, offsets: (q: Int, k: Int, v: Int), valid: [UInt8]?,
        validItemStride: Int, shape: AttentionShape
    ) -> ComputeBuffer
    /// Softmax attention for every segment and head (see `SegmentedAttention`): `[layout.rows, heads * headSize]`,
    /// each segment's rows exactly what `attention` gives for that segment alone (`layout.shape(of:)`).
    func segmentedAttention(q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, _ layout: SegmentedAttention)
        -> ComputeBuffer
}

extension ComputeBackend {
    // Host-array forms of the row kernels, for code and tests that hold plain arrays.

    public func layerNorm(_ x: [Float], width: Int, weight: [Float], bias: [Float], epsilon: Float) -> [Float] {
        values(layerNorm(buffer(x), width: width, weight: buffer(weight), bias: buffer(bias), epsilon: epsilon))
    }

    public func rmsNorm(_ x: [Float], width: Int, weight: [Float], epsilon: Float) -> [Float] {
        values(rmsNorm(buffer(x), width: width, weight: buffer(weight), epsilon: epsilon))
    }

    public func gelu(_ x: inout [Float]) {
        var b = buffer(x)
        gelu(&b)
        x = values(b)
    }

    public func siluMultiply(_ gate: inout [Float], _ up: [Float]) {
        var b = buffer(gate)
        siluMultiply(&b, buffer(up))
        gate = values(b)
    }

    public func add(_ x: inout [Float], _ y: [Float]) {
        var b = buffer(x)
        add(&b, buffer(y))
        x = values(b)
    }

    public func addBias(_ x: inout [Float], width: Int, bias: [Float]) {
        var b = buffer(x)
        addBias(&b, width: width, bias: buffer(bias))
        x = values(b)
    }

    public func rotary(_ x: inout [Float], heads: Int, headSize: Int, positions: [Int], inverseFrequencies: [Float]) {
        var b = buffer(x)
        rotary(
            &b, heads: heads, headSize: headSize, positions: positions, inverseFrequencies: buffer(inverseFrequencies))
        x = values(b)
    }
}

/// A fully connected layer: a prepared weight, an optional bias and the backend that multiplies.
public struct Linear: Sendable {
    public let weight: any PreparedMatrix
    public let bias: ComputeBuffer?
    public let backend: any ComputeBackend

    public var outFeatures: Int { weight.outFeatures }
    public var inFeatures: Int { weight.inFeatures }

    public init(weight: WeightTensor, bias: [Float]?, backend: any ComputeBackend) {
        precondition(weight.shape.count == 2, "\(weight.name): a linear weight is 2-D, not \(weight.shape)")
        precondition(bias == nil || bias!.count == weight.shape[0], "\(weight.name): bias size")
        self.weight = backend.prepare(weight)
        self.bias = bias.map(backend.buffer)
        self.backend = backend
    }

    /// `x` is `[rows, inFeatures]`; returns `[rows, outFeatures]`.
    public func callAsFunction(_ x: ComputeBuffer, rows: Int) -> ComputeBuffer {
        precondition(x.count == rows * inFeatures, "\(weight.name): input \(x.count) is not \(rows) x \(inFeatures)")
        return backend.linear(x, rows: rows, weight: weight, bias: bias)
    }

    /// The same on host arrays.
    public func callAsFunction(_ x: [Float], rows: Int) -> [Float] {
        backend.values(self(backend.buffer(x), rows: rows))
    }
}
