// A page's bytes as written, from the bytes stored: Snappy and LZ4 blocks (ours), gzip (zlib) or Zstandard (libzstd). The page
// header's uncompressed size is the exact output size, so nothing grows without bound.

import CZlib
import CZstd

enum PageDecompression {
    /// The most one page may hold uncompressed: larger sizes in a header are damage (writers cut pages at about
    /// 1 MiB; a single huge string value is the exception this leaves room for).
    static let largestPage = 1 << 30

    static func decompress(_ stored: [UInt8], codec: Codec, size: Int) throws -> [UInt8] {
        guard size <= largestPage else { throw ParquetError(description: "a page of \(size) bytes") }
        switch codec {
        case .uncompressed:
            guard stored.count == size else {
                throw ParquetError(description: "a page of \(stored.count) bytes where its header says \(size)")
            }
            return stored
        case .snappy:
            do {
                return try Snappy.decompress(stored, expected: size)
            } catch let error as BlockOutput.Error {
                throw ParquetError(description: "a damaged SNAPPY page: \(error)")
            }
        case .lz4Raw:
            do {
                return try LZ4Block.decompress(stored, expected: size)
            } catch let error as BlockOutput.Error {
                throw ParquetError(description: "a damaged LZ4_RAW page: \(error)")
            }
        case .gzip: return try inflate(stored, size: size)
        case .zstd: return try zstd(stored, size: size)
        case .lzo, .brotli, .lz4:
            throw ParquetError(
                description: "pages compressed with \(codec.name), which this reader does not decode "
                    + "(it reads UNCOMPRESSED, SNAPPY, GZIP, ZSTD and LZ4_RAW)")
        }
    }

    private static func inflate(_ stored: [UInt8], size: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        var stream = z_stream()
        guard infmllm_inflate_gzip_init(&stream) == Z_OK else {
            throw ParquetError(description: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var input = stored
        let result = input.withUnsafeMutableBufferPointer { input in
            output.withUnsafeMutableBufferPointer { output in
                stream.next_in = input.baseAddress
                stream.avail_in = uInt(input.count)
                stream.next_out = output.baseAddress
                stream.avail_out = uInt(output.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard result == Z_STREAM_END, Int(stream.total_out) == size else {
            throw ParquetError(
                description: "a damaged GZIP page (zlib \(result), \(stream.total_out) of \(size) bytes)")
        }
        return output
    }

    private static func zstd(_ stored: [UInt8], size: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        let written = output.withUnsafeMutableBytes { output in
            stored.withUnsafeBytes { input in
                ZSTD_decompress(output.baseAddress, output.count, input.baseAddress, input.count)
            }
        }
        if ZSTD_isError(written) != 0 {
            throw ParquetError(description: "a damaged ZSTD page: \(String(cString: ZSTD_getErrorName(written)))")
        }
        guard written == size else {
            throw ParquetError(description: "a ZSTD page of \(written) bytes where its header says \(size)")
        }
        return output
    }
}
