// Why a model directory cannot be loaded or a request cannot run.

import Foundation

/// A model problem that names the file, the tensor or the input.
public enum ModelError: Error, CustomStringConvertible, Sendable {
    case badConfiguration(file: String, reason: String)
    case noWeights(directory: String, found: [String])
    case unknownLayout(directory: String, expected: [String], found: [String])
    /// The prompt plus the tokens to generate do not fit the context.
    case promptTooLong(tokens: Int, limit: Int)
    case badRequest(String)
    /// One request needs more working memory than the budget allows, even alone.
    case exceedsMemory(needed: Int, budget: Int, what: String)

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
        case let .exceedsMemory(needed, budget, what):
            "\(what) needs about \(byteCount(needed)) of working memory, more than the \(byteCount(budget)) "
                + "budget (--max-memory less the model's weights)"
        }
    }
}

/// Bytes for people: "812 KiB", "3.4 MiB", "14.2 GiB".
public func byteCount(_ bytes: Int) -> String {
    let value = Double(bytes)
    if value < 1_048_576 { return "\(Int((value / 1024).rounded())) KiB" }
    if value < 1_073_741_824 { return String(format: "%.1f MiB", value / 1_048_576) }
    return String(format: "%.1f GiB", value / 1_073_741_824)
}
