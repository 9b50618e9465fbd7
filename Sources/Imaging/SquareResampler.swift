// The chat model's expand-to-square then bicubic resize, computed without the square canvas: the pixels are those of
// padding `image` to a side x side canvas of one colour and resizing that with `BicubicResampler`, bit for bit, but
// memory is the S x S output and one row, and work is proportional to the image's pixels, not to the canvas's (a
// 65500 x 1 image would otherwise need a 12.9 GB canvas).
//
// Why it is exact: Pillow's passes are sums of 8-bit values times 22-bit weights in 32-bit integers, rounded once
// per pass. A canvas column of fill colour adds fill x weight, so a horizontal output is the sum over the image's
// columns plus fill x (the weights on fill columns); rows entirely of fill all resample to one row F. The vertical
// pass then sums F x (all its weights) plus weight x (R - F) over the image's rows R, which differ from F only where
// their taps reach the image's columns. Integer sums are the same in any order (wrapping, as the resampler's are).

extension BicubicResampler {
    /// `image` centred on a square of its longer side filled with `fill` (LLaVA's expand2square), resized to
    /// `size` x `size`. The square is built when it holds at most four times the image's pixels (the faster way);
    /// past that its pixels are summed without it (`resizeOnCanvas`), so memory stays within the image's own.
    /// Both give the same pixels.
    public static func resizeExpandedToSquare(_ image: RGBImage, fill: (UInt8, UInt8, UInt8), size: Int) -> RGBImage {
        let frame = ImageFrame.square(width: image.width, height: image.height)
        if frame.frameWidth * frame.frameHeight <= 4 * image.width * image.height {
            let canvas = canvas(image, side: frame.frameWidth, left: frame.left, top: frame.top, fill: fill)
            return resize(canvas, width: size, height: size)
        }
        return resizeOnCanvas(image, side: frame.frameWidth, left: frame.left, top: frame.top, fill: fill, size: size)
    }

    /// `image` placed at (`left`, `top`) on a `side` x `side` canvas of `fill`, resized to `size` x `size`.
    public static func resizeOnCanvas(
        _ image: RGBImage, side: Int, left: Int, top: Int, fill: (UInt8, UInt8, UInt8), size: Int
    ) -> RGBImage {
        precondition(size > 0 && left >= 0 && top >= 0, "resize target must have pixels")
        precondition(left + image.width <= side && top + image.height <= side, "the image must fit the canvas")
        if side == size { return canvas(image, side: side, left: left, top: top, fill: fill) }
        let taps = taps(inputSize: side, outputSize: size)  // the same on both axes of a square
        let rounding = Int32(1 << (precisionBits - 1))
        let fills = [Int32(fill.0), Int32(fill.1), Int32(fill.2)]
        // Per output position: the sum of all its weights, and of those on the image's columns.
        var total = [Int32](repeating: 0, count: size)
        var onImage = [Int32](repeating: 0, count: size)
        var touched = size..<size  // outputs whose taps reach the image's columns: a contiguous range
        for x in 0..<size {
            let first = taps.first[x]
            for tap in 0..<taps.count[x] {
                let weight = taps.weights[x * taps.size + tap]
                total[x] &+= weight
                let column = first + tap
                if column >= left && column < left + image.width { onImage[x] &+= weight }
            }
            let reaches = first < left + image.width && first + taps.count[x] > left
            if reaches {
                touched = touched.isEmpty ? x..<(x + 1) : touched.lowerBound..<(x + 1)
            }
        }
        // F: a row of fill, resampled.
        var fillRow = [Int32](repeating: 0, count: size * 3)
        for x in 0..<size {
            for channel in 0..<3 {
                fillRow[x * 3 + channel] = Int32(clip8(rounding &+ fills[channel] &* total[x]))
            }
        }
        // The vertical sums of weight x (R - F), over the image's rows, for the touched columns only.
        let span = touched.count * 3
        var deltas = [Int32](repeating: 0, count: size * span)
        var row = [Int32](repeating: 0, count: span)
        var firstOutput = 0  // the first output row whose taps reach the current canvas row
        image.pixels.withUnsafeBufferPointer { pixels in
            for imageRow in 0..<image.height {
                let canvasRow = top + imageRow
                // This row's horizontal outputs minus F's, where they can differ.
                let source = pixels.baseAddress! + imageRow * image.width * 3
                for x in touched {
                    let first = taps.first[x]
                    let lower = max(first, left), upper = min(first + taps.count[x], left + image.width)
                    for channel in 0..<3 {
                        var sum = rounding &+ fills[channel] &* (total[x] &- onImage[x])
                        if lower < upper {
                            for column in lower..<upper {
                                sum &+=
                                    Int32(source[(column - left) * 3 + channel])
                                    &* taps.weights[x * taps.size + column - first]
                            }
                        }
                        let index = (x - touched.lowerBound) * 3 + channel
                        row[index] = Int32(clip8(sum)) - fillRow[x * 3 + channel]
                    }
                }
                while firstOutput < size && taps.first[firstOutput] + taps.count[firstOutput] <= canvasRow {
                    firstOutput += 1
                }
                var y = firstOutput
                while y < size && taps.first[y] <= canvasRow {
                    let weight = taps.weights[y * taps.size + canvasRow - taps.first[y]]
                    let base = y * span
                    for index in 0..<span { deltas[base + index] &+= weight &* row[index] }
                    y += 1
                }
            }
        }
        var output = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                for channel in 0..<3 {
                    var sum = rounding &+ fillRow[x * 3 + channel] &* total[y]
                    if touched.contains(x) { sum &+= deltas[y * span + (x - touched.lowerBound) * 3 + channel] }
                    output[(y * size + x) * 3 + channel] = clip8(sum)
                }
            }
        }
        return RGBImage(width: size, height: size, pixels: output)
    }

    /// The canvas itself, for when it is already the output's size.
    static func canvas(_ image: RGBImage, side: Int, left: Int, top: Int, fill: (UInt8, UInt8, UInt8)) -> RGBImage {
        var canvas = RGBImage(width: side, height: side, filledWith: fill)
        let rowBytes = image.width * 3
        for row in 0..<image.height {
            let destination = ((top + row) * side + left) * 3
            canvas.pixels.replaceSubrange(
                destination..<(destination + rowBytes), with: image.pixels[(row * rowBytes)..<((row + 1) * rowBytes)])
        }
        return canvas
    }
}
