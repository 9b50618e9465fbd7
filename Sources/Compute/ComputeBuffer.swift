// Values a backend computes on: host arrays for the CPU backend, device memory for a GPU backend. Activations,
// the model's norm weights and biases, and the decoder's key/value cache all live in one.

/// `count` elements of f32 or bf16, held on the host or on a backend's device.
///
/// On the host, f32 values sit in `floats` and bf16 values (a key/value cache) in `halves`. On a device, `device`
/// holds them; copies of the buffer share that memory until a backend writes to one of them, which then gets its
/// own (see `uniqueDevice`).
public struct ComputeBuffer: Sendable {
    public let count: Int
    public let elementType: KVElementType
    public var floats: [Float]
    public var halves: [UInt16]
    public var device: DeviceMemory?

    /// f32 values on the host.
    public init(_ values: [Float]) {
        count = values.count
        elementType = .f32
        floats = values
        halves = []
        device = nil
    }

    /// Zeros on the host.
    public init(zeros count: Int, _ elementType: KVElementType) {
        self.count = count
        self.elementType = elementType
        floats = elementType == .f32 ? [Float](repeating: 0, count: count) : []
        halves = elementType == .bf16 ? [UInt16](repeating: 0, count: count) : []
        device = nil
    }

    /// Host memory for `count` elements, not written here (so not yet committed by the system); values are
    /// unspecified until written.
    public init(uninitialized count: Int, _ elementType: KVElementType) {
        self.count = count
        self.elementType = elementType
        floats = elementType == .f32 ? [Float](unsafeUninitializedCapacity: count) { $1 = count } : []
        halves = elementType == .bf16 ? [UInt16](unsafeUninitializedCapacity: count) { $1 = count } : []
        device = nil
    }

    /// Elements held in `memory`.
    public init(device memory: DeviceMemory, count: Int, _ elementType: KVElementType) {
        precondition(memory.bytes >= count * elementType.size, "\(memory.bytes) bytes for \(count) elements")
        self.count = count
        self.elementType = elementType
        floats = []
        halves = []
        device = memory
    }

    public var bytes: Int { count * elementType.size }

    /// The contract of `ComputeBackend.copy`, which every backend checks: f32 into either type or bf16 into bf16,
    /// and every run inside both buffers.
    public static func checkCopy(
        from source: ComputeBuffer, into destination: ComputeBuffer, runs: [(from: Int, to: Int)], length: Int
    ) {
        precondition(
            source.elementType == destination.elementType || source.elementType == .f32,
            "copy: bf16 into an f32 buffer")
        precondition(
            runs.allSatisfy {
                $0.from >= 0 && $0.to >= 0 && $0.from + length <= source.count
                    && $0.to + length <= destination.count
            },
            "copy: a run of \(length) outside \(source.count) or \(destination.count) elements")
    }

    /// True when no other buffer shares this one's device memory (false for a host buffer), so that it can be written
    /// in place.
    public mutating func uniqueDevice() -> Bool {
        guard var memory = device else { return false }
        device = nil
        defer { device = memory }
        return isKnownUniquelyReferenced(&memory)
    }
}
