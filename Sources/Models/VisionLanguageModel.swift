// An InfMLLM checkpoint directory loaded: configuration, tokenizer, vision encoder, pool-adapter and LLaMA.

import Compute
import Foundation
import Imaging
import Tensors
import Tokenization

/// The whole model, immutable once loaded and shared by every request.
public struct VisionLanguageModel: Sendable {
    public let configuration: ModelConfiguration
    public let tokenizer: LlamaTokenizer
    public let vision: EVAVisionEncoder
    public let adapter: PoolingAdapter
    public let decoder: LlamaDecoder
    public let layout: CheckpointLayout
    public let directory: String
    /// The backend every network computes on.
    public let backend: any ComputeBackend
    /// The element type most of the checkpoint's weight matrices are stored in.
    public let storedMatrixType: DType
    /// Bytes the weights occupy while the model runs: packed copies the backend made, or the mapped checkpoint
    /// when the backend reads it in place.
    public let weightBytes: Int
    /// The tensors that make visual tokens (vision encoder, its LayerNorm, pool-adapter), in name order, for
    /// `visionFingerprint()`.
    let visionWeights: [WeightTensor]

    /// Loads `directory`: config.json, tokenizer.model and the weights (safetensors or PyTorch .bin, f32/f16/bf16).
    /// Fails naming the file and tensor for missing, extra or misshapen tensors.
    ///
    /// - Parameters:
    ///   - languageDirectory: where LLaMA's config.json and tokenizer.model are when `directory` lacks them
    ///     (InfMLLM-7B's repository, which reads them from lmsys/vicuna-7b-v1.5).
    ///   - backend: computes every product and kernel, and prepares the weight matrices for them once here.
    public init(directory: String, languageDirectory: String? = nil, backend: any ComputeBackend) throws {
        self.backend = backend
        self.directory = directory
        configuration = try ModelConfiguration.load(directory: directory, languageDirectory: languageDirectory)
        let tokenizerPath = Self.tokenizerPath(directory: directory, languageDirectory: languageDirectory)
        tokenizer = try LlamaTokenizer(contentsOf: tokenizerPath)
        guard tokenizer.vocabularySize <= configuration.text.vocabularySize else {
            throw ModelError.badConfiguration(
                file: tokenizerPath,
                reason: "\(tokenizer.vocabularySize) pieces but vocab_size is \(configuration.text.vocabularySize)")
        }
        let checkpoint = try CheckpointFiles.read(directory: directory)
        let tensors = try LoRAMerge.merged(checkpoint.tensors, alpha: configuration.loraAlpha, source: directory)
        storedMatrixType = Self.majorityMatrixType(tensors.values)
        let weights = WeightLoader(tensors: tensors, files: checkpoint.files, source: directory, backend: backend)
        layout = try CheckpointLayout.detect(variant: configuration.variant, names: weights.names, directory: directory)
        vision = try EVAVisionEncoder(
            weights, prefix: layout.vision, configuration: configuration.vision, imageSize: configuration.imageSize)
        adapter = try PoolingAdapter(
            weights, lnPrefix: layout.lnVision, poolerPrefix: layout.pooler,
            visionWidth: configuration.vision.hiddenSize,
            textWidth: configuration.text.hiddenSize, grid: configuration.gridSize, pool: configuration.poolOutSize,
            lnEpsilon: configuration.resolvedLnVisionEpsilon)
        decoder = try LlamaDecoder(
            weights, prefix: layout.language, lmHead: layout.lmHead, configuration: configuration.text)
        try weights.checkAllUsed(ignoring: CheckpointLayout.isIgnored)
        let visionPrefixes = [layout.vision, layout.lnVision, layout.pooler]
        visionWeights = tensors.values.filter { tensor in visionPrefixes.contains { tensor.name.hasPrefix($0) } }
            .sorted { $0.name < $1.name }
        let mapped = tensors.values.reduce(0) { $0 + $1.count * $1.dtype.size }
        weightBytes = max(mapped, weights.preparedBytes)
    }

    /// The model directory's tokenizer.model, or the language directory's when the model has none.
    public static func tokenizerPath(directory: String, languageDirectory: String?) -> String {
        let own = (directory as NSString).appendingPathComponent("tokenizer.model")
        guard let languageDirectory, !FileManager.default.fileExists(atPath: own) else { return own }
        return (languageDirectory as NSString).appendingPathComponent("tokenizer.model")
    }

    /// The element type of most of `directory`'s 2-D tensors (by element count), read from the file headers only:
    /// bf16 checkpoints default to the bf16 compute mode.
    public static func storedMatrixType(directory: String) throws -> DType {
        majorityMatrixType(try CheckpointFiles.read(directory: directory).tensors.values)
    }

    /// Elements of `directory`'s weight matrices (every tensor of two or more dimensions), from the file headers
    /// only: what a device backend holds once the model is loaded, times the element size.
    public static func matrixElements(directory: String) throws -> Int {
        try CheckpointFiles.read(directory: directory).tensors.values.filter { $0.shape.count >= 2 }
            .reduce(0) { $0 + $1.count }
    }

    static func majorityMatrixType<Tensors: Sequence<WeightTensor>>(_ tensors: Tensors) -> DType {
        var counts: [DType: Int] = [:]
        for tensor in tensors where tensor.shape.count >= 2 { counts[tensor.dtype, default: 0] += tensor.count }
        return counts.max { $0.value < $1.value }?.key ?? .f32
    }

    /// The preprocessing this variant's reference uses: stretch for multitask, expand-to-square for chat.
    public var preprocessor: ImagePreprocessor {
        ImagePreprocessor(
            size: configuration.imageSize, expandToSquare: configuration.variant == .chat,
            mean: configuration.imageMean ?? ImagePreprocessor.clipMean,
            std: configuration.imageStd ?? ImagePreprocessor.clipStd)
    }

    /// Working memory (bytes) of a vision pass over `images` images: the activations, and one image's attention
    /// scores and probabilities (`heads x tokens²`, f32 and bf16), which a GPU holds whole while it attends one
    /// image at a time. An estimate with headroom.
    public func visionWorkingBytes(images: Int) -> Int {
        let vision = configuration.vision
        let tokens = 1 + configuration.gridSize * configuration.gridSize
        return images * tokens * (8 * vision.hiddenSize + 2 * vision.intermediateSize) * 4
            + vision.headCount * tokens * tokens * 6
    }

    /// Working memory (bytes) of a decoder pass over `rows` positions whose attention takes at most `chunk` queries
    /// of a sequence over at most `keys` keys, with `logitRows` rows of logits: the activations, the attention
    /// scores and probabilities (all heads at once, as a GPU holds them; more than the CPU's per-thread blocks)
    /// and the logits with their copies while tokens are chosen.
    public func decoderWorkingBytes(rows: Int, chunk: Int, keys: Int, logitRows: Int) -> Int {
        let text = configuration.text
        return rows * (9 * text.hiddenSize + 3 * text.intermediateSize) * 4 + text.headCount * chunk * keys * 6
            + 4 * logitRows * text.vocabularySize * 4
    }

    /// Visual tokens for preprocessed images: `images.count` x `[P², textHidden]`.
    public func visualTokens(_ images: [PreprocessedImage]) -> [Float] {
        guard !images.isEmpty else { return [] }
        let features = vision.features(images.map(\.values))
        return backend.values(adapter(features, imageCount: images.count))
    }
}
