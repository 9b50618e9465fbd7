// An allocation on a device, owned by the buffers that use it.

/// Memory on a device, returned to its owner when the last buffer using it goes.
public final class DeviceMemory: Sendable {
    public let address: UInt64
    public let bytes: Int
    private let release: @Sendable (UInt64, Int) -> Void

    public init(address: UInt64, bytes: Int, release: @escaping @Sendable (UInt64, Int) -> Void) {
        self.address = address
        self.bytes = bytes
        self.release = release
    }

    deinit { release(address, bytes) }
}
