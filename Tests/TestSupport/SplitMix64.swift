// Deterministic randomness for the bounded fuzz tests (the engine's SplitMix64) and unique test names.

@_exported import struct Tensors.SplitMix64

extension UInt64 {
    /// The value in lower-case hex, for unique database, queue and file names in tests.
    public var hex: String { String(self, radix: 16) }
}
