// Each C library the package links is reachable from Swift and does real work.

import CJPEG
import CLibPQ
import COpenBLAS
import CPNG
import CRabbitMQ
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SystemLibraryTests {
    @Test func openBLASMultipliesMatrices() {
        // [2x3] · [3x2] = [2x2], row-major.
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [7, 8, 9, 10, 11, 12]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, &c, 2)
        #expect(c == [58, 64, 139, 154])
    }

    @Test func librabbitmqReportsItsVersion() {
        let version = String(cString: amqp_version())
        #expect(version.hasPrefix("0."))
        #expect(amqp_version_number() >= 0x000B_0000)  // 0.11 or later
    }

    @Test func libpqIsVersion15OrLater() {
        #expect(PQlibVersion() >= 150_000)
        #expect(PQisthreadsafe() == 1)
    }

    @Test func libjpegEncodesAndDecodesAnImage() throws {
        let width = 16, height = 8
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for index in pixels.indices { pixels[index] = index % 3 == 0 ? 200 : 40 }  // reddish
        let encoded = try JPEGRoundTrip.encode(pixels, width: width, height: height)
        #expect(encoded.prefix(2) == [0xFF, 0xD8])
        let (decoded, decodedWidth, decodedHeight) = try JPEGRoundTrip.decode(encoded)
        #expect(decodedWidth == width && decodedHeight == height)
        let maxDifference = zip(decoded, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(maxDifference <= 8, "lossy, but a flat colour survives within a few levels")
    }

    @Test func libpngEncodesAndDecodesAnImageLosslessly() throws {
        let width = 5, height = 3
        let pixels = (0..<(width * height * 3)).map { UInt8(($0 * 37) % 256) }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        var size: png_alloc_size_t = 0
        #expect(png_image_write_to_memory(&image, nil, &size, 0, pixels, 0, nil) != 0)
        var encoded = [UInt8](repeating: 0, count: Int(size))
        #expect(png_image_write_to_memory(&image, &encoded, &size, 0, pixels, 0, nil) != 0)
        png_image_free(&image)

        var reader = png_image()
        reader.version = UInt32(PNG_IMAGE_VERSION)
        #expect(png_image_begin_read_from_memory(&reader, encoded, Int(size)) != 0)
        #expect(reader.width == UInt32(width) && reader.height == UInt32(height))
        reader.format = UInt32(PNG_FORMAT_RGB)
        var decoded = [UInt8](repeating: 0, count: pixels.count)
        #expect(png_image_finish_read(&reader, nil, &decoded, 0, nil) != 0)
        #expect(decoded == pixels)
    }
}

/// Minimal libjpeg compress/decompress through memory, for proving the binding; valid input only, since
/// libjpeg's default error handler exits the process (the image decoder uses a C shim for that).
enum JPEGRoundTrip {
    struct Failure: Error {}

    static func encode(_ pixels: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        let errors = UnsafeMutablePointer<jpeg_error_mgr>.allocate(capacity: 1)
        let info = UnsafeMutablePointer<jpeg_compress_struct>.allocate(capacity: 1)
        defer { errors.deallocate(); info.deallocate() }
        info.initialize(to: jpeg_compress_struct())
        info.pointee.err = jpeg_std_error(errors)
        jpeg_CreateCompress(info, JPEG_LIB_VERSION, MemoryLayout<jpeg_compress_struct>.size)
        defer { jpeg_destroy_compress(info) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        jpeg_mem_dest(info, &buffer, &size)
        info.pointee.image_width = JDIMENSION(width)
        info.pointee.image_height = JDIMENSION(height)
        info.pointee.input_components = 3
        info.pointee.in_color_space = JCS_RGB
        jpeg_set_defaults(info)
        jpeg_set_quality(info, 95, 1)
        jpeg_start_compress(info, 1)
        try pixels.withUnsafeBufferPointer { base in
            for row in 0..<height {
                var rowPointer: JSAMPROW? = UnsafeMutablePointer(mutating: base.baseAddress! + row * width * 3)
                guard jpeg_write_scanlines(info, &rowPointer, 1) == 1 else { throw Failure() }
            }
        }
        jpeg_finish_compress(info)
        guard let buffer else { throw Failure() }
        defer { free(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    static func decode(_ data: [UInt8]) throws -> ([UInt8], Int, Int) {
        let errors = UnsafeMutablePointer<jpeg_error_mgr>.allocate(capacity: 1)
        let info = UnsafeMutablePointer<jpeg_decompress_struct>.allocate(capacity: 1)
        defer { errors.deallocate(); info.deallocate() }
        info.initialize(to: jpeg_decompress_struct())
        info.pointee.err = jpeg_std_error(errors)
        jpeg_CreateDecompress(info, JPEG_LIB_VERSION, MemoryLayout<jpeg_decompress_struct>.size)
        defer { jpeg_destroy_decompress(info) }
        return try data.withUnsafeBufferPointer { input in
            jpeg_mem_src(info, input.baseAddress, UInt(input.count))
            guard jpeg_read_header(info, 1) == JPEG_HEADER_OK else { throw Failure() }
            info.pointee.out_color_space = JCS_RGB
            jpeg_start_decompress(info)
            let width = Int(info.pointee.output_width), height = Int(info.pointee.output_height)
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            try pixels.withUnsafeMutableBufferPointer { output in
                while info.pointee.output_scanline < info.pointee.output_height {
                    var rowPointer: JSAMPROW? = output.baseAddress! + Int(info.pointee.output_scanline) * width * 3
                    guard jpeg_read_scanlines(info, &rowPointer, 1) == 1 else { throw Failure() }
                }
            }
            jpeg_finish_decompress(info)
            return (pixels, width, height)
        }
    }
}
