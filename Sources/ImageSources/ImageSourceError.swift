// Why an image could not be listed or read, naming the image (its URI as the user gave it) and the reason.

/// A failure to list or read an image. `isTransient` says whether trying again later may succeed (a timeout, a
/// 5xx or 429 answer); the reader has already retried those before giving up.
public struct ImageSourceError: Error, CustomStringConvertible, Sendable {
    public let source: String
    public let reason: String
    public let isTransient: Bool

    public init(source: String, reason: String, isTransient: Bool = false) {
        self.source = source
        self.reason = reason
        self.isTransient = isTransient
    }

    public var description: String { "\(source): \(reason)" }
}
