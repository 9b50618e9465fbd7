// What names a model's visual tokens: the weights that make them, the preprocessing and the arithmetic, so that
// tokens computed once can be found again (the visual-embedding cache) and never mistaken for another model's.

import Compute
import Imaging
import Tensors

extension VisionLanguageModel {
    /// A SHA-256 over the vision encoder's, its LayerNorm's and the pool-adapter's tensors (names, element types,
    /// shapes and bytes), the preprocessing (size, padding to a square, mean and standard deviation) and the
    /// backend's arithmetic: equal for two loads exactly when their visual tokens are bit for bit the same.
    ///
    /// Reads every vision weight (about 2 GB for EVA ViT-g in bf16, a second or two): call once per process.
    public func visionFingerprint() -> String {
        var hasher = SHA256.Hasher()
        let preprocessing = preprocessor
        hasher.update(
            Array(
                ("infmllm vision v1\u{0}\(backend.arithmetic)\u{0}\(preprocessing.size) \(preprocessing.expandToSquare) "
                    + "\(preprocessing.mean) \(preprocessing.std)\u{0}").utf8))
        for tensor in visionWeights {
            hasher.update(Array("\(tensor.name) \(tensor.dtype) \(tensor.shape)\u{0}".utf8))
            hasher.update(UnsafeRawBufferPointer(start: tensor.base, count: tensor.count * tensor.dtype.size))
        }
        return SHA256.hex(hasher.finish())
    }
}
