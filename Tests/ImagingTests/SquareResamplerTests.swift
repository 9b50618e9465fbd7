// The chat model's expand-to-square resize without the canvas gives the canvas's pixels bit for bit, for every
// shape (thin, wide, smaller and larger than the output), and a 65500 x 1 image costs megabytes, not gigabytes.

import Foundation
import Imaging
import TestSupport
import Testing

@Suite struct SquareResamplerTests {
    static func noise(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var generator = SplitMix64(seed: seed)
        return RGBImage(
            width: width, height: height,
            pixels: (0..<(width * height * 3)).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
    }

    @Test(arguments: [
        (1, 30), (30, 1), (5, 300), (300, 5), (17, 300), (299, 300), (300, 299), (224, 10), (10, 224), (100, 37),
        (640, 427), (427, 640), (2, 500), (500, 2), (1000, 3), (3, 1000), (7, 9), (40, 20), (224, 223), (225, 1),
        (2000, 1), (1, 2000),
    ])
    func theCanvasFreeResizeEqualsPaddingThenResizing(_ width: Int, _ height: Int) {
        let image = Self.noise(width: width, height: height, seed: UInt64(width * 1000 + height))
        let fill: (UInt8, UInt8, UInt8) = (122, 116, 104)
        for size in [16, 56, 224] {
            let canvas = ImagePreprocessor.expandedToSquare(image, fill: fill)
            let expected = BicubicResampler.resize(canvas, width: size, height: size)
            let frame = ImageFrame.square(width: width, height: height)
            let actual = BicubicResampler.resizeOnCanvas(
                image, side: frame.frameWidth, left: frame.left, top: frame.top, fill: fill, size: size)
            #expect(actual == expected, "\(width)x\(height) to \(size)")
            // The choice preprocessing makes between the two ways gives the same pixels either way.
            #expect(BicubicResampler.resizeExpandedToSquare(image, fill: fill, size: size) == expected)
        }
    }

    @Test func anyPlacementOnTheCanvasIsExact() {
        let image = Self.noise(width: 13, height: 40, seed: 7)
        let fill: (UInt8, UInt8, UInt8) = (0, 255, 9)
        for left in [0, 1, 26, 53] {
            var canvas = RGBImage(width: 66, height: 66, filledWith: fill)
            for row in 0..<40 {
                for column in 0..<13 {
                    for channel in 0..<3 {
                        canvas.pixels[((row + 5) * 66 + left + column) * 3 + channel] =
                            image.pixels[(row * 13 + column) * 3 + channel]
                    }
                }
            }
            let expected = BicubicResampler.resize(canvas, width: 24, height: 24)
            let actual = BicubicResampler.resizeOnCanvas(image, side: 66, left: left, top: 5, fill: fill, size: 24)
            #expect(actual == expected, "left \(left)")
        }
    }

    /// 65500 x 1 padded would be a 65500 x 65500 canvas (12.9 GB); preprocessed, it costs its own pixels and the
    /// output. The process's peak resident memory, read from the kernel, may not grow by a gigabyte (other tests
    /// running beside this one allocate far less; the canvas alone would be 12.9 GB).
    @Test(arguments: [(65500, 1), (1, 65500)])
    func aThinImageNeedsNoSquareCanvas(_ width: Int, _ height: Int) throws {
        let preprocessor = ImagePreprocessor(size: 224, expandToSquare: true)
        let image = RGBImage(width: width, height: height, filledWith: (200, 10, 30))
        let before = ProcessMemory.peakResidentKilobytes()
        let input = preprocessor(image)
        #expect(input.values.count == 3 * 224 * 224 && input.frame.frameWidth == 65500)
        let grown = ProcessMemory.peakResidentKilobytes() - before
        #expect(grown < 1 << 20, "peak resident memory grew by \(grown) kB")
    }
}
