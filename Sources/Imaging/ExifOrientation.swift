// The Exif orientation of an image: how its stored pixels turn into what viewers show. The model sees the stored
// pixels (the reference preprocessing does not apply the tag, and neither does decoding here); viewers, browsers and
// most annotation tools show the image turned, as Pillow's `ImageOps.exif_transpose` does. Boxes found on the stored
// pixels map to the shown image through `displayed(box:width:height:)`.

/// An Exif orientation tag, 1 to 8.
public struct ExifOrientation: Sendable, Equatable {
    public let value: Int

    /// Nil for a value outside 1...8.
    public init?(_ value: Int) {
        guard (1...8).contains(value) else { return nil }
        self.value = value
    }

    /// Whether the shown image is the stored one turned a quarter (width and height swap).
    public var swapsSides: Bool { value >= 5 }

    /// The shown size of a stored `width` x `height` image.
    public func displayedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        swapsSides ? (height, width) : (width, height)
    }

    /// A point of the stored image, in pixel-edge coordinates (0...width, 0...height), in the shown image: 2 mirrors,
    /// 3 turns half round, 4 flips, 5 transposes, 6 turns a quarter clockwise, 7 transverses, 8 turns a quarter
    /// counter-clockwise (Pillow's FLIP_LEFT_RIGHT, ROTATE_180, FLIP_TOP_BOTTOM, TRANSPOSE, ROTATE_270, TRANSVERSE and
    /// ROTATE_90).
    public func displayed(x: Double, y: Double, width: Double, height: Double) -> (x: Double, y: Double) {
        switch value {
        case 2: (width - x, y)
        case 3: (width - x, height - y)
        case 4: (x, height - y)
        case 5: (y, x)
        case 6: (height - y, x)
        case 7: (height - y, width - x)
        case 8: (y, width - x)
        default: (x, y)
        }
    }

    /// A box (x1, y1, x2, y2, x1 < x2, y1 < y2) of the stored `width` x `height` image in the shown image.
    public func displayed(box: [Double], width: Double, height: Double) -> [Double] {
        guard box.count == 4 else { return box }
        let a = displayed(x: box[0], y: box[1], width: width, height: height)
        let b = displayed(x: box[2], y: box[3], width: width, height: height)
        return [min(a.x, b.x), min(a.y, b.y), max(a.x, b.x), max(a.y, b.y)]
    }
}
