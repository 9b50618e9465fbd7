// An 8-bit RGB image in row-major, interleaved order: the decoded form every later step works on.

/// Pixels as Pillow's `convert("RGB")` gives them.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, rows top to bottom, R G B per pixel.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(
            pixels.count == width * height * 3, "RGB image \(width)x\(height) needs \(width * height * 3) bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width` x `height` image filled with one colour.
    public init(width: Int, height: Int, filledWith color: (UInt8, UInt8, UInt8)) {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for index in stride(from: 0, to: pixels.count, by: 3) {
            pixels[index] = color.0
            pixels[index + 1] = color.1
            pixels[index + 2] = color.2
        }
        self.init(width: width, height: height, pixels: pixels)
    }
}
