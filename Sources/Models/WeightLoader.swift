// Tensors by checkpoint name, with shape checks and a record of which were used, so that missing, misshapen
// and left-over tensors are all reported with the file they came from.

import Compute
import Tensors

/// Hands out checkpoint tensors by name during model construction.
///
/// Not thread-safe; used only while a model is built.
public final class WeightLoader {
    private let tensors: [String: WeightTensor]
    private let files: [String: String]
    private var used = Set<String>()
    public let source: String
    /// Prepares every weight matrix for its products.
    public let backend: any ComputeBackend

    /// - Parameters:
    ///   - tensors: every tensor of the checkpoint by name.
    ///   - files: the file each tensor came from, for messages.
    ///   - backend: prepares the matrices (packing them, for the CPU's bf16 mode).
    public init(tensors: [String: WeightTensor], files: [String: String], source: String, backend: any ComputeBackend) {
        self.tensors = tensors
        self.files = files
        self.source = source
        self.backend = backend
    }

    public var names: [String] { Array(tensors.keys) }

    public func contains(_ name: String) -> Bool { tensors[name] != nil }

    /// The tensor `name`, which must have `shape`.
    public func tensor(_ name: String, shape: [Int]) throws -> WeightTensor {
        guard let tensor = tensors[name] else {
            throw TensorError.missing(tensor: name, expectedShape: shape, file: source)
        }
        guard tensor.shape == shape else {
            throw TensorError.wrongShape(
                tensor: name, expected: shape, found: tensor.shape, file: files[name] ?? source)
        }
        used.insert(name)
        return tensor
    }

    /// The tensor `name` as a flat Float array.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        try tensor(name, shape: shape).floats()
    }

    /// The tensor `name` (a norm's weight, a bias) in the backend's memory.
    public func vector(_ name: String, shape: [Int]) throws -> ComputeBuffer {
        backend.buffer(try floats(name, shape: shape))
    }

    /// `prefix.weight` `[out, in]` and, when `bias` is true, `prefix.bias` `[out]`, prepared by the backend.
    public func linear(_ prefix: String, out: Int, in inFeatures: Int, bias: Bool = true) throws -> Linear {
        prepared(
            weight: try tensor(prefix + ".weight", shape: [out, inFeatures]),
            bias: bias ? try floats(prefix + ".bias", shape: [out]) : nil)
    }

    /// A layer of `weight` prepared by the backend, counted in `preparedBytes`.
    public func prepared(weight: WeightTensor, bias: [Float]?) -> Linear {
        let layer = Linear(weight: weight, bias: bias, backend: backend)
        preparedBytes += layer.weight.ownedBytes
        return layer
    }

    /// Bytes of the prepared (packed) copies made so far.
    public private(set) var preparedBytes = 0

    /// Fails naming every tensor that no layer took, other than those `ignored` says to skip.
    public func checkAllUsed(ignoring ignored: (String) -> Bool) throws {
        let extra = tensors.keys.filter { !used.contains($0) && !ignored($0) }.sorted()
        guard extra.isEmpty else { throw TensorError.unexpected(tensors: extra, file: source) }
    }
}
