// Every kind of bad file ends in a typed error naming the file and the reason; nothing crashes or hangs.

import Foundation
import Imaging
import TestSupport
import Testing

@Suite struct BadInputTests {
    let decoder = ImageDecoder()
    static let jpeg = try! [UInt8](Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("rgb_640x427.jpg"))))
    static let png = try! [UInt8](Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("rgb_64x64.png"))))
    static let webp = try! [UInt8](
        Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("lossy_alpha_133x51.webp"))))
    static let gif = try! [UInt8](Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("palette_133x51.gif"))))
    static let heic = try! [UInt8](
        Data(contentsOf: HEIFDecodingTests.directory.appendingPathComponent("photo_64x48.heic")))
    static let avif = try! [UInt8](
        Data(contentsOf: HEIFDecodingTests.directory.appendingPathComponent("photo_64x48.avif")))
    /// A PNG with a compressed text chunk (an Exif profile as ImageMagick writes it), read for its orientation.
    static let pngText = try! [UInt8](
        Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("raw_profile_8_7x4.png"))))

    @Test func missingFile() {
        #expect(throws: ImagingError.unreadable(source: "/no/such.jpg", reason: "no such file")) {
            try decoder.decode(contentsOf: "/no/such.jpg")
        }
    }

    @Test func directoryInsteadOfFile() {
        #expect { try decoder.decode(contentsOf: "/tmp") } throws: { ($0 as? ImagingError)?.source == "/tmp" }
    }

    @Test func emptyFile() {
        #expect(throws: ImagingError.empty(source: "empty.png")) { try decoder.decode([], source: "empty.png") }
    }

    @Test(arguments: [
        ("BM......", "BMP"),
        ("%PDF-1.7", "PDF"), ("hello, this is text", "unrecognised"),
    ])
    func nonImagesAreNamedByWhatTheyAre(_ content: String, _ detected: String) {
        #expect { try decoder.decode(Array(content.utf8), source: "x.jpg") } throws: { error in
            guard case let .unsupportedFormat(source, what) = error as? ImagingError else { return false }
            return source == "x.jpg" && what.contains(detected)
        }
    }

    /// WebP is decoded; a WebP cut short or with a damaged header is refused with the reason, never read past its
    /// end.
    @Test(arguments: [
        ("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ", "WebP"), ("RIFF\u{40}\u{0}\u{0}\u{0}WEBPVP8L\u{20}\u{0}", "WebP"),
    ])
    func damagedWebPIsRefusedWithTheReason(_ content: String, _ format: String) {
        #expect { try decoder.decode(Array(content.utf8), source: "x.webp") } throws: { error in
            switch error as? ImagingError {
            case let .truncated(source, name, _), let .corrupt(source, name, _): source == "x.webp" && name == format
            default: false
            }
        }
    }

    /// GIF is decoded; one cut short, of another version than 87a and 89a, or with a damaged frame is refused with
    /// the reason.
    @Test func damagedGIFIsRefusedWithTheReason() {
        func refusal(_ bytes: [UInt8]) -> ImagingError? {
            do {
                _ = try decoder.decode(bytes, source: "x.gif")
                return nil
            } catch {
                return error as? ImagingError
            }
        }
        guard case .truncated("x.gif", "GIF", _)? = refusal(Array(Self.gif.prefix(Self.gif.count / 2))) else {
            Issue.record("a GIF cut short: \(String(describing: refusal(Array(Self.gif.prefix(Self.gif.count / 2)))))")
            return
        }
        guard case .corrupt("x.gif", "GIF", let reason)? = refusal(Array("GIF88a".utf8) + Self.gif.dropFirst(6)) else {
            Issue.record("another version")
            return
        }
        #expect(reason.contains("GIF87a or GIF89a"))
        // The LZW minimum code size byte of the first frame (after the header, screen, global table and the
        // frame's descriptor) set past what the format allows.
        var damaged = Self.gif
        let table = 3 << (Int(damaged[10] & 7) + 1)
        var offset = 13 + table
        while damaged[offset] == 0x21 {  // extensions: label, then sub-blocks up to an empty one
            offset += 2
            while damaged[offset] != 0 { offset += Int(damaged[offset]) + 1 }
            offset += 1
        }
        #expect(damaged[offset] == 0x2C, "the image descriptor")
        let local = damaged[offset + 9] & 0x80 != 0 ? 3 << (Int(damaged[offset + 9] & 7) + 1) : 0
        damaged[offset + 10 + local] = 12
        guard case .corrupt("x.gif", "GIF", _)? = refusal(damaged) else {
            Issue.record("a damaged frame: \(String(describing: refusal(damaged)))")
            return
        }
    }

    /// A reason goes back to whoever enqueued the task: it names what the data is not, never the bytes themselves
    /// (a path to a secret file would otherwise hand out its start).
    @Test func unrecognisedDataIsNotQuoted() {
        let secret = Array("root:x:0:0:root:/root:/bin/bash\n".utf8)
        #expect { try decoder.decode(secret, source: "/etc/passwd") } throws: { error in
            let reason = "\(error)"
            return reason.contains("unrecognised data (32 bytes)") && !reason.contains("72 6f 6f 74")
                && !reason.contains("root:")
        }
    }

    @Test func wrongExtensionStillDecodesByContent() throws {
        let image = try decoder.decode(Self.png, source: "actually-a-png.jpg")
        #expect(image.width == 64)
    }

    @Test(arguments: [3, 100, 1000, 20_000])
    func truncatedJPEG(_ length: Int) {
        #expect { try decoder.decode(Array(Self.jpeg.prefix(length)), source: "cut.jpg") } throws: { error in
            switch error as? ImagingError {
            case .truncated(let source, "JPEG", _), .corrupt(let source, "JPEG", _): source == "cut.jpg"
            default: false
            }
        }
    }

    @Test(arguments: [8, 30, 60, 2000])
    func truncatedPNG(_ length: Int) {
        #expect { try decoder.decode(Array(Self.png.prefix(length)), source: "cut.png") } throws: { error in
            switch error as? ImagingError {
            case .truncated(let source, "PNG", _), .corrupt(let source, "PNG", _): source == "cut.png"
            default: false
            }
        }
    }

    @Test func corruptPNGChecksum() {
        var bytes = Self.png
        bytes[26] ^= 0x01  // IHDR filter method: the chunk CRC no longer matches
        #expect { try decoder.decode(bytes, source: "crc.png") } throws: { error in
            if case .corrupt("crc.png", "PNG", let reason) = error as? ImagingError { return !reason.isEmpty }
            return false
        }
    }

    @Test func zeroSizedPNGIsRefused() {
        var bytes = Self.png
        bytes.replaceSubrange(16..<20, with: [0, 0, 0, 0])  // width 0 (the header's CRC then fails too)
        #expect { try decoder.decode(bytes, source: "zero.png") } throws: {
            ($0 as? ImagingError)?.source == "zero.png"
        }
    }

    @Test func decompressionBombIsRefusedFromTheHeader() {
        // A PNG header claiming 100,000 x 100,000 pixels, with a valid CRC, and no data behind it.
        let bomb = PNGWriter.header(width: 100_000, height: 100_000)
        let limited = ImageDecoder(maxPixels: 50_000_000)
        #expect(throws: ImagingError.tooLarge(source: "bomb.png", width: 100_000, height: 100_000, limit: 50_000_000)) {
            try limited.decode(bomb, source: "bomb.png")
        }
        let strict = ImageDecoder(maxPixels: 1000)
        #expect { try strict.decode(Self.jpeg, source: "big.jpg") } throws: { error in
            if case .tooLarge("big.jpg", 640, 427, 1000) = error as? ImagingError { return true }
            return false
        }
        #expect { try strict.decode(Self.webp, source: "big.webp") } throws: { error in
            if case .tooLarge("big.webp", 133, 51, 1000) = error as? ImagingError { return true }
            return false
        }
        #expect { try strict.decode(Self.gif, source: "big.gif") } throws: { error in
            if case .tooLarge("big.gif", 133, 51, 1000) = error as? ImagingError { return true }
            return false
        }
        // A WebP cut short after its header is refused before any frame is decoded.
        #expect { try decoder.decode(Array(Self.webp.prefix(Self.webp.count / 2)), source: "cut.webp") } throws: {
            if case .truncated("cut.webp", "WebP", _) = $0 as? ImagingError { return true }
            return false
        }
    }

    /// A progressive JPEG whose last scan is repeated thousands of times (a small file, each scan a pass over
    /// every block) is refused after 500 scans, where decoding it whole would take far longer; 400 decode.
    @Test func aJPEGOfThousandsOfScansIsRefused() throws {
        let progressive = try [UInt8](
            Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("progressive_64x48.jpg"))))
        let lastScan = (0..<(progressive.count - 1)).last { progressive[$0] == 0xFF && progressive[$0 + 1] == 0xDA }!
        let scan = progressive[lastScan..<(progressive.count - 2)]  // up to the end-of-image marker
        func repeated(_ count: Int) -> [UInt8] {
            Array(progressive[..<(progressive.count - 2)]) + Array(repeating: scan, count: count).flatMap { $0 }
                + [0xFF, 0xD9]
        }
        #expect(try decoder.decode(repeated(400), source: "many.jpg").width == 64)
        #expect { try decoder.decode(repeated(5000), source: "scans.jpg") } throws: { error in
            "\(error)".contains("more than 500 progressive scans") && (error as? ImagingError)?.source == "scans.jpg"
        }
    }

    @Test func randomDamageNeverCrashes() {
        var generator = SplitMix64(seed: 7)
        let deadline = ContinuousClock.now + .seconds(4)
        var runs = 0
        while ContinuousClock.now < deadline {
            var bytes = [Self.jpeg, Self.png, Self.webp, Self.gif, Self.pngText, Self.heic, Self.avif][runs % 7]
            for _ in 0..<Int(generator.next() % 12 + 1) {
                let index = Int(generator.next() % UInt64(bytes.count))
                bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            if generator.next() % 3 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count)))) }
            _ = try? decoder.decode(bytes, source: "fuzz")
            runs += 1
        }
        #expect(runs > 20)
    }

    /// HEIC and AVIF files cut short, damaged, over the pixel limit, or ISO media files of no image brand (an MP4)
    /// are refused with the reason, named by their brand; nothing is decoded past the container's size.
    @Test func damagedHEIFIsRefusedWithTheReason() {
        func refusal(_ bytes: [UInt8], _ decoder: ImageDecoder = ImageDecoder()) -> ImagingError? {
            do {
                _ = try decoder.decode(bytes, source: "x.heic")
                return nil
            } catch {
                return error as? ImagingError
            }
        }
        for (bytes, name) in [(Self.heic, "HEIC"), (Self.avif, "AVIF")] {
            switch refusal(Array(bytes.prefix(bytes.count / 2))) {
            case .truncated("x.heic", name, _)?, .corrupt("x.heic", name, _)?: break
            case let other: Issue.record("a \(name) cut short: \(String(describing: other))")
            }
            #expect(
                refusal(bytes, ImageDecoder(maxPixels: 1000))
                    == .tooLarge(source: "x.heic", width: 64, height: 48, limit: 1000))
            #expect(ImageDecoder.dimensions(of: bytes)! == (64, 48))
        }
        // The image data's bytes scrambled behind an intact container.
        var damaged = Self.heic
        for index in (damaged.count - 400)..<(damaged.count - 300) { damaged[index] ^= 0x5A }
        if let error = refusal(damaged) {
            guard case .corrupt("x.heic", "HEIC", _) = error else {
                Issue.record("a damaged HEIC: \(error)")
                return
            }
        }
        // A container declaring 64 x 48 for an image coded at 1024 x 1024 is refused by libheif's size limit, before
        // the image is decoded.
        let lying = try! [UInt8](
            Data(contentsOf: HEIFDecodingTests.directory.appendingPathComponent("lying_size.heic")))
        #expect(ImageDecoder.dimensions(of: lying)! == (64, 48))
        guard case let .corrupt("x.heic", "HEIC", reason)? = refusal(lying) else {
            Issue.record("a HEIC larger than it declares: \(String(describing: refusal(lying)))")
            return
        }
        #expect(reason.lowercased().contains("security limit") || reason.contains("exceeds"), "\(reason)")
        // An MP4's ftyp box names no image brand.
        let mp4 =
            [0, 0, 0, 24] + Array("ftypisom".utf8) + [0, 0, 2, 0] + Array("isomiso2".utf8)
            + [UInt8](repeating: 0, count: 40)
        #expect(
            refusal(mp4)
                == .unsupportedFormat(
                    source: "x.heic", detected: "an ISO media file that is not a HEIF image (MP4 or another)"))
    }

    @Test func dimensionsComeFromTheHeaderAlone() {
        #expect(ImageDecoder.dimensions(of: PNGWriter.header(width: 100_000, height: 3))! == (100_000, 3))
        #expect(ImageDecoder.dimensions(of: Self.jpeg)! == (640, 427))
        #expect(ImageDecoder.dimensions(of: Self.png)! == (64, 64))
        #expect(ImageDecoder.dimensions(of: Self.webp)! == (133, 51))
        let animated = try! [UInt8](
            Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("animated_96x64.webp"))))
        #expect(ImageDecoder.dimensions(of: animated)! == (96, 64))
        #expect(ImageDecoder.dimensions(of: Array(Self.webp.prefix(20))) == nil)
        // A GIF's: its screen, grown to hold the first frame where it reaches past (Pillow's size for it).
        #expect(ImageDecoder.dimensions(of: Self.gif)! == (133, 51))
        let overflowing = try! [UInt8](
            Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("overflow_frame_5x4.gif"))))
        #expect(ImageDecoder.dimensions(of: overflowing)! == (9, 7))
        #expect(ImageDecoder.dimensions(of: Array("not an image".utf8)) == nil)
        #expect(ImageDecoder.decodingBytes(width: 640, height: 427) == 640 * 427 * 16 + 427 * 8)
        #expect(ImageDecoder.decodingBytes(width: Int.max / 2, height: 3) == Int.max)
    }
}
