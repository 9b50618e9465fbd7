// The seam's buffer forms on the CPU: buffers are host arrays, so each call hands their values to the array kernels.

import Compute
import Tensors

extension CPUBackend {
    public func buffer(_ values: [Float]) -> ComputeBuffer { ComputeBuffer(values) }

    public func zeros(_ count: Int, _ type: KVElementType) -> ComputeBuffer { ComputeBuffer(zeros: count, type) }

    public func uninitialized(_ count: Int, _ type: KVElementType) -> ComputeBuffer {
        ComputeBuffer(uninitialized: count, type)
    }

    public func values(_ x: ComputeBuffer) -> [Float] {
        precondition(x.device == nil, "a device buffer reached the CPU backend")
        switch x.elementType {
        case .f32: return x.floats
        case .bf16: return x.halves.map { Float(bitPattern: UInt32($0) << 16) }
        }
    }

    public func linear(_ x: ComputeBuffer, rows: Int, weight: any PreparedMatrix, bias: ComputeBuffer?)
        -> ComputeBuffer
    {
        ComputeBuffer(linear(x.floats, rows: rows, weight: weight, bias: bias?.floats))
    }

    public func layerNorm(_ x: ComputeBuffer, width: Int, weight: ComputeBuffer, bias: ComputeBuffer, epsilon: Float)
        -> ComputeBuffer
    {
        ComputeBuffer(layerNorm(x.floats, width: width, weight: weight.floats, bias: bias.floats, epsilon: epsilon))
    }

    public func rmsNorm(_ x: ComputeBuffer, width: Int, weight: ComputeBuffer, epsilon: Float) -> ComputeBuffer {
        ComputeBuffer(rmsNorm(x.floats, width: width, weight: weight.floats, epsilon: epsilon))
    }

    public func gelu(_ x: inout ComputeBuffer) { gelu(&x.floats) }

    public func siluMultiply(_ gate: inout ComputeBuffer, _ up: ComputeBuffer) { siluMultiply(&gate.floats, up.floats) }

    public func add(_ x: inout ComputeBuffer, _ y: ComputeBuffer) { add(&x.floats, y.floats) }

    public func addBias(_ x: inout ComputeBuffer, width: Int, bias: ComputeBuffer) {
        addBias(&x.floats, width: width, bias: bias.floats)
    }

    public func rotary(
        _ x: inout ComputeBuffer, heads: Int, headSize: Int, positions: [Int], inverseFrequencies: ComputeBuffer
    ) {
        rotary(
            &x.floats, heads: heads, headSize: headSize, positions: positions,
            inverseFrequencies: inverseFrequencies.floats)
    }

    public func patchRows(_ images: [[Float]], size: Int, patch: Int) -> ComputeBuffer {
        let grid = size / patch
        var rows = [Float]()
        rows.reserveCapacity(images.count * grid * grid * 3 * patch * patch)
        for image in images {
            for gy in 0..<grid {
                for gx in 0..<grid {
                    for channel in 0..<3 {
                        for y in 0..<patch {
                            let base = channel * size * size + (gy * patch + y) * size + gx * patch
                            rows.append(contentsOf: image[base..<(base + patch)])
                        }
                    }
                }
            }
        }
        return ComputeBuffer(rows)
    }

    public func gatherRows(_ x: ComputeBuffer, width: Int, rows: [Int]) -> ComputeBuffer {
        var out = [Float](repeating: 0, count: rows.count * width)
        for (index, row) in rows.enumerated() {
            out.replaceSubrange(
                (index * width)..<((index + 1) * width), with: x.floats[(row * width)..<((row + 1) * width)])
        }
        return ComputeBuffer(out)
    }

    public func averagePool(_ x: ComputeBuffer, images: Int, grid: Int, pool: Int, width: Int) -> ComputeBuffer {
        let tokens = 1 + grid * grid, kernel = grid / pool
        var out = [Float](repeating: 0, count: images * pool * pool * width)
        let area = Float(kernel * kernel)
        out.withUnsafeMutableBufferPointer { out in
            x.floats.withUnsafeBufferPointer { normalized in
                for image in 0..<images {
                    for i in 0..<pool {
                        for j in 0..<pool {
                            let target = out.baseAddress! + ((image * pool + i) * pool + j) * width
                            for dy in 0..<kernel {
                                for dx in 0..<kernel {
                                    let patch = (i * kernel + dy) * grid + (j * kernel + dx)
                                    let source = normalized.baseAddress! + (image * tokens + 1 + patch) * width
                                    for c in 0..<width { target[c] += source[c] }
                                }
                            }
                            for c in 0..<width { target[c] /= area }
                        }
                    }
                }
            }
        }
        return ComputeBuffer(out)
    }

    public func copy(
        _ source: ComputeBuffer, into destination: inout ComputeBuffer, runs: [(from: Int, to: Int)], length: Int
    ) {
        ComputeBuffer.checkCopy(from: source, into: destination, runs: runs, length: length)
        switch (source.elementType, destination.elementType) {
        case (.f32, .f32):
            source.floats.withUnsafeBufferPointer { from in
                destination.floats.withUnsafeMutableBufferPointer { to in
                    for run in runs {
                        (to.baseAddress! + run.to).update(from: from.baseAddress! + run.from, count: length)
                    }
                }
            }
        case (.f32, .bf16):
            source.floats.withUnsafeBufferPointer { from in
                destination.halves.withUnsafeMutableBufferPointer { to in
                    for run in runs {
                        for i in 0..<length { to[run.to + i] = DType.bfloat16Bits(from[run.from + i]) }
                    }
                }
            }
        default:
            source.halves.withUnsafeBufferPointer { from in
                destination.halves.withUnsafeMutableBufferPointer { to in
                    for run in runs {
                        (to.baseAddress! + run.to).update(from: from.baseAddress! + run.from, count: length)
                    }
                }
            }
        }
    }

    public func attention(
        q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, offsets: (q: Int, k: Int, v: Int), valid: [UInt8]?,
        validItemStride: Int, shape: AttentionShape
    ) -> ComputeBuffer {
        precondition(k.elementType == shape.kvType && v.elementType == shape.kvType, "attention: key type")
        let width = shape.heads * shape.headSize
        let outCount =
            shape.items == 0 || shape.queries == 0
            ? 0 : (shape.items - 1) * shape.outputItemStride + (shape.queries - 1) * shape.outputStride + width
        var out = [Float](repeating: 0, count: outCount)
        guard outCount > 0 else { return ComputeBuffer(out) }
        q.floats.withUnsafeBufferPointer { q in
            raw(k, offsets.k) { k in
                raw(v, offsets.v) { v in
                    out.withUnsafeMutableBufferPointer { out in
                        if let valid {
                            valid.withUnsafeBufferPointer { flags in
                                attention(
                                    q: q.baseAddress! + offsets.q, k: k, v: v, out: out.baseAddress!,
                                    valid: flags.baseAddress!, validItemStride: validItemStride, shape: shape)
                            }
                        } else {
                            attention(
                                q: q.baseAddress! + offsets.q, k: k, v: v, out: out.baseAddress!, valid: nil,
                                validItemStride: validItemStride, shape: shape)
                        }
                    }
                }
            }
        }
        return ComputeBuffer(out)
    }

    public func segmentedAttention(q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, _ layout: SegmentedAttention)
        -> ComputeBuffer
    {
        precondition(k.elementType == layout.kvType && v.elementType == layout.kvType, "attention: key type")
        let outCount = layout.rows * layout.heads * layout.headSize
        var out = [Float](repeating: 0, count: outCount)
        guard outCount > 0 else { return ComputeBuffer(out) }
        q.floats.withUnsafeBufferPointer { q in
            raw(k, 0) { k in
                raw(v, 0) { v in
                    out.withUnsafeMutableBufferPointer { out in
                        segmentedAttention(q: q.baseAddress!, k: k, v: v, out: out.baseAddress!, layout)
                    }
                }
            }
        }
        return ComputeBuffer(out)
    }

    /// A buffer's host values from element `offset`, whichever element type they have.
    private func raw(_ buffer: ComputeBuffer, _ offset: Int, _ body: (UnsafeRawPointer) -> Void) {
        switch buffer.elementType {
        case .f32: buffer.floats.withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress! + offset)) }
        case .bf16: buffer.halves.withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress! + offset)) }
        }
    }
}
