// A zip member's bytes from its stored or deflated data, checked against its CRC-32: for members of local archives
// (sliced from the mapped file) and of remote ones (read with a range request, their local header checked first).

import CZlib
import Foundation
import Tensors

/// Decoding of zip members' data.
enum ZipMember {
    /// The member whose data is `data` (stored, method 0, or deflated, 8), of `size` bytes with the CRC-32 `crc32`.
    ///
    /// - Throws: `ImageSourceError` naming `uri`: another method, sizes that disagree, damaged data or a wrong CRC.
    static func decode(
        _ data: UnsafeRawBufferPointer, method: Int, size: Int, crc32 expected: UInt32, uri: String
    ) throws -> [UInt8] {
        func fail(_ reason: String) -> ImageSourceError { ImageSourceError(source: uri, reason: reason) }
        let bytes: [UInt8]
        switch method {
        case 0:
            // Stored: the data is the member, so a limit checked on `size` must hold for it too.
            guard data.count == size else {
                throw fail("the stored member's sizes disagree (\(data.count) bytes stored, \(size) declared)")
            }
            bytes = Array(data)
        case 8: bytes = try inflate(data, size: size, uri: uri)
        default: throw fail("zip compression method \(method) is not supported (stored or deflated only)")
        }
        guard crc32(of: bytes) == expected else { throw fail("the member is damaged: its CRC-32 does not match") }
        return bytes
    }

    /// CRC-32 of `bytes`, in runs that zlib's 32-bit lengths hold.
    static func crc32(of bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            var crc: uLong = 0
            for start in stride(from: 0, to: buffer.count, by: 1 << 30) {
                let count = min(1 << 30, buffer.count - start)
                crc = CZlib.crc32(crc, buffer.baseAddress! + start, uInt(count))
            }
            return UInt32(crc)
        }
    }

    /// Raw deflate, as zip entries hold it, into exactly `size` bytes. Inflating reads only as much of `data` as
    /// the stream takes, so a compressed size past zlib's 32-bit lengths (which a member of at most `size` bytes
    /// never needs) is cut to them.
    static func inflate(_ data: UnsafeRawBufferPointer, size: Int, uri: String) throws -> [UInt8] {
        guard size <= Int(UInt32.max) else {
            throw ImageSourceError(source: uri, reason: "\(size) bytes: over the 4 GiB zlib inflates at once")
        }
        var output = [UInt8](repeating: 0, count: size)
        var stream = z_stream()
        guard infmllm_inflate_raw_init(&stream) == Z_OK else {
            throw ImageSourceError(source: uri, reason: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        let status: Int32 = output.withUnsafeMutableBytes { out in
            stream.next_in = UnsafeMutablePointer(mutating: data.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(min(data.count, Int(UInt32.max)))
            stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(size)
            return CZlib.inflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
            throw ImageSourceError(source: uri, reason: "the deflated member is damaged: \(message)")
        }
        return output
    }

    /// How a remote member's local header (`local`, read from `bytes`, which hold at least its first 30 bytes and
    /// its name) differs from what the central directory said of it when the archive was listed (`name`, `entry`),
    /// or nil when it agrees. Sizes and the CRC are compared where the local header holds them (not in a descriptor
    /// after the data, nor in a ZIP64 extra field).
    static func headerMismatch(
        _ local: ZipDirectory.LocalHeader, in bytes: [UInt8], name: String, entry: RemoteZipEntry
    ) -> String? {
        // Decoded as the directory's name was (a name in another encoding than UTF-8 reads alike in both).
        let localName = String(
            decoding: bytes.dropFirst(ZipDirectory.LocalHeader.size).prefix(local.nameLength), as: UTF8.self)
        guard localName == name else { return "the local header names \(localName), not \(name)" }
        if local.flags & 1 != 0 { return "the member is encrypted" }
        if local.flags & 8 == 0 {
            let packed = local.packedSize, size = local.uncompressedSize
            if local.crc32 != entry.crc32 { return "the local header's CRC-32 is another" }
            if packed != 0xFFFF_FFFF && packed != entry.packedSize || size != 0xFFFF_FFFF && size != entry.size {
                return "the local header's sizes are others (\(packed) and \(size) bytes)"
            }
        }
        return nil
    }
}

/// Where a member of a remote zip archive lies and what it holds, as its central directory said when the archive
/// was listed: a worker reads its local header and data with one range request and checks both against this.
public struct RemoteZipEntry: Sendable, Equatable {
    /// Where the member's local header starts.
    public let header: Int
    /// Its bytes as stored (deflated or not), and uncompressed.
    public let packedSize: Int
    public let size: Int
    public let crc32: UInt32

    public init(header: Int, packedSize: Int, size: Int, crc32: UInt32) {
        self.header = header
        self.packedSize = packedSize
        self.size = size
        self.crc32 = crc32
    }
}
