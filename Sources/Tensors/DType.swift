// Element types of checkpoint tensors and their conversion to Float, which all compute uses.

/// How a tensor's elements are stored.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        }
    }

    /// The PyTorch storage class that pickled checkpoints name for this type.
    public var torchStorage: String {
        switch self {
        case .f32: "FloatStorage"
        case .f16: "HalfStorage"
        case .bf16: "BFloat16Storage"
        }
    }

    /// Converts `count` elements at `source` (in this type, little-endian) to Float at `destination`.
    public func convert(_ source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .f32:
            destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        case .bf16:
            let halves = source.assumingMemoryBound(to: UInt16.self)
            for index in 0..<count { destination[index] = Float(bitPattern: UInt32(halves[index]) << 16) }
        case .f16:
            let halves = source.assumingMemoryBound(to: UInt16.self)
            for index in 0..<count { destination[index] = Float(Float16(bitPattern: halves[index])) }
        }
    }

    /// The bytes of `values` in this type, rounding to nearest even as PyTorch does.
    public func encode(_ values: [Float]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * size)
        for value in values {
            switch self {
            case .f32:
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case .bf16:
                withUnsafeBytes(of: Self.bfloat16Bits(value).littleEndian) { bytes.append(contentsOf: $0) }
            case .f16:
                withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        return bytes
    }

    /// Float to bfloat16 with round-to-nearest-even; NaN stays NaN.
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x0040 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
