// Continuous batching over one model: requests join as they come, every step decodes every running sequence and
// runs prompt chunks beside them under a token budget, and a sequence leaves as soon as it ends. Each image's vision
// pass and its prompt prefix (BOS, the text before the image, the visual rows) are computed once and shared by the
// requests on it; each request then computes only its own suffix. Key/value memory is an arena of blocks; when it
// runs short, the newest sequences are preempted and computed again later, with the same results.

import Foundation
import Imaging
import Models

/// Schedules requests onto one model, step by step. Not thread-safe: one thread submits and steps.
///
/// A request's tokens never depend on what else is scheduled: products are row by row, attention is per sequence
/// over its own keys without padding, prompt chunks start at fixed positions, and a shared prefix or cached visual
/// tokens are bit for bit what the request would have computed alone.
public final class Scheduler {
    /// How a request ended.
    public struct Completion: Sendable {
        /// The id it was submitted with.
        public var id: Int
        public var result: Result<InferenceResult, Error>
        /// The logits after the prompt (`[vocabulary]`), when the request asked for them.
        public var promptLogits: [Float]?
    }

    /// Counts since the scheduler was made.
    public struct Statistics: Sendable, Equatable {
        public init() {}

        /// Images run through the vision encoder, and vision passes.
        public var imagesEncoded = 0
        public var visionPasses = 0
        /// Images whose visual tokens came from the embedding cache, and images the cache did not have.
        public var embeddingCacheHits = 0
        public var embeddingCacheMisses = 0
        /// Requests admitted onto a prefix already computed, and prefixes computed.
        public var prefixHits = 0
        public var prefixesComputed = 0
        /// Prompt positions computed (prefixes' and requests' own), and those of them computed in steps that also
        /// decoded: prompts riding in decoding steps, whose weight reads they share.
        public var promptPositions = 0
        public var promptPositionsBesideDecoding = 0
        /// Sequences preempted (to be computed again later), and decoder steps run.
        public var preemptions = 0
        public var steps = 0
    }

    enum Phase: Equatable {
        case waiting
        /// Admitted: the prompt's own positions are being computed.
        case prefilling
        case decoding
    }

    /// A submitted request and everything the scheduler knows of it.
    struct Entry {
        let id: Int
        let request: InferenceRequest
        let plan: PromptPlan
        let recordsPromptLogits: Bool
        var phase = Phase.waiting
        /// One region per row (beams), each holding `past` positions.
        var regions: [KVRegion] = []
        var past = 0
        var decoding: any Decoding
        /// The tokens fed in the next step, one per row.
        var pending: [Int] = []
        var started = false
        /// When it was last admitted: the newest are preempted first.
        var admission = 0
        /// Milliseconds charged to it: its image's vision pass and its prefix (when it was waiting for them), its own
        /// prompt positions and its decoding steps (its share of each step's time, by rows).
        var vision = 0.0, prefill = 0.0, decode = 0.0
        var lastStepRows = 0
        /// The prefix's last visual row, which a prompt ending with the image computes itself.
        var lastVisualRow: [Float] = []

        /// Rows it decodes at once.
        var rows: Int { request.parameters.beamCount }
    }

    /// A prompt prefix shared by the requests with the same image and `before` tokens.
    struct Prefix {
        let key: PrefixKey
        let plan: PromptPlan
        var region: KVRegion
        var computed = 0
        /// The image's visual rows while positions are left to compute; then only the last row (a request whose
        /// prompt ends with the image computes it itself).
        var visual: [Float]?
        var lastVisualRow: [Float] = []
        let order: Int
        var lastUse: Int
        /// Milliseconds of its vision and its chunks, charged to the requests waiting when it is done.
        var vision = 0.0, prefill = 0.0
        /// Requests admitted onto it.
        var users = 0
        /// The content digest its image came with, for the embedding cache.
        let imageSHA256: String?
        let image: PreprocessedImage

        var isReady: Bool { computed == plan.sharedLength }
    }

    public let engine: InferenceEngine
    var model: VisionLanguageModel { engine.model }
    public let configuration: SchedulerConfiguration
    let embeddingCache: (any VisualEmbeddingCache)?
    /// Identifies the vision weights, preprocessing and arithmetic in embedding-cache keys.
    let visionFingerprint: String?
    var arena: KVArena
    public internal(set) var statistics = Statistics()

    var entries: [Int: Entry] = [:]
    /// Entries waiting for admission, in order; running ones in admission order.
    var waiting: [Int] = []
    var running: [Int] = []
    var prefixes: [PrefixKey: Prefix] = [:]
    /// Completions found outside a step (requests refused at submission), handed out by the next step.
    var early: [Completion] = []
    /// Logits after the prompt, kept for requests that asked for them until they complete.
    var promptLogits: [Int: [Float]] = [:]
    var nextSerial = 0
    var clock = 0

    /// - Parameters:
    ///   - embeddingCache: visual tokens across jobs, used for requests that carry `imageSHA256`, with
    ///     `visionFingerprint` naming the model's vision side in the keys.
    public init(
        engine: InferenceEngine, configuration: SchedulerConfiguration,
        embeddingCache: (any VisualEmbeddingCache)? = nil, visionFingerprint: String? = nil
    ) {
        self.engine = engine
        self.configuration = configuration
        self.embeddingCache = visionFingerprint == nil ? nil : embeddingCache
        self.visionFingerprint = visionFingerprint
        arena = engine.model.decoder.makeArena(positions: configuration.kvPositions)
    }

    /// Requests submitted and not yet completed.
    public var count: Int { entries.count + early.count }
    public var isIdle: Bool { count == 0 }
    /// Rows decoding or being prefilled now.
    public var runningRows: Int { running.reduce(0) { $0 + entries[$1]!.rows } }
    /// Key/value positions the arena holds, and free now.
    public var kvPositions: Int { arena.positions }

    /// Adds a request; `id` comes back with its completion. A request that can never run (a bad template, a prompt
    /// longer than the context, more memory than the arena holds) completes at the next step with the reason.
    public func submit(_ request: InferenceRequest, id: Int, recordsPromptLogits: Bool = false) {
        let plan: PromptPlan
        do {
            try request.parameters.validate()
            plan = try engine.plan(request)
            guard !plan.before.isEmpty else {
                throw ModelError.badRequest("the prompt has no tokens before the image: \(plan.text)")
            }
            let limit = model.configuration.text.maxPositionEmbeddings
            if plan.length + request.parameters.maxNewTokens > limit {
                throw ModelError.promptTooLong(tokens: plan.length + request.parameters.maxNewTokens, limit: limit)
            }
            // Alone, with its prefix, it must fit to its last token: then it always finishes (others give way).
            let needed =
                arena.rounded(plan.sharedLength)
                + arena.rounded(plan.length + request.parameters.maxNewTokens) * request.parameters.beamCount
            if needed > arena.positions {
                throw ModelError.exceedsMemory(
                    needed: needed * model.decoder.bytesPerPosition,
                    budget: arena.positions * model.decoder.bytesPerPosition,
                    what: "\(request.imageKey) with \(request.parameters.beamCount) beam(s) and up to "
                        + "\(request.parameters.maxNewTokens) new tokens")
            }
            let beams = request.parameters.beamCount
            guard beams <= configuration.maxRows else {
                throw ModelError.badRequest(
                    "num_beams \(beams) is more than the \(configuration.maxRows) sequences decoded at once "
                        + "(--batch-size, or fewer where --max-memory leaves less)")
            }
        } catch {
            early.append(Completion(id: id, result: .failure(error), promptLogits: nil))
            return
        }
        let decoding = request.parameters.decoding(
            vocabulary: model.configuration.text.vocabularySize, eos: model.configuration.text.eosTokenID,
            stream: request.resolvedRandomStream)
        let serial = nextSerial
        nextSerial += 1
        entries[serial] = Entry(
            id: id, request: request, plan: plan, recordsPromptLogits: recordsPromptLogits, decoding: decoding)
        waiting.append(serial)
    }

    /// Runs one step: admits what fits, computes vision for prefixes starting, then one decoder pass over every
    /// decoding row and the prompt chunks the budget allows. Returns the requests that ended.
    public func step() -> [Completion] {
        var completions = early
        early = []
        clock += 1
        makeRoomForDecoding(&completions)
        admit(&completions)
        encodeImages()
        var batch = StepBatch()
        planDecoding(&batch)
        planPrefill(&batch)
        guard !batch.segments.isEmpty else { return completions }
        statistics.steps += 1
        let promptPositions = batch.segments.reduce(0) { $0 + $1.count } - batch.decodeRows
        statistics.promptPositions += promptPositions
        if batch.decodeRows > 0 { statistics.promptPositionsBesideDecoding += promptPositions }
        let began = ContinuousClock.now
        let logits = model.decoder.forward(batch.inputs, segments: batch.segments, arena: &arena)
        let milliseconds = (ContinuousClock.now - began).milliseconds
        apply(batch, logits: logits, milliseconds: milliseconds, completions: &completions)
        return completions
    }

    /// Steps until every request submitted has completed; returns the completions in the order they came.
    public func drain() -> [Completion] {
        var all: [Completion] = []
        while !isIdle { all += step() }
        return all
    }
}
