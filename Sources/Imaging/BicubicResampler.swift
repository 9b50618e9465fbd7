// Pillow's bicubic resize (Resample.c): a = -0.5, support 2 widened by the scale when shrinking (antialiasing),
// coefficients in 22-bit fixed point, a horizontal pass rounded to 8 bits, then a vertical pass.

/// Resizes `RGBImage`s exactly as Pillow's `Image.resize(size, Image.BICUBIC)` does.
public enum BicubicResampler {
    static let precisionBits = 32 - 8 - 2

    /// Filter taps for one axis: for each output position, the first input index, the tap count, and weights.
    struct Taps {
        let size: Int  // taps per output position (the widest kernel)
        let first: [Int]
        let count: [Int]
        let weights: [Int32]  // output position * size + tap

        func shifted(by offset: Int) -> Taps {
            Taps(size: size, first: first.map { $0 + offset }, count: count, weights: weights)
        }
    }

    /// `image` resized to `width` x `height`.
    ///
    /// When both axes change, the horizontal pass runs first, over only the rows the vertical pass reads, as in
    /// every Pillow through 12.x, which the released model was evaluated with (transformers 4.31, torch 2.1). Pillow
    /// 13 runs the vertical pass first when the height shrinks by more than twice what the width loses; the order
    /// changes the 8-bit rounding between passes, and so a portrait photo's pixels.
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        precondition(width > 0 && height > 0, "resize target must have pixels")
        if width == image.width && height == image.height { return image }
        let horizontal = taps(inputSize: image.width, outputSize: width)
        let vertical = taps(inputSize: image.height, outputSize: height)
        if width == image.width { return resampleColumns(image, taps: vertical, height: height) }
        if height == image.height { return resampleRows(image, taps: horizontal, width: width, rows: 0..<image.height) }
        let firstRow = vertical.first[0]
        let lastRow = vertical.first[height - 1] + vertical.count[height - 1]
        let rows = resampleRows(image, taps: horizontal, width: width, rows: firstRow..<lastRow)
        return resampleColumns(rows, taps: vertical.shifted(by: -firstRow), height: height)
    }

    static func taps(inputSize: Int, outputSize: Int) -> Taps {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 2.0 * filterScale
        let size = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outputSize)
        var count = [Int](repeating: 0, count: outputSize)
        var weights = [Int32](repeating: 0, count: outputSize * size)
        var kernel = [Double](repeating: 0, count: size)
        for position in 0..<outputSize {
            let center = (Double(position) + 0.5) * scale
            // C's (int) conversion truncates toward zero, as Swift's Int(_:) does.
            let lower = max(Int(center - support + 0.5), 0)
            let upper = min(Int(center + support + 0.5), inputSize)
            let taps = upper - lower
            var total = 0.0
            for tap in 0..<taps {
                let weight = bicubic((Double(tap + lower) - center + 0.5) / filterScale)
                kernel[tap] = weight
                total += weight
            }
            for tap in 0..<taps {
                let normalized = total != 0 ? kernel[tap] / total : kernel[tap]
                let fixed = normalized * Double(1 << precisionBits)
                weights[position * size + tap] = Int32(normalized < 0 ? fixed - 0.5 : fixed + 0.5)
            }
            first[position] = lower
            count[position] = taps
        }
        return Taps(size: size, first: first, count: count, weights: weights)
    }

    /// Keys' cubic with a = -0.5, as Pillow's bicubic_filter.
    @inline(__always)
    static func bicubic(_ value: Double) -> Double {
        let a = -0.5
        let x = abs(value)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    @inline(__always)
    static func clip8(_ value: Int32) -> UInt8 {
        if value >= (1 << precisionBits) << 8 { return 255 }
        if value <= 0 { return 0 }
        return UInt8(truncatingIfNeeded: value >> precisionBits)
    }

    private static func resampleRows(_ image: RGBImage, taps: Taps, width: Int, rows: Range<Int>) -> RGBImage {
        var output = [UInt8](repeating: 0, count: width * rows.count * 3)
        let rounding = Int32(1 << (precisionBits - 1))
        let inputWidth = image.width
        image.pixels.withUnsafeBufferPointer { inputBuffer in
            taps.weights.withUnsafeBufferPointer { weightBuffer in
                taps.first.withUnsafeBufferPointer { firsts in
                    taps.count.withUnsafeBufferPointer { counts in
                        output.withUnsafeMutableBufferPointer { outBuffer in
                            let input = inputBuffer.baseAddress!, weights = weightBuffer.baseAddress!
                            let out = outBuffer.baseAddress!
                            for (outRow, row) in rows.enumerated() {
                                let inRow = input + row * inputWidth * 3
                                let outRowStart = out + outRow * width * 3
                                for x in 0..<width {
                                    var r = rounding, g = rounding, b = rounding
                                    let kernel = weights + x * taps.size
                                    var pixel = inRow + firsts[x] * 3
                                    for tap in 0..<counts[x] {
                                        let weight = kernel[tap]
                                        r &+= Int32(pixel[0]) &* weight
                                        g &+= Int32(pixel[1]) &* weight
                                        b &+= Int32(pixel[2]) &* weight
                                        pixel += 3
                                    }
                                    outRowStart[x * 3] = clip8(r)
                                    outRowStart[x * 3 + 1] = clip8(g)
                                    outRowStart[x * 3 + 2] = clip8(b)
                                }
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: rows.count, pixels: output)
    }

    private static func resampleColumns(_ image: RGBImage, taps: Taps, height: Int) -> RGBImage {
        let rowBytes = image.width * 3
        var output = [UInt8](repeating: 0, count: rowBytes * height)
        let rounding = Int32(1 << (precisionBits - 1))
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: rowBytes)
        defer { sums.deallocate() }
        image.pixels.withUnsafeBufferPointer { inputBuffer in
            taps.weights.withUnsafeBufferPointer { weightBuffer in
                output.withUnsafeMutableBufferPointer { outBuffer in
                    let input = inputBuffer.baseAddress!, weights = weightBuffer.baseAddress!
                    let out = outBuffer.baseAddress!
                    for y in 0..<height {
                        sums.update(repeating: rounding, count: rowBytes)
                        let first = taps.first[y], kernel = weights + y * taps.size
                        for tap in 0..<taps.count[y] {
                            let weight = kernel[tap]
                            let row = input + (first + tap) * rowBytes
                            for index in 0..<rowBytes { sums[index] &+= Int32(row[index]) &* weight }
                        }
                        let outRow = out + y * rowBytes
                        for index in 0..<rowBytes { outRow[index] = clip8(sums[index]) }
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: height, pixels: output)
    }
}
