// Checkpoints saved with peft LoRA adapters still attached: the pairs are folded into their base weights
// (W + (alpha / r) · B · A) and peft's name wrapping is removed, so the networks see plain weights.

import COpenBLAS
import Tensors

/// Folds LoRA pairs into plain weights.
public enum LoRAMerge {
    /// The tensors with every `X.lora_A.weight` / `X.lora_B.weight` pair merged into `X.weight`, and peft's
    /// `base_model.model.` and `.base_layer` name parts removed.
    ///
    /// - Parameter alpha: LoRA's alpha; nil means alpha = r (scale 1), peft's default when none is recorded.
    public static func merged(_ tensors: [String: WeightTensor], alpha: Float?, source: String) throws -> [String:
        WeightTensor]
    {
        guard tensors.keys.contains(where: { $0.contains("lora_A") || $0.contains("base_model.model.") }) else {
            return tensors
        }
        var plain: [String: WeightTensor] = [:]
        var pairs: [String: (a: WeightTensor?, b: WeightTensor?)] = [:]
        for (name, tensor) in tensors {
            let clean = name.replacingOccurrences(of: "base_model.model.", with: "").replacingOccurrences(
                of: ".base_layer", with: "")
            if let range = clean.range(of: ".lora_A") {
                pairs[String(clean[..<range.lowerBound]), default: (nil, nil)].a = tensor
            } else if let range = clean.range(of: ".lora_B") {
                pairs[String(clean[..<range.lowerBound]), default: (nil, nil)].b = tensor
            } else {
                plain[clean] = tensor
            }
        }
        for (prefix, pair) in pairs {
            guard let a = pair.a, let b = pair.b, let base = plain[prefix + ".weight"] else {
                throw TensorError.badTensor(
                    file: source, tensor: prefix, reason: "a LoRA pair needs lora_A, lora_B and the base weight")
            }
            guard a.shape.count == 2, b.shape.count == 2, a.shape[0] > 0, b.shape[1] == a.shape[0],
                base.shape == [b.shape[0], a.shape[1]]
            else {
                throw TensorError.badTensor(
                    file: source, tensor: prefix,
                    reason: "LoRA shapes A \(a.shape), B \(b.shape) do not fit \(base.shape)")
            }
            let rank = a.shape[0]
            var weight = base.floats()
            let aValues = a.floats(), bValues = b.floats()
            let scale = (alpha ?? Float(rank)) / Float(rank)
            // weight += scale · B[out, r] · A[r, in]
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(base.shape[0]), Int32(base.shape[1]), Int32(rank),
                scale,
                bValues, Int32(rank), aValues, Int32(base.shape[1]), 1, &weight, Int32(base.shape[1]))
            plain[prefix + ".weight"] = OwnedBytes.tensor(name: prefix + ".weight", shape: base.shape, values: weight)
        }
        return plain
    }
}
