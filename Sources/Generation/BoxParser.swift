// Bounding boxes in generated text: four numbers in 0...1 (x1, y1, x2, y2), written as `(x1,y1),(x2,y2)`,
// `[x1, y1, x2, y2]`, inside `<box>…</box>`, with `1`, `1.0` and `0` allowed; converted to original-image pixels.

/// One box, normalised to the original image and in its pixels.
public struct GroundingBox: Sendable, Equatable, Codable {
    public var x1, y1, x2, y2: Double  // normalised, clamped to 0...1, x1 <= x2, y1 <= y2
    public var pixelX1, pixelY1, pixelX2, pixelY2: Double

    enum CodingKeys: String, CodingKey {
        case x1, y1, x2, y2
        case pixelX1 = "x1_px", pixelY1 = "y1_px", pixelX2 = "x2_px", pixelY2 = "y2_px"
    }
}

public enum BoxParser {
    /// Every box in `text`, in order. Groups of four numbers count only when nothing but brackets, commas and
    /// spaces separates them and every value lies in 0...1; anything else is ignored rather than guessed at,
    /// so an output with no box gives an empty list (never a made-up (0,0,0,0)).
    public static func boxes(in text: String, width: Int, height: Int) -> [GroundingBox] {
        let numbers = scanNumbers(text)
        var boxes: [GroundingBox] = []
        var index = 0
        while index + 3 < numbers.count {
            let group = numbers[index..<(index + 4)]
            let joined = zip(group.dropLast(), group.dropFirst()).allSatisfy { pair in
                text[pair.0.range.upperBound..<pair.1.range.lowerBound].allSatisfy { " ,()[]\t".contains($0) }
            }
            let values = group.map(\.value)
            guard joined, values.allSatisfy({ (0...1).contains($0) }) else {
                index += 1
                continue
            }
            let x1 = min(values[0], values[2]), x2 = max(values[0], values[2])
            let y1 = min(values[1], values[3]), y2 = max(values[1], values[3])
            boxes.append(
                GroundingBox(
                    x1: x1, y1: y1, x2: x2, y2: y2, pixelX1: x1 * Double(width), pixelY1: y1 * Double(height),
                    pixelX2: x2 * Double(width), pixelY2: y2 * Double(height)))
            index += 4
        }
        return boxes
    }

    /// Unsigned decimal numbers (`12`, `0.5`, `.5`, `1.`) and where they are.
    static func scanNumbers(_ text: String) -> [(value: Double, range: Range<String.Index>)] {
        var found: [(Double, Range<String.Index>)] = []
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let startsNumber =
                character.isASCIIDigit
                || (character == "." && text.index(after: index) < text.endIndex
                    && text[text.index(after: index)].isASCIIDigit)
            guard startsNumber else {
                index = text.index(after: index)
                continue
            }
            var end = index
            var seenDot = false
            while end < text.endIndex, text[end].isASCIIDigit || (text[end] == "." && !seenDot) {
                if text[end] == "." { seenDot = true }
                end = text.index(after: end)
            }
            if let value = Double(
                text[index..<end].hasSuffix(".") ? String(text[index..<end]) + "0" : String(text[index..<end]))
            {
                found.append((value, index..<end))
            }
            index = end
        }
        return found
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
