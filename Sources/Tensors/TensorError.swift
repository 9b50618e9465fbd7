// Everything that can go wrong reading checkpoint tensors, naming the file and the tensor.

/// A checkpoint that cannot be used as it is.
public enum TensorError: Error, CustomStringConvertible, Sendable {
    case unreadable(file: String, reason: String)
    case badHeader(file: String, reason: String)
    case badTensor(file: String, tensor: String, reason: String)
    case missing(tensor: String, expectedShape: [Int], file: String)
    case wrongShape(tensor: String, expected: [Int], found: [Int], file: String)
    case unexpected(tensors: [String], file: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): "\(file): cannot read: \(reason)"
        case let .badHeader(file, reason): "\(file): bad header: \(reason)"
        case let .badTensor(file, tensor, reason): "\(file): tensor \(tensor): \(reason)"
        case let .missing(tensor, shape, file): "\(file): missing tensor \(tensor) \(shape)"
        case let .wrongShape(tensor, expected, found, file):
            "\(file): tensor \(tensor) has shape \(found), expected \(expected)"
        case let .unexpected(tensors, file):
            "\(file): \(tensors.count) unexpected tensor(s): \(tensors.prefix(8).joined(separator: ", "))"
                + (tensors.count > 8 ? ", ..." : "")
        }
    }
}
