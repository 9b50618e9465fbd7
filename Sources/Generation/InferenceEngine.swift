// Requests to answers: prompts built and tokenized per chunk (BOS, text, P² visual rows, text), run through a
// `Scheduler` (each image encoded and each shared prompt prefix computed once, continuous batches), boxes parsed.

import Foundation
import Imaging
import Jobs
import Models

/// One image-and-text question for the model.
public struct InferenceRequest: Sendable {
    /// Identifies the image's content: requests with the same key share one run of the vision encoder and the keys
    /// and values of their common prompt prefix (the worker passes the content's SHA-256; `infer`, the path).
    public var imageKey: String
    /// The image's content SHA-256, when known: the visual-embedding cache's key.
    public var imageSHA256: String?
    public var image: PreprocessedImage
    public var task: TaskKind
    /// The question (vqa, chat) or referring expression (ground); ignored for captions.
    public var text: String
    /// A template overriding the task's default; must contain `<ImageHere>` once.
    public var promptTemplate: String?
    public var parameters: GenerationParameters
    /// The request's own random stream when sampling (a task's id, say): the same request samples the same tokens
    /// alone or in any batch. Default: a hash of the image key, task and text.
    public var randomStream: UInt64?

    public init(
        imageKey: String, image: PreprocessedImage, task: TaskKind, text: String = "",
        promptTemplate: String? = nil,
        parameters: GenerationParameters = GenerationParameters()
    ) {
        self.imageKey = imageKey
        self.image = image
        self.task = task
        self.text = text
        self.promptTemplate = promptTemplate
        self.parameters = parameters
    }
}

extension InferenceRequest {
    /// `randomStream`, or FNV-1a over the image key, task and text (stable across runs and machines).
    var resolvedRandomStream: UInt64 {
        if let randomStream { return randomStream }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array("\(imageKey)\u{0}\(task.rawValue)\u{0}\(text)".utf8) {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// What the model said, with what it was asked.
public struct InferenceResult: Sendable {
    public var text: String
    public var tokens: [Int]
    /// The sum of the tokens' log-probabilities under the model (`GeneratedSequence.logProbability`); nil when the
    /// model's numbers were not finite, so that every reader has a value it can store.
    public var logProbability: Double?
    /// Parsed boxes, for grounding; empty when the output held none.
    public var boxes: [GroundingBox]
    public var prompt: String
    public var promptTokenCount: Int
    /// Milliseconds of work done for this request: `vision` (its image's encoder pass, shared among the requests
    /// that waited for it; 0 when the image's tokens or prefix were already at hand), `prefill` (its prompt's
    /// positions, a shared prefix's divided likewise), `decode` (its share of each decoding step, by rows), and
    /// `generate` (prefill and decode).
    public var timings: [String: Double]
    /// Sequences in the last decoder pass it took part in, its prompt's positions, and the decoder passes after the
    /// prompt's (its tokens less the first).
    public var batchSize: Int
    public var promptPositions: Int
    public var decodeSteps: Int
}

/// Runs requests through a loaded model. Thread-compatible: the model is shared read-only; use one engine per thread.
public struct InferenceEngine {
    public let model: VisionLanguageModel
    /// Bytes the scheduler may use beyond the weights (activations, key/value memory, logits); nil to size the
    /// key/value memory to the requests in hand.
    public let memoryBudget: Int?
    /// Rows, budget and chunk sizes of the scheduler `run` makes (its key/value memory is sized here).
    public var scheduling: SchedulerConfiguration

    public init(model: VisionLanguageModel, memoryBudget: Int? = nil, scheduling: SchedulerConfiguration? = nil) {
        self.model = model
        self.memoryBudget = memoryBudget
        self.scheduling = scheduling ?? SchedulerConfiguration(maxRows: 64, kvPositions: 0)
    }

    /// The prompt text of `request`: its template (the request's, the model's, or the task's default) filled in.
    public func promptText(for request: InferenceRequest) throws -> String {
        let variant = model.configuration.variant
        let template =
            request.promptTemplate ?? model.configuration.promptTemplates?[request.task.rawValue]
            ?? TaskPrompt.defaultTemplate(request.task, variant: variant)
        return try TaskPrompt.render(template: template, task: request.task, variant: variant, text: request.text)
    }

    /// The prompt text and its token chunks (text before and after the image) for `request`.
    public func prompt(for request: InferenceRequest) throws -> (text: String, before: [Int], after: [Int]) {
        let variant = model.configuration.variant
        let text = try promptText(for: request)
        // Multitask: chunks without special tokens and one BOS in front (prompt_wrap). Chat: each chunk with BOS,
        // kept on the first only (LLaVA's tokenizer_image_token).
        let chat = variant == .chat
        let segments = model.tokenizer.encodeSegments(text, around: TaskPrompt.imageMarker, addBOS: chat)
        let before = chat ? segments[0] : [model.tokenizer.bosID] + segments[0]
        return (text, before, segments[1])
    }

    /// A scheduler for this engine: key/value memory from the budget, or, without one, enough for `requests` all at
    /// once.
    public func scheduler(
        for requests: [InferenceRequest] = [], embeddingCache: (any VisualEmbeddingCache)? = nil,
        visionFingerprint: String? = nil
    ) throws -> Scheduler {
        var configuration = scheduling
        if let memoryBudget {
            guard let sized = configuration.sized(for: model, budget: memoryBudget) else {
                throw ModelError.exceedsMemory(
                    needed: configuration.workingBytes(model), budget: memoryBudget,
                    what: "one step of \(configuration.tokenBudget) positions and \(configuration.visionBatch) image(s)"
                )
            }
            configuration = sized
            // A known set of requests needs no more than all of them at once.
            if !requests.isEmpty { configuration.kvPositions = min(configuration.kvPositions, positionsFor(requests)) }
        } else {
            configuration.kvPositions = positionsFor(requests)
            // Without a budget, rows enough for the widest beam search asked for.
            configuration.maxRows = max(configuration.maxRows, requests.map(\.parameters.beamCount).max() ?? 1)
        }
        return Scheduler(
            engine: self, configuration: configuration, embeddingCache: embeddingCache,
            visionFingerprint: visionFingerprint)
    }

    /// Key/value positions that hold every request's prefix and rows at once (16-position blocks).
    private func positionsFor(_ requests: [InferenceRequest]) -> Int {
        let round = { (positions: Int) in (positions + 15) / 16 * 16 }
        var prefixes: [PrefixKey: Int] = [:]
        var rows = 0
        for request in requests {
            guard let plan = try? plan(request) else { continue }
            prefixes[plan.prefixKey] = round(plan.sharedLength)
            rows += round(plan.length + request.parameters.maxNewTokens) * request.parameters.beamCount
        }
        return max(64, prefixes.values.reduce(0, +) + rows)
    }

    /// Runs `requests`; each comes back in request order with its result or the reason it could not run.
    public func results(_ requests: [InferenceRequest]) throws -> [Result<InferenceResult, Error>] {
        try completions(requests).map(\.result)
    }

    /// Runs `requests`; results come back in request order. Throws the first request's failure, if any.
    public func run(_ requests: [InferenceRequest]) throws -> [InferenceResult] {
        try results(requests).map { try $0.get() }
    }

    /// The logits after each request's prompt (`[vocabulary]` each), computed as the scheduler computes them.
    public func promptLogits(_ requests: [InferenceRequest]) throws -> [[Float]] {
        try completions(requests, recordsPromptLogits: true).map { completion in
            _ = try completion.result.get()
            return completion.promptLogits!
        }
    }

    private func completions(_ requests: [InferenceRequest], recordsPromptLogits: Bool = false) throws
        -> [Scheduler.Completion]
    {
        let scheduler = try scheduler(for: requests)
        for (index, request) in requests.enumerated() {
            scheduler.submit(request, id: index, recordsPromptLogits: recordsPromptLogits)
        }
        return scheduler.drain().sorted { $0.id < $1.id }
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
