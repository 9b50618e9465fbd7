// libcurl and zlib, as the image sources use them: curl's version and protocols, and a raw-deflate round trip.

import CCurl
import CZlib
import Testing

@Suite struct TransferLibraryTests {
    @Test func libcurlSpeaksHTTPAndHTTPS() throws {
        let info = try #require(infmllm_curl_version())
        #expect(info.pointee.version_num >= 0x07_55_00, "7.85 or newer, for CURLOPT_PROTOCOLS_STR")
        var protocols: Set<String> = []
        var cursor = info.pointee.protocols
        while let name = cursor?.pointee {
            protocols.insert(String(cString: name))
            cursor = cursor! + 1
        }
        #expect(protocols.isSuperset(of: ["http", "https"]))
    }

    @Test func rawDeflateRoundTrips() throws {
        let input = [UInt8](String(repeating: "a caption, again and again. ", count: 50).utf8)
        var compressed = [UInt8](repeating: 0, count: input.count + 64)
        var stream = z_stream()
        let started = deflateInit2_(
            &stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        #expect(started == Z_OK)
        let written: Int = input.withUnsafeBufferPointer { source in
            compressed.withUnsafeMutableBufferPointer { target in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = uInt(target.count)
                _ = deflate(&stream, Z_FINISH)
                return Int(stream.total_out)
            }
        }
        deflateEnd(&stream)
        #expect(written < input.count / 4)
        var output = [UInt8](repeating: 0, count: input.count)
        var inflater = z_stream()
        #expect(infmllm_inflate_raw_init(&inflater) == Z_OK)
        let status: Int32 = compressed.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                inflater.next_in = source.baseAddress
                inflater.avail_in = uInt(written)
                inflater.next_out = target.baseAddress
                inflater.avail_out = uInt(target.count)
                return inflate(&inflater, Z_FINISH)
            }
        }
        inflateEnd(&inflater)
        #expect(status == Z_STREAM_END && output == input)
    }
}
