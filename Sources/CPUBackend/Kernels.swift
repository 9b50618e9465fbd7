// The element-wise and row-wise operations of the three networks, in f32, as PyTorch computes them.

import COpenBLAS
import Foundation

/// Row-wise and element-wise kernels over row-major `[rows, width]` arrays.
public enum Kernels {
    /// LayerNorm over each row: (x - mean) / sqrt(var + eps) * weight + bias, biased variance.
    public static func layerNorm(_ x: [Float], width: Int, weight: [Float], bias: [Float], epsilon: Float) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for row in 0..<(x.count / width) {
            let base = row * width
            var mean: Float = 0
            for i in 0..<width { mean += x[base + i] }
            mean /= Float(width)
            var variance: Float = 0
            for i in 0..<width {
                let d = x[base + i] - mean
                variance += d * d
            }
            variance /= Float(width)
            let inverse = 1 / (variance + epsilon).squareRoot()
            for i in 0..<width { out[base + i] = (x[base + i] - mean) * inverse * weight[i] + bias[i] }
        }
        return out
    }

    /// LLaMA's RMSNorm: x / sqrt(mean(x²) + eps) * weight.
    public static func rmsNorm(_ x: [Float], width: Int, weight: [Float], epsilon: Float) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for row in 0..<(x.count / width) {
            let base = row * width
            var sum: Float = 0
            for i in 0..<width { sum += x[base + i] * x[base + i] }
            let inverse = 1 / (sum / Float(width) + epsilon).squareRoot()
            for i in 0..<width { out[base + i] = weight[i] * (x[base + i] * inverse) }
        }
        return out
    }

    /// Exact GELU, x · Φ(x) with the error function (PyTorch's default `nn.GELU()`).
    public static func gelu(_ x: inout [Float]) {
        let inverseRoot2 = Float(0.5).squareRoot()
        for i in x.indices { x[i] = 0.5 * x[i] * (1 + erff(x[i] * inverseRoot2)) }
    }

    /// SiLU(gate) * up, LLaMA's gated MLP activation, written into `gate`.
    public static func siluMultiply(_ gate: inout [Float], _ up: [Float]) {
        for i in gate.indices {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    public static func add(_ x: inout [Float], _ y: [Float]) {
        for i in x.indices { x[i] += y[i] }
    }

    /// Softmax over `values[0..<count]` in place; entries at -infinity get probability 0. A row with no finite
    /// entry becomes all zeros.
    public static func softmax(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for i in 0..<count where values[i] > maximum { maximum = values[i] }
        guard maximum > -Float.infinity else {
            values.update(repeating: 0, count: count)
            return
        }
        var sum: Float = 0
        for i in 0..<count {
            let e = expf(values[i] - maximum)
            values[i] = e
            sum += e
        }
        for i in 0..<count { values[i] /= sum }
    }

    /// out[t, h, :] = softmax(q[t, h] · k[s, h']ᵀ · scale + mask[t, s]) · v[s, h'] for each head h, where
    /// h' = h / (headCount / kvHeadCount). Row strides: q and out `headCount * headSize`, k and v
    /// `kvHeadCount * headSize`. `allowed(t, s)` says which key positions a query may see.
    public static func attention(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
        queries: Int, keys: Int, headCount: Int, kvHeadCount: Int, headSize: Int, scale: Float,
        allowed: (Int, Int) -> Bool
    ) {
        let qStride = headCount * headSize, kvStride = kvHeadCount * headSize
        let group = headCount / kvHeadCount
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: queries * keys)
        defer { scores.deallocate() }
        for head in 0..<headCount {
            let kvHead = head / group
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(queries), Int32(keys), Int32(headSize), scale,
                q + head * headSize, Int32(qStride), k + kvHead * headSize, Int32(kvStride), 0, scores, Int32(keys))
            for t in 0..<queries {
                let row = scores + t * keys
                for s in 0..<keys where !allowed(t, s) { row[s] = -.infinity }
                softmax(row, count: keys)
            }
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(queries), Int32(headSize), Int32(keys), 1, scores,
                Int32(keys), v + kvHead * headSize, Int32(kvStride), 0, out + head * headSize, Int32(qStride))
        }
    }
}
