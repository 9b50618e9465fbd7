// Decoding, resizing and normalising agree with Pillow (and torchvision's arithmetic) on every fixture image.

import Imaging
import Testing

@Suite struct PillowParityTests {
    static let cases = ImageFixtures.cases.images
    let decoder = ImageDecoder()

    @Test func fixtureSetIsVaried() {
        #expect(Self.cases.count >= 50)
        let kinds = Set(Self.cases.map(\.kind))
        for kind in [
            "jpeg progressive", "jpeg grayscale", "jpeg cmyk (adobe)", "png palette8", "png rgba8", "png gray16",
            "png rgb8 interlaced", "png gray+alpha8", "png rgb16", "webp lossy", "webp lossless + alpha",
            "webp animated (first frame)", "gif adaptive palette", "gif animated (first frame)",
            "gif first frame inside the screen, transparent index", "gif indices past the colour table",
            "gif without a colour table", "gif interlaced first frame inside the screen",
        ] {
            #expect(kinds.contains(kind), "no \(kind) fixture")
        }
    }

    @Test(arguments: cases.map(\.file))
    func decodedPixelsAreIdentical(_ file: String) throws {
        let testCase = try #require(Self.cases.first { $0.file == file })
        let image = try decoder.decode(contentsOf: ImageFixtures.path(file))
        #expect(image.width == testCase.width && image.height == testCase.height)
        if let rgb = testCase.rgb {
            let expected = ImageFixtures.bytes(rgb)
            let differing = zip(image.pixels, expected).filter { $0 != $1 }.count
            #expect(differing == 0, "\(testCase.kind) (\(testCase.pillow_mode)): \(differing) bytes differ")
        }
        #expect(SHA256.hex(of: image.pixels) == testCase.rgb_sha256, "\(testCase.kind) (\(testCase.pillow_mode))")
    }

    @Test(arguments: cases.map(\.file))
    func resizedPixelsAreWithinOneLevel(_ file: String) throws {
        let testCase = try #require(Self.cases.first { $0.file == file })
        let size = ImageFixtures.cases.size
        let image = try decoder.decode(contentsOf: ImageFixtures.path(file))
        let stretched = BicubicResampler.resize(image, width: size, height: size)
        let worst = zip(stretched.pixels, ImageFixtures.bytes(testCase.stretched)).map { abs(Int($0) - Int($1)) }.max()
        #expect(worst ?? 0 <= 1, "stretched: \(worst ?? 0) levels off")
        let fill = ImageFixtures.cases.fill
        let square = ImagePreprocessor.expandedToSquare(image, fill: (fill[0], fill[1], fill[2]))
        let squared = BicubicResampler.resize(square, width: size, height: size)
        let worstSquared = zip(squared.pixels, ImageFixtures.bytes(testCase.squared)).map { abs(Int($0) - Int($1)) }
            .max()
        #expect(worstSquared ?? 0 <= 1, "expand2square: \(worstSquared ?? 0) levels off")
        let frame = ImageFrame.square(width: image.width, height: image.height)
        let withoutCanvas = BicubicResampler.resizeOnCanvas(
            image, side: frame.frameWidth, left: frame.left, top: frame.top, fill: (fill[0], fill[1], fill[2]),
            size: size)
        #expect(withoutCanvas == squared, "the canvas-free resize gives the canvas's pixels")
    }

    @Test func normalizedTensorsMatchWithin1e5() throws {
        let preprocessor = ImagePreprocessor(size: ImageFixtures.cases.size, expandToSquare: false)
        let fill = ImageFixtures.cases.fill
        #expect([preprocessor.fillColor.0, preprocessor.fillColor.1, preprocessor.fillColor.2] == fill)
        var checked = 0
        for testCase in Self.cases {
            guard let expected = testCase.normalized else { continue }
            let input = preprocessor(try decoder.decode(contentsOf: ImageFixtures.path(testCase.file)))
            #expect(input.originalWidth == testCase.width && input.originalHeight == testCase.height)
            let worst = zip(input.values, expected).map { abs($0 - $1) }.max() ?? 1
            #expect(input.values.count == expected.count && worst <= 1e-5, "\(testCase.file): \(worst)")
            checked += 1
        }
        #expect(checked >= 5)
    }
}

@Suite struct SHA256Tests {
    @Test func knownDigests() {
        #expect(SHA256.hex(of: [UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hex(of: million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
