// Bounding boxes in generated text: four numbers in 0...1 (x1, y1, x2, y2), written as `(x1,y1),(x2,y2)`,
// `[x1, y1, x2, y2]`, inside `<box>…</box>`, with `1`, `1.0` and `0` allowed; converted to original-image pixels.
// The chat model sees the image padded to a square: its coordinates span the square, and the padding is taken off.

import Imaging
import Jobs

public enum BoxParser {
    /// Every box in `text`, in order. Groups of four numbers count only when each two are separated by one comma
    /// and nothing else but brackets and spaces, and every value lies in 0...1 (a number after a minus sign is
    /// negative); anything else is ignored rather than guessed at, so an output with no box gives an empty list
    /// (never a made-up (0,0,0,0)), and a number before a box (`1. [x1, y1, x2, y2]`) is not taken into it.
    public static func boxes(in text: String, width: Int, height: Int) -> [GroundingBox] {
        boxes(in: text, frame: ImageFrame(width: width, height: height))
    }

    /// Every box in `text`, the model's coordinates spanning `frame`'s canvas, converted to the original image:
    /// pixels are `value x canvas side - padding`, clamped to the image; normalised values are those pixels over
    /// the image's width and height.
    public static func boxes(in text: String, frame: ImageFrame) -> [GroundingBox] {
        let numbers = scanNumbers(text)
        var boxes: [GroundingBox] = []
        var index = 0
        while index + 3 < numbers.count {
            let group = numbers[index..<(index + 4)]
            let joined = zip(group.dropLast(), group.dropFirst()).allSatisfy { pair in
                let gap = text[pair.0.range.upperBound..<pair.1.range.lowerBound]
                return gap.allSatisfy { " ,()[]\t".contains($0) } && gap.filter { $0 == "," }.count == 1
            }
            let values = group.map(\.value)
            guard joined, values.allSatisfy({ (0...1).contains($0) }) else {
                index += 1
                continue
            }
            let x1 = convert(min(values[0], values[2]), span: frame.frameWidth, offset: frame.left, to: frame.width)
            let x2 = convert(max(values[0], values[2]), span: frame.frameWidth, offset: frame.left, to: frame.width)
            let y1 = convert(min(values[1], values[3]), span: frame.frameHeight, offset: frame.top, to: frame.height)
            let y2 = convert(max(values[1], values[3]), span: frame.frameHeight, offset: frame.top, to: frame.height)
            boxes.append(
                GroundingBox(
                    x1: x1.normalized, y1: y1.normalized, x2: x2.normalized, y2: y2.normalized, pixelX1: x1.pixel,
                    pixelY1: y1.pixel, pixelX2: x2.pixel, pixelY2: y2.pixel))
            index += 4
        }
        return boxes
    }

    /// A coordinate over a canvas of `span` pixels whose image starts at `offset` and is `extent` long, as a fraction
    /// of the image and in its pixels (clamped to it). Without padding the written value is kept as it is.
    static func convert(_ value: Double, span: Int, offset: Int, to extent: Int) -> (normalized: Double, pixel: Double)
    {
        if span == extent && offset == 0 { return (value, value * Double(extent)) }
        let pixel = min(Double(extent), max(0, value * Double(span) - Double(offset)))
        return (extent > 0 ? pixel / Double(extent) : 0, pixel)
    }

    /// Decimal numbers (`12`, `0.5`, `.5`, `1.`, negative after `-`) and where they are.
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
                let negative = index > text.startIndex && text[text.index(before: index)] == "-"
                found.append((negative ? -value : value, index..<end))
            }
            index = end
        }
        return found
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
