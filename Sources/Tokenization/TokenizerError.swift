// Everything that can go wrong reading a tokenizer file.

/// A tokenizer file that cannot be used, with the file and the reason.
public enum TokenizerError: Error, CustomStringConvertible, Sendable {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// The bytes are not a valid file of the expected format.
    case malformed(path: String, reason: String)
    /// The file is valid but describes something this tokenizer does not implement.
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read tokenizer \(path): \(reason)"
        case let .malformed(path, reason): "malformed tokenizer \(path): \(reason)"
        case let .unsupported(path, reason): "unsupported tokenizer \(path): \(reason)"
        }
    }
}
