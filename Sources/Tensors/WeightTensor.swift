// One named tensor of a checkpoint: shape, element type and where its bytes are.

/// A checkpoint tensor, stored in its file's type and read as Float on demand.
///
/// The bytes belong to `owner` (a memory-mapped file or an in-memory buffer), which the tensor keeps alive.
public struct WeightTensor: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    public let dtype: DType
    /// The first element; valid while `owner` lives. Read-only.
    public let base: UnsafeRawPointer
    let owner: AnyObject

    public init(name: String, shape: [Int], dtype: DType, base: UnsafeRawPointer, owner: AnyObject) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.base = base
        self.owner = owner
    }

    public var count: Int { shape.reduce(1, *) }

    /// The elements of `shape`, or nil when their count (or their bytes at `size` each) overflows an Int: what a
    /// damaged file's header may claim, checked before anything is computed from it.
    public static func elementCount(of shape: [Int], size: Int = 1) -> Int? {
        var count = size
        for extent in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            if overflow || extent < 0 { return nil }
            count = product
        }
        return count / max(size, 1)
    }

    /// The same elements under another shape with the same count (a view, no copy).
    public func reshaped(_ newShape: [Int]) -> WeightTensor {
        precondition(newShape.reduce(1, *) == count, "\(name): cannot view \(shape) as \(newShape)")
        return WeightTensor(name: name, shape: newShape, dtype: dtype, base: base, owner: owner)
    }

    /// All elements as Float (a copy).
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            dtype.convert(base, to: buffer.baseAddress!, count: count)
            initialized = count
        }
    }

    /// Elements `range` (flat indices) converted into `destination`.
    public func convert(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        dtype.convert(base + range.lowerBound * dtype.size, to: destination, count: range.count)
    }

    /// The elements as Float without copying when they are stored as f32.
    public var f32Pointer: UnsafePointer<Float>? {
        dtype == .f32 ? base.assumingMemoryBound(to: Float.self) : nil
    }
}

/// Bytes owned in memory, for tensors made by code (converted, merged) rather than mapped from a file.
public final class OwnedBytes: @unchecked Sendable {
    // Invariant: written only before the first WeightTensor referring to it is handed out.
    public let pointer: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }

    /// A tensor holding `values`, stored as `dtype` (rounded to nearest even for f16/bf16).
    public static func tensor(name: String, shape: [Int], values: [Float], as dtype: DType = .f32) -> WeightTensor {
        let encoded = dtype.encode(values)
        let bytes = OwnedBytes(count: encoded.count)
        encoded.withUnsafeBytes { source in
            if let base = source.baseAddress { bytes.pointer.copyMemory(from: base, byteCount: source.count) }
        }
        return WeightTensor(name: name, shape: shape, dtype: dtype, base: UnsafeRawPointer(bytes.pointer), owner: bytes)
    }
}
