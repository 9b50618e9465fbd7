// How the scheduler batches: rows per step, the prompt chunk size and step budget, vision batches, and the
// key/value memory it holds, sized from a memory budget.

import Models

/// Limits and sizes of a `Scheduler`.
public struct SchedulerConfiguration: Sendable, Equatable {
    /// Sequences decoded at most at once (each beam counts as one).
    public var maxRows: Int
    /// Positions run through the decoder in one step: the decoding rows plus prompt chunks. At least one chunk
    /// runs in a step that decodes nothing.
    public var tokenBudget: Int
    /// Prompt positions per chunk, at most the step budget. Chunk boundaries depend only on the prompt, so a
    /// request's values never depend on what runs beside it; changing this may change the last bits of results in
    /// the fast modes. A step runs as many chunks of a prompt as its budget takes (prefixes paced while every row is
    /// taken, at least one chunk a step).
    public var prefillChunk: Int
    /// Images whose visual tokens are computed at most in one vision pass (and prefixes computed at once).
    public var visionBatch: Int
    /// Positions of key/value memory the scheduler holds.
    public var kvPositions: Int
    /// Positions a sequence holds for its new tokens at admission, and grows by when it needs more.
    public var decodeReserve: Int

    public init(
        maxRows: Int = 8, tokenBudget: Int = 512,
        prefillChunk: Int = SchedulerConfiguration.defaultPrefillChunk(gpu: false),
        visionBatch: Int = 4, kvPositions: Int,
        decodeReserve: Int = 32
    ) {
        self.maxRows = max(1, maxRows)
        self.tokenBudget = max(1, tokenBudget)
        self.prefillChunk = max(1, min(prefillChunk, self.tokenBudget))
        self.visionBatch = max(1, visionBatch)
        self.kvPositions = max(0, kvPositions)
        self.decodeReserve = max(1, decodeReserve)
    }

    /// The prompt chunk for a CPU or a GPU. On a CPU a decoding step has room for a dozen or two prompt positions at
    /// most before its arithmetic outgrows the read of the weights it makes anyway (`Scheduler.pacedPositions`), so
    /// chunks are small there: 16 positions. On a GPU that room is a few hundred positions, and each chunk is an
    /// attention launch of its own: 128.
    public static func defaultPrefillChunk(gpu: Bool) -> Int { gpu ? 128 : 16 }

    /// Bytes of working memory besides the key/value arena: the larger of a vision pass and a decoder step, plus
    /// the visual tokens of the images in hand. An estimate with headroom.
    public func workingBytes(_ model: VisionLanguageModel) -> Int {
        let text = model.configuration.text
        let step = model.decoderWorkingBytes(
            rows: tokenBudget + maxRows, chunk: min(prefillChunk, tokenBudget), keys: text.maxPositionEmbeddings,
            logitRows: maxRows + tokenBudget / prefillChunk + 1)
        let visual = 2 * visionBatch * model.configuration.visualTokenCount * text.hiddenSize * 4
        return max(model.visionWorkingBytes(images: visionBatch), step) + visual
    }

    /// This configuration with the key/value positions that `budget` bytes (beyond the weights) leave after the
    /// working memory. When the working memory would take more than half the budget, the step budget, chunk, rows
    /// and vision batch are halved (to one chunk of 16 positions, one row, one image) until it does not; nil when
    /// even that does not fit.
    public func sized(for model: VisionLanguageModel, budget: Int) -> SchedulerConfiguration? {
        var sized = self
        while 2 * sized.workingBytes(model) > budget {
            guard sized.tokenBudget > 16 || sized.maxRows > 1 || sized.visionBatch > 1 else { break }
            sized.tokenBudget = max(16, sized.tokenBudget / 2)
            sized.prefillChunk = min(sized.prefillChunk, sized.tokenBudget)
            sized.maxRows = max(1, sized.maxRows / 2)
            sized.visionBatch = max(1, sized.visionBatch / 2)
        }
        let left = budget - sized.workingBytes(model)
        guard left > 0 else { return nil }
        sized.kvPositions = left / model.decoder.bytesPerPosition
        return sized
    }
}
