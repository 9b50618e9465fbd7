// One request's prompt laid out for the scheduler: its token chunks around the image, the part it shares with every
// request on the same image and template head (the prefix), and the fixed chunks its positions are computed in.

import Foundation
import Models

/// What identifies a shared prompt prefix: the image, the tokens before it, and how many positions it covers (one
/// fewer when no text follows the image), so that requests share a prefix only when they would compute the same
/// one alone.
struct PrefixKey: Hashable, Sendable {
    let imageKey: String
    let before: [Int]
    let length: Int
}

/// A request's prompt: `before` (BOS and the text before the image), the visual rows, then `after`.
struct PromptPlan: Sendable {
    let text: String
    let before: [Int]
    let after: [Int]
    let visualCount: Int
    let imageKey: String

    /// Every prompt position.
    var length: Int { before.count + visualCount + after.count }

    /// Positions shared by the requests with the same image and `before`: BOS, the text before the image and the
    /// visual rows (multitask: BOS, `<image>` and the visual rows; chat: the system text, `USER: ` and the visual
    /// rows). A request keeps at least one position of its own, whose logits it needs: when no text follows the
    /// image, the last visual row is its own.
    var sharedLength: Int { after.isEmpty ? before.count + visualCount - 1 : before.count + visualCount }

    var prefixKey: PrefixKey { PrefixKey(imageKey: imageKey, before: before, length: sharedLength) }

    /// The next chunk of `0 ..< end` after position `done`, for chunks of `size` counted from `start`: chunk
    /// boundaries depend only on the prompt, never on what else is scheduled, so its values do not either.
    static func chunk(after done: Int, from start: Int, to end: Int, size: Int) -> Range<Int> {
        let index = (done - start) / size
        return done..<min(end, start + (index + 1) * size)
    }

    /// Embeddings of prompt positions `range`: token rows from `embed`, visual rows from `visual` (the image's
    /// `[visualCount, hidden]` rows; only the rows in `range` are read).
    func embeddings(
        _ range: Range<Int>, hidden: Int, embed: ([Int]) -> [Float], visual: (Range<Int>) -> ArraySlice<Float>
    ) -> [Float] {
        var rows: [Float] = []
        rows.reserveCapacity(range.count * hidden)
        let imageStart = before.count, imageEnd = before.count + visualCount
        let textBefore = range.clamped(to: 0..<imageStart)
        if !textBefore.isEmpty { rows += embed(Array(before[textBefore])) }
        let image = range.clamped(to: imageStart..<imageEnd)
        if !image.isEmpty { rows += visual((image.lowerBound - imageStart)..<(image.upperBound - imageStart)) }
        let textAfter = range.clamped(to: imageEnd..<length)
        if !textAfter.isEmpty {
            rows += embed(Array(after[(textAfter.lowerBound - imageEnd)..<(textAfter.upperBound - imageEnd)]))
        }
        return rows
    }
}

extension InferenceEngine {
    /// The layout of `request`'s prompt.
    func plan(_ request: InferenceRequest) throws -> PromptPlan {
        let prompt = try prompt(for: request)
        return PromptPlan(
            text: prompt.text, before: prompt.before, after: prompt.after,
            visualCount: model.configuration.visualTokenCount, imageKey: request.imageKey)
    }
}
