// Decoded samples to 8-bit RGB with Pillow's conversion rules: gray replicated, alpha dropped (not composited),
// 16-bit samples cut to their high byte, CMYK through Pillow's cmyk2rgb with Adobe's inverted convention.

import CImageCodecs

enum RGBConversion {
    static func rgb(from image: infmllm_image) -> RGBImage {
        let width = Int(image.width), height = Int(image.height)
        let count = width * height
        let channels = Int(image.channels)
        let bytesPerSample = Int(image.bit_depth) / 8
        let source = UnsafeBufferPointer(start: image.pixels, count: count * channels * bytesPerSample)
        if channels == 3 && bytesPerSample == 1 && image.is_cmyk == 0 {
            return RGBImage(width: width, height: height, pixels: Array(source))
        }
        var pixels = [UInt8](repeating: 0, count: count * 3)
        pixels.withUnsafeMutableBufferPointer { output in
            if image.is_cmyk != 0 {
                cmykToRGB(source, output, count: count, inverted: image.adobe_marker != 0)
                return
            }
            // The high byte of each sample (big-endian 16-bit samples start with it).
            let stride = channels * bytesPerSample
            let colour = channels >= 3
            for pixel in 0..<count {
                let base = pixel * stride
                if colour {
                    output[pixel * 3] = source[base]
                    output[pixel * 3 + 1] = source[base + bytesPerSample]
                    output[pixel * 3 + 2] = source[base + 2 * bytesPerSample]
                } else {
                    let gray = bytesPerSample == 2 && channels == 1 ? gray16(source, at: base) : source[base]
                    output[pixel * 3] = gray
                    output[pixel * 3 + 1] = gray
                    output[pixel * 3 + 2] = gray
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// 16-bit gray: Pillow opens it as a 32-bit integer image and clips to 0...255 on the way to "L".
    private static func gray16(_ source: UnsafeBufferPointer<UInt8>, at index: Int) -> UInt8 {
        let value = Int(source[index]) << 8 | Int(source[index + 1])
        return UInt8(min(value, 255))
    }

    /// Pillow's cmyk2rgb: channel = (255 - k) - (c * (255 - k)) / 255, rounded as its MULDIV255 rounds.
    private static func cmykToRGB(
        _ source: UnsafeBufferPointer<UInt8>, _ output: UnsafeMutableBufferPointer<UInt8>, count: Int, inverted: Bool
    ) {
        for pixel in 0..<count {
            var sample = (0..<4).map { Int(source[pixel * 4 + $0]) }
            if inverted { sample = sample.map { 255 - $0 } }
            let notK = 255 - sample[3]
            for channel in 0..<3 {
                let product = sample[channel] * notK + 128
                let scaled = ((product >> 8) + product) >> 8
                output[pixel * 3 + channel] = UInt8(clamping: notK - scaled)
            }
        }
    }
}
