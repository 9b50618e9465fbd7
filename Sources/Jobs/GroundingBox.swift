// A bounding box the model wrote, as results store it: normalised to the original image and in its pixels.

/// One box, normalised to the original image and in its pixels.
public struct GroundingBox: Sendable, Equatable, Codable {
    public var x1, y1, x2, y2: Double  // normalised, clamped to 0...1, x1 <= x2, y1 <= y2
    public var pixelX1, pixelY1, pixelX2, pixelY2: Double

    enum CodingKeys: String, CodingKey {
        case x1, y1, x2, y2
        case pixelX1 = "x1_px", pixelY1 = "y1_px", pixelX2 = "x2_px", pixelY2 = "y2_px"
    }

    public init(
        x1: Double, y1: Double, x2: Double, y2: Double, pixelX1: Double, pixelY1: Double, pixelX2: Double,
        pixelY2: Double
    ) {
        (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
        (self.pixelX1, self.pixelY1, self.pixelX2, self.pixelY2) = (pixelX1, pixelY1, pixelX2, pixelY2)
    }
}
