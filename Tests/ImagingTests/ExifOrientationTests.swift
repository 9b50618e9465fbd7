// The Exif orientation tag is read as Pillow reads it (JPEG and WebP), decoding still gives the stored pixels, and the
// mapping of points and boxes to the shown image agrees with Pillow's `ImageOps.exif_transpose` pixel for pixel.

import Foundation
import Testing

@testable import Imaging

@Suite struct ExifOrientationTests {
    static let cases = ImageFixtures.cases.images.filter { $0.orientation != nil }

    @Test func everyOrientationHasAFixture() {
        #expect(Set(Self.cases.compactMap(\.orientation)) == Set(1...8))
        #expect(Self.cases.contains { $0.file.hasSuffix(".webp") })
    }

    /// Each stored pixel's centre, mapped to the shown image, lands on the pixel Pillow's exif_transpose put it.
    @Test(arguments: cases.map(\.file))
    func theTagAndTheShownImageAgreeWithPillow(_ file: String) throws {
        let testCase = try #require(Self.cases.first { $0.file == file })
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path(file))))
        let orientation = try #require(ImageDecoder.orientation(of: bytes))
        #expect(orientation.value == testCase.orientation)
        let image = try ImageDecoder().decode(bytes, source: file)
        #expect(SHA256.hex(of: image.pixels) == testCase.rgb_sha256, "decoding keeps the stored pixels")
        let shown = ImageFixtures.bytes(try #require(testCase.displayed))
        let size = orientation.displayedSize(width: image.width, height: image.height)
        #expect(size.width == testCase.displayed_width && size.height == testCase.displayed_height)
        var mismatches = 0
        for y in 0..<image.height {
            for x in 0..<image.width {
                let point = orientation.displayed(
                    x: Double(x) + 0.5, y: Double(y) + 0.5, width: Double(image.width), height: Double(image.height))
                let target = (Int(point.y) * size.width + Int(point.x)) * 3
                let source = (y * image.width + x) * 3
                if Array(shown[target..<(target + 3)]) != Array(image.pixels[source..<(source + 3)]) { mismatches += 1 }
            }
        }
        #expect(mismatches == 0, "orientation \(orientation.value)")
    }

    @Test func boxesTurnWithTheImage() throws {
        // A box in the top-left corner of a 100 x 50 image.
        let box: [Double] = [0, 0, 20, 10]
        let expected: [Int: [Double]] = [
            1: [0, 0, 20, 10], 2: [80, 0, 100, 10], 3: [80, 40, 100, 50], 4: [0, 40, 20, 50],
            5: [0, 0, 10, 20], 6: [40, 0, 50, 20], 7: [40, 80, 50, 100], 8: [0, 80, 10, 100],
        ]
        for (value, shown) in expected {
            let orientation = try #require(ExifOrientation(value))
            #expect(orientation.displayed(box: box, width: 100, height: 50) == shown, "orientation \(value)")
        }
        #expect(ExifOrientation(0) == nil && ExifOrientation(9) == nil)
    }

    /// The tag is read from little- and big-endian blocks, with or without the Exif identifier; anything malformed
    /// reads as no tag.
    @Test func theExifBlockIsReadWithEveryOffsetChecked() {
        let little: [UInt8] = Array("II*\0".utf8) + [8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]
        let big: [UInt8] = Array("MM\0*".utf8) + [0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0]
        #expect(ImageDecoder.exifOrientation(ofBlock: little) == 6)
        #expect(ImageDecoder.exifOrientation(ofBlock: Array("Exif\0\0".utf8) + big) == 8)
        #expect(ImageDecoder.exifOrientation(ofBlock: Array(little.prefix(20))) == 0, "cut inside the entry")
        var farIFD = little
        farIFD[4] = 0xFF
        #expect(ImageDecoder.exifOrientation(ofBlock: farIFD) == 0)
        var nine = little
        nine[18] = 9  // the value (the entry starts at byte 10: tag, type, count, value)
        #expect(ImageDecoder.exifOrientation(ofBlock: nine) == 0)
        #expect(ImageDecoder.exifOrientation(ofBlock: []) == 0)
        // A LONG value is read, as Pillow reads it; a later entry for the tag replaces an earlier one; a value held
        // at an offset (three SHORTs) is not one.
        var long = little
        (long[12], long[18]) = (4, 3)
        #expect(ImageDecoder.exifOrientation(ofBlock: long) == 3)
        let twice: [UInt8] =
            Array("II*\0".utf8) + [8, 0, 0, 0, 2, 0] + [0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]
            + [0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0]
        #expect(ImageDecoder.exifOrientation(ofBlock: twice) == 8)
        var three = little
        three[14] = 3
        #expect(ImageDecoder.exifOrientation(ofBlock: three) == 0)
        // Images without a tag.
        let plain = try! [UInt8](Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("rgb_64x64.jpg"))))
        #expect(ImageDecoder.orientation(of: plain) == nil)
    }
}
