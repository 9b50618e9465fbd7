// Attention over sequences of different lengths in one call: each segment is one sequence's new query rows and
// the key rows it sees, wherever in the key/value memory they are. The decoder's continuous batches (prompt chunks
// beside decoding rows) go through it; a sequence's result never depends on the other segments of the call.

/// One sequence's part of a segmented attention call.
///
/// Query row `t` (of `queries`) attends to key rows `keyRow ..< keyRow + min(keys, limit + t)`.
public struct AttentionSegment: Sendable, Equatable {
    /// The first query row in `q` (and output row in the result).
    public var queryRow: Int
    public var queries: Int
    /// The first key (and value) row in `k` and `v`.
    public var keyRow: Int
    public var keys: Int
    /// Keys visible to the first query: `keys - queries + 1` for causal attention over a growing sequence.
    public var limit: Int

    public init(queryRow: Int, queries: Int, keyRow: Int, keys: Int, limit: Int) {
        self.queryRow = queryRow
        self.queries = queries
        self.keyRow = keyRow
        self.keys = keys
        self.limit = limit
    }
}

/// The heads and row layout every segment of a call shares.
public struct SegmentedAttention: Sendable {
    public var heads: Int
    public var kvHeads: Int
    public var headSize: Int
    public var scale: Float
    /// Floats between query rows; the result's rows are `heads * headSize` floats apart.
    public var queryStride: Int
    /// Elements between key (and value) rows.
    public var kvStride: Int
    public var kvType: KVElementType
    public var segments: [AttentionSegment]

    public init(
        heads: Int, kvHeads: Int, headSize: Int, scale: Float, queryStride: Int, kvStride: Int, kvType: KVElementType,
        segments: [AttentionSegment]
    ) {
        precondition(heads % kvHeads == 0, "\(heads) heads cannot share \(kvHeads) key/value heads")
        self.heads = heads
        self.kvHeads = kvHeads
        self.headSize = headSize
        self.scale = scale
        self.queryStride = queryStride
        self.kvStride = kvStride
        self.kvType = kvType
        self.segments = segments
    }

    /// Rows of the result: up to the last query row of any segment.
    public var rows: Int { segments.map { $0.queryRow + $0.queries }.max() ?? 0 }

    /// One segment as a single-item `AttentionShape` with a dense output.
    public func shape(of segment: AttentionSegment) -> AttentionShape {
        AttentionShape(
            items: 1, queries: segment.queries, keys: segment.keys, heads: heads, kvHeads: kvHeads, headSize: headSize,
            scale: scale, limit: segment.limit, queryStride: queryStride,
            queryItemStride: segment.queries * queryStride, outputStride: heads * headSize,
            outputItemStride: segment.queries * heads * headSize, kvStride: kvStride,
            kvItemStride: segment.keys * kvStride, kvType: kvType)
    }
}

extension ComputeBackend {
    /// Every segment through `attention(q:k:v:offsets:...)`, one call each, copied into one result: the form any
    /// backend can run. A backend may do the same work in one pass (the CPU backend does), with the same values.
    public func segmentedAttentionBySegment(
        q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, _ layout: SegmentedAttention
    )
        -> ComputeBuffer
    {
        let width = layout.heads * layout.headSize
        var result = zeros(layout.rows * width, .f32)
        for segment in layout.segments where segment.queries > 0 {
            let part = attention(
                q: q, k: k, v: v,
                offsets: (
                    segment.queryRow * layout.queryStride, segment.keyRow * layout.kvStride,
                    segment.keyRow * layout.kvStride
                ),
                valid: nil, validItemStride: 0, shape: layout.shape(of: segment))
            copy(part, into: &result, runs: [(from: 0, to: segment.queryRow * width)], length: segment.queries * width)
        }
        return result
    }
}
