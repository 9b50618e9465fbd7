// Model input from a decoded image: optional expand-to-square, Pillow bicubic resize to S x S, then
// (pixel / 255 - mean) / std per channel into a CHW float array, as torchvision's ToTensor + Normalize.

/// The pixels the vision encoder reads, with the original size that boxes are measured in.
public struct PreprocessedImage: Sendable {
    /// `[3, size, size]`, channel-major (all R, then all G, then all B), rows top to bottom.
    public let values: [Float]
    public let size: Int
    /// The decoded image's size before any padding or resizing.
    public var originalWidth: Int { frame.width }
    public var originalHeight: Int { frame.height }
    /// Where the model's view lies on the original image (the padding `expandToSquare` added).
    public let frame: ImageFrame
}

/// The image the model saw, in the original image's pixels: the original `width` x `height`, placed at
/// (`left`, `top`) inside a `frameWidth` x `frameHeight` canvas (the square of `expandToSquare`, or the image
/// itself when it was stretched). Normalised coordinates the model writes span the canvas.
public struct ImageFrame: Sendable, Equatable {
    public var width: Int, height: Int
    public var left: Int, top: Int
    public var frameWidth: Int, frameHeight: Int

    /// The image stretched to the model's input: coordinates span the image itself.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, left: 0, top: 0, frameWidth: width, frameHeight: height)
    }

    public init(width: Int, height: Int, left: Int, top: Int, frameWidth: Int, frameHeight: Int) {
        self.width = width
        self.height = height
        self.left = left
        self.top = top
        self.frameWidth = frameWidth
        self.frameHeight = frameHeight
    }

    /// The square canvas of `expandToSquare`: the longer side, the image centred at floor((long - short) / 2).
    public static func square(width: Int, height: Int) -> ImageFrame {
        let side = max(width, height)
        return ImageFrame(
            width: width, height: height, left: (side - width) / 2, top: (side - height) / 2, frameWidth: side,
            frameHeight: side)
    }
}

/// How an image becomes model input.
public struct ImagePreprocessor: Sendable {
    /// The model's input side, S (`image_size` in config.json).
    public var size: Int
    /// Pad to a square with the mean colour before resizing (the chat model's `expand2square`); otherwise the
    /// image is stretched to S x S (the multitask model).
    public var expandToSquare: Bool
    public var mean: [Float]
    public var std: [Float]

    /// CLIP's normalisation constants, which both InfMLLM models use.
    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    public init(size: Int, expandToSquare: Bool, mean: [Float] = clipMean, std: [Float] = clipStd) {
        precondition(size > 0 && mean.count == 3 && std.count == 3, "preprocessing needs S > 0 and 3 means and stds")
        self.size = size
        self.expandToSquare = expandToSquare
        self.mean = mean
        self.std = std
    }

    /// The fill colour of `expandToSquare`: each mean times 255, truncated, as LLaVA computes it.
    public var fillColor: (UInt8, UInt8, UInt8) {
        (UInt8(mean[0] * 255), UInt8(mean[1] * 255), UInt8(mean[2] * 255))
    }

    public func callAsFunction(_ image: RGBImage) -> PreprocessedImage {
        guard expandToSquare && image.width != image.height else {
            let resized = BicubicResampler.resize(image, width: size, height: size)
            return PreprocessedImage(
                values: normalized(resized), size: size, frame: ImageFrame(width: image.width, height: image.height))
        }
        // A thin image's padded square is never built: its side may be tens of thousands of pixels.
        let resized = BicubicResampler.resizeExpandedToSquare(image, fill: fillColor, size: size)
        return PreprocessedImage(
            values: normalized(resized), size: size, frame: ImageFrame.square(width: image.width, height: image.height))
    }

    /// `image` centred on a square canvas of its longer side, filled with `fill`; the offset is
    /// floor((long - short) / 2), as LLaVA's expand2square pastes it. (Preprocessing builds it only for images
    /// that are not thin: `BicubicResampler.resizeExpandedToSquare`.)
    public static func expandedToSquare(_ image: RGBImage, fill: (UInt8, UInt8, UInt8)) -> RGBImage {
        guard image.width != image.height else { return image }
        let frame = ImageFrame.square(width: image.width, height: image.height)
        return BicubicResampler.canvas(image, side: frame.frameWidth, left: frame.left, top: frame.top, fill: fill)
    }

    /// CHW floats: (value / 255 - mean) / std in single precision, the order of operations torchvision uses.
    public func normalized(_ image: RGBImage) -> [Float] {
        let planeSize = image.width * image.height
        var values = [Float](repeating: 0, count: planeSize * 3)
        image.pixels.withUnsafeBufferPointer { pixels in
            values.withUnsafeMutableBufferPointer { out in
                for channel in 0..<3 {
                    let mean = self.mean[channel], std = self.std[channel]
                    for index in 0..<planeSize {
                        out[channel * planeSize + index] = (Float(pixels[index * 3 + channel]) / 255 - mean) / std
                    }
                }
            }
        }
        return values
    }
}
