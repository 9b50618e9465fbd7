// Why an image could not be used, naming the file.

/// A file that cannot become model input. Every case names the file (`source`) and the reason.
public enum ImagingError: Error, CustomStringConvertible, Sendable, Equatable {
    case unreadable(source: String, reason: String)
    case empty(source: String)
    /// Not JPEG, PNG, WebP, GIF, HEIC or AVIF; `detected` says what the bytes look like.
    case unsupportedFormat(source: String, detected: String)
    case corrupt(source: String, format: String, reason: String)
    case truncated(source: String, format: String, reason: String)
    case zeroSized(source: String)
    /// More pixels than the configured limit (a decompression bomb); refused before decoding.
    case tooLarge(source: String, width: Int, height: Int, limit: Int)
    case outOfMemory(source: String)

    public var description: String {
        switch self {
        case let .unreadable(source, reason): "\(source): cannot read the file: \(reason)"
        case let .empty(source): "\(source): the file is empty"
        case let .unsupportedFormat(source, detected):
            "\(source): not a JPEG, PNG, WebP, GIF, HEIC or AVIF image (\(detected))"
        case let .corrupt(source, format, reason): "\(source): corrupt \(format): \(reason)"
        case let .truncated(source, format, reason): "\(source): truncated \(format): \(reason)"
        case let .zeroSized(source): "\(source): the image has no pixels"
        case let .tooLarge(source, width, height, limit):
            "\(source): \(width) x \(height) pixels is more than the limit of \(limit) (INFMLLM_MAX_IMAGE_PIXELS)"
        case let .outOfMemory(source): "\(source): not enough memory to decode"
        }
    }

    /// The file the error is about.
    public var source: String {
        switch self {
        case let .unreadable(source, _), let .empty(source), let .unsupportedFormat(source, _),
            let .corrupt(source, _, _), let .truncated(source, _, _), let .zeroSized(source),
            let .tooLarge(source, _, _, _), let .outOfMemory(source):
            source
        }
    }
}
