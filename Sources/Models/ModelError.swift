// Why a model directory cannot be loaded or a request cannot run.

/// A model problem that names the file, the tensor or the input.
public enum ModelError: Error, CustomStringConvertible, Sendable {
    case badConfiguration(file: String, reason: String)
    case noWeights(directory: String, found: [String])
    case unknownLayout(directory: String, expected: [String], found: [String])
    /// The prompt plus the tokens to generate do not fit the context.
    case promptTooLong(tokens: Int, limit: Int)
    case badRequest(String)

    public var description: String {
        switch self {
        case let .badConfiguration(file, reason): "\(file): \(reason)"
        case let .noWeights(directory, found):
            "\(directory): no model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
                + "pytorch_model.bin.index.json (found: \(found.sorted().joined(separator: ", ")))"
        case let .unknownLayout(directory, expected, found):
            "\(directory): tensor names match no known layout; expected names like \(expected.joined(separator: ", ")); "
                + "found names like \(found.prefix(6).joined(separator: ", "))"
        case let .promptTooLong(tokens, limit):
            "the prompt needs \(tokens) positions, more than the \(limit) the model has"
        case let .badRequest(reason): reason
        }
    }
}
