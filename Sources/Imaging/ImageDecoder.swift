// JPEG, PNG, WebP and GIF files to RGB, pixel for pixel as Pillow's `Image.open(path).convert("RGB")` gives them.
// EXIF orientation is not applied, as the reference preprocessing does not apply it either.

import CImageCodecs
import Foundation

/// Decodes image files into `RGBImage`s, refusing anything that is not a well-formed JPEG, PNG, WebP, GIF, HEIC or AVIF.
///
/// Thread-safe: holds only its settings.
public struct ImageDecoder: Sendable {
    /// The most pixels (width x height) an image may have; larger ones are refused from their header, before any
    /// pixel memory is allocated. Pillow's own bomb limit is 178,956,970 (it warns at half of that).
    public var maxPixels: Int

    public init(maxPixels: Int = 89_478_485) {
        self.maxPixels = maxPixels
    }

    /// Reads and decodes the file at `path`.
    public func decode(contentsOf path: String) throws -> RGBImage {
        try decodeWithDigest(contentsOf: path).image
    }

    /// Reads and decodes the file at `path`, and names its bytes by their SHA-256 (what `tasks.image_sha256` holds).
    public func decodeWithDigest(contentsOf path: String) throws -> (image: RGBImage, sha256: String) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw ImagingError.unreadable(source: path, reason: Self.reason(error))
        }
        let image = try data.withUnsafeBytes { try decode($0.bindMemory(to: UInt8.self), source: path) }
        return (image, SHA256.hex(of: data))
    }

    /// Decodes image bytes read from anywhere, and names them by their SHA-256; `source` names the input in errors.
    public func decodeWithDigest(_ bytes: [UInt8], source: String) throws -> (image: RGBImage, sha256: String) {
        let image = try decode(bytes, source: source)
        return (image, SHA256.hex(of: bytes))
    }

    /// Decodes file contents; `source` names the input in errors.
    public func decode(_ bytes: [UInt8], source: String) throws -> RGBImage {
        try bytes.withUnsafeBufferPointer { try decode($0, source: source) }
    }

    /// What a JPEG, PNG, WebP, GIF, HEIC or AVIF header declares, read without decoding or allocating any pixels (a
    /// GIF's size is its screen's, grown to hold its first frame: read up to that frame's descriptor).
    public struct Header: Sendable, Equatable {
        public let width: Int
        public let height: Int
        /// The Exif orientation tag of a JPEG, WebP or PNG (a PNG's as Pillow's `getexif()` finds it: eXIf, else
        /// ImageMagick's raw profile text, else XMP); nil when it has none.
        public let orientation: ExifOrientation?
        /// The most bytes a pixel of this format holds while it decodes (`decodingBytes(width:height:bytesPerPixel:)`).
        public var bytesPerPixel = ImageDecoder.bytesPerPixel
    }

    /// The header of `bytes`, from the decoder stopped right after it; nil when the data is not an image it decodes
    /// or its header cannot be read (decoding then says why).
    public static func header(of bytes: [UInt8]) -> Header? {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return nil }
            var image = infmllm_image()
            // A limit of no pixels stops every decoder right after the header, which it has checked.
            let format = ImageFormat(sniffing: buffer)
            guard let status = format.decode(base, count: buffer.count, maxPixels: 0, into: &image) else { return nil }
            free(image.pixels)
            guard status == Int32(INFMLLM_IMAGE_TOO_LARGE.rawValue) else { return nil }
            var header = Header(
                width: Int(image.width), height: Int(image.height), orientation: ExifOrientation(Int(image.orientation))
            )
            if case .heif = format { header.bytesPerPixel = heifBytesPerPixel }
            return header
        }
    }

    /// The width and height a header declares (`header(of:)`).
    public static func dimensions(of bytes: [UInt8]) -> (width: Int, height: Int)? {
        header(of: bytes).map { ($0.width, $0.height) }
    }

    /// The Exif orientation a header holds (`header(of:)`); nil when it holds none.
    public static func orientation(of bytes: [UInt8]) -> ExifOrientation? {
        header(of: bytes)?.orientation
    }

    /// The orientation tag of an Exif block (with or without its `Exif\0\0` identifier), 0 when it has none.
    static func exifOrientation(ofBlock block: [UInt8]) -> Int {
        Int(block.withUnsafeBufferPointer { infmllm_exif_orientation($0.baseAddress, $0.count) })
    }

    /// The most bytes a pixel holds while it decodes: the codec's samples at their widest (16-bit RGBA, 8 bytes; a
    /// progressive or CMYK JPEG's coefficient buffers take about as much) and the 8-bit RGB copy, with room to spare.
    public static let bytesPerPixel = 16
    /// The same for HEIF: libheif's planes (up to 16-bit 4:4:4 with alpha), its interleaved RGB and the codec's
    /// reference frames, then our copy (about 10 bytes a pixel for 8-bit 4:2:0, 20 at the widest).
    public static let heifBytesPerPixel = 24

    /// The most bytes decoding a `width` x `height` image may hold at once: `bytesPerPixel` a pixel and 8 a row (the
    /// row table).
    public static func decodingBytes(width: Int, height: Int, bytesPerPixel: Int = bytesPerPixel) -> Int {
        let pixels = width.multipliedReportingOverflow(by: height)
        guard !pixels.overflow, pixels.partialValue < Int.max / (2 * max(16, bytesPerPixel)) else { return Int.max }
        return pixels.partialValue * bytesPerPixel + height * 8
    }

    /// The bytes decoding `bytes` may hold at once (`decodingBytes(width:height:)`), from its header; nil when the
    /// header cannot be read or declares more than `maxPixels` (decoding then refuses it before allocating anything).
    public func decodingBytes(of bytes: [UInt8]) -> Int? {
        Self.header(of: bytes).flatMap(decodingBytes(for:))
    }

    /// The same from a header already read.
    public func decodingBytes(for header: Header) -> Int? {
        let pixels = header.width.multipliedReportingOverflow(by: header.height)
        guard !pixels.overflow, pixels.partialValue <= maxPixels else { return nil }
        return Self.decodingBytes(width: header.width, height: header.height, bytesPerPixel: header.bytesPerPixel)
    }

    /// Decodes file contents held in memory that the caller owns for the duration of the call.
    public func decode(_ bytes: UnsafeBufferPointer<UInt8>, source: String) throws -> RGBImage {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { throw ImagingError.empty(source: source) }
        let format = ImageFormat(sniffing: bytes)
        var image = infmllm_image()
        let status = format.decode(base, count: bytes.count, maxPixels: maxPixels, into: &image)
        defer { free(image.pixels) }
        if let status {
            try check(status, image, format: format.name, source: source)
            guard image.width > 0, image.height > 0 else { throw ImagingError.zeroSized(source: source) }
            return RGBConversion.rgb(from: image)
        }
        throw ImagingError.unsupportedFormat(source: source, detected: format.name)
    }

    private func check(_ status: Int32, _ image: infmllm_image, format: String, source: String) throws {
        let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch status {
        case Int32(INFMLLM_IMAGE_OK.rawValue): return
        case Int32(INFMLLM_IMAGE_TOO_LARGE.rawValue):
            throw ImagingError.tooLarge(
                source: source, width: Int(image.width), height: Int(image.height), limit: maxPixels)
        case Int32(INFMLLM_IMAGE_TRUNCATED.rawValue):
            throw ImagingError.truncated(source: source, format: format, reason: message)
        case Int32(INFMLLM_IMAGE_NO_MEMORY.rawValue):
            throw ImagingError.outOfMemory(source: source)
        default:
            throw ImagingError.corrupt(
                source: source, format: format, reason: message.isEmpty ? "undecodable" : message)
        }
    }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain
        {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError { return "no such file" }
        return nsError.localizedDescription
    }
}

/// What a file's first bytes say it is.
enum ImageFormat: Equatable {
    case jpeg, png, webp, gif
    /// An ISO media file of a HEIF image brand: HEIC (HEVC) or AVIF (AV1), named by its brands.
    case heif(String)
    case other(String)

    /// The ftyp brands of HEIF still images (and image sequences, whose primary image is read), by their codec.
    static let heifBrands: [String: String] = [
        "heic": "HEIC", "heix": "HEIC", "heim": "HEIC", "heis": "HEIC", "hevc": "HEIC", "hevx": "HEIC",
        "avif": "AVIF", "avis": "AVIF", "mif1": "HEIF", "msf1": "HEIF", "mif2": "HEIF",
    ]

    init(sniffing bytes: UnsafeBufferPointer<UInt8>) {
        func starts(_ prefix: [UInt8]) -> Bool { bytes.starts(with: prefix) }
        func slice(_ range: Range<Int>) -> [UInt8] { Array(bytes[range]) }
        if starts([0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if starts(Array("GIF8".utf8)) {
            self = .gif
        } else if starts(Array("RIFF".utf8)) && bytes.count >= 12 && slice(8..<12) == Array("WEBP".utf8) {
            self = .webp
        } else if starts(Array("BM".utf8)) {
            self = .other("BMP")
        } else if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) {
            self = .other("TIFF")
        } else if starts(Array("%PDF".utf8)) {
            self = .other("PDF")
        } else if bytes.count >= 12 && slice(4..<8) == Array("ftyp".utf8) {
            // The major brand, then the compatible brands to the end of the ftyp box: a codec's brand names it.
            // A size of 0 (to the end) or 1 (a 64-bit size after the type) is read as the data's end; at most 64
            // brands are read.
            let size = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
            let boxEnd = min(bytes.count, size <= 1 ? bytes.count : size, 16 + 64 * 4)
            let brands = stride(from: 8, to: boxEnd - 3, by: 4).filter { $0 != 12 }.map {
                String(decoding: slice($0..<($0 + 4)), as: UTF8.self)
            }
            let kinds = brands.compactMap { Self.heifBrands[$0] }
            if let kind = kinds.first(where: { $0 != "HEIF" }) ?? kinds.first {
                self = .heif(kind)
            } else {
                self = .other("an ISO media file that is not a HEIF image (MP4 or another)")
            }
        } else {
            // The bytes themselves are never quoted: a reason is shown to whoever enqueued the task.
            self = .other("unrecognised data (\(bytes.count) bytes)")
        }
    }

    /// Runs this format's decoder over `count` bytes at `base` into `image`, stopping after the header when the
    /// image has more than `maxPixels`; its status, or nil for a format no decoder reads.
    func decode(
        _ base: UnsafePointer<UInt8>, count: Int, maxPixels: Int, into image: inout infmllm_image
    ) -> Int32? {
        let limit = UInt64(maxPixels)
        switch self {
        case .jpeg: return infmllm_decode_jpeg(base, count, limit, &image)
        case .png: return infmllm_decode_png(base, count, limit, &image)
        case .webp: return infmllm_decode_webp(base, count, limit, &image)
        case .gif: return infmllm_decode_gif(base, count, limit, &image)
        case .heif: return infmllm_decode_heif(base, count, limit, &image)
        case .other: return nil
        }
    }

    var name: String {
        switch self {
        case .jpeg: "JPEG"
        case .png: "PNG"
        case .webp: "WebP"
        case .gif: "GIF"
        case let .heif(kind): kind
        case let .other(name): name
        }
    }
}
