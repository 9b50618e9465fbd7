// y = x Wᵀ + b with OpenBLAS: the operation where nearly all of the model's time goes.

import COpenBLAS
import Tensors

/// A fully connected layer over a checkpoint weight `[outFeatures, inFeatures]`, kept in its stored type.
///
/// f32 weights are used in place; f16/bf16 weights are widened a block of rows at a time into scratch memory,
/// so a 7B model in bf16 never needs an f32 copy of itself.
public struct Linear: Sendable {
    public let weight: WeightTensor  // [out, in]
    public let bias: [Float]?  // [out]
    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }

    static let blockRows = 256

    public init(weight: WeightTensor, bias: [Float]?) {
        precondition(weight.shape.count == 2, "\(weight.name): a linear weight is 2-D, not \(weight.shape)")
        precondition(bias == nil || bias!.count == weight.shape[0], "\(weight.name): bias size")
        self.weight = weight
        self.bias = bias
    }

    /// `x` is `[rows, inFeatures]`; returns `[rows, outFeatures]`.
    public func callAsFunction(_ x: [Float], rows: Int) -> [Float] {
        precondition(x.count == rows * inFeatures, "\(weight.name): input \(x.count) is not \(rows) x \(inFeatures)")
        let n = outFeatures, k = inFeatures
        var y = [Float](repeating: 0, count: rows * n)
        guard rows > 0 else { return y }
        x.withUnsafeBufferPointer { input in
            y.withUnsafeMutableBufferPointer { output in
                if let w = weight.f32Pointer {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k), 1, input.baseAddress,
                        Int32(k), w, Int32(k), 0, output.baseAddress, Int32(n))
                } else {
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Self.blockRows * k)
                    defer { scratch.deallocate() }
                    for start in stride(from: 0, to: n, by: Self.blockRows) {
                        let count = min(Self.blockRows, n - start)
                        weight.convert((start * k)..<((start + count) * k), into: scratch)
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(k), 1,
                            input.baseAddress, Int32(k), scratch, Int32(k), 0, output.baseAddress! + start, Int32(n))
                    }
                }
                if let bias {
                    for row in 0..<rows {
                        let out = output.baseAddress! + row * n
                        for column in 0..<n { out[column] += bias[column] }
                    }
                }
            }
        }
        return y
    }
}
