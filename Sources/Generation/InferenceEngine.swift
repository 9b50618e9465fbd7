// Requests to answers: prompts built and tokenized per chunk, each distinct image encoded once, sequences
// assembled (BOS, text, P² visual rows, text) and left-padded, decoded in batches, boxes parsed.

import Foundation
import Imaging
import Models

/// One image-and-text question for the model.
public struct InferenceRequest: Sendable {
    /// Identifies the image: requests with the same key share one run of the vision encoder.
    public var imageKey: String
    public var image: PreprocessedImage
    public var task: InferenceTask
    /// The question (vqa, chat) or referring expression (ground); ignored for captions.
    public var text: String
    /// A template overriding the task's default; must contain `<ImageHere>` once.
    public var promptTemplate: String?
    public var parameters: GenerationParameters
    /// The request's own random stream when sampling (a task's id, say): the same request samples the same tokens
    /// alone or in any batch. Default: a hash of the image key, task and text.
    public var randomStream: UInt64?

    public init(
        imageKey: String, image: PreprocessedImage, task: InferenceTask, text: String = "",
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
    /// Parsed boxes, for grounding; empty when the output held none.
    public var boxes: [GroundingBox]
    public var prompt: String
    public var promptTokenCount: Int
    /// Milliseconds spent in each phase for the batch this request ran in: `vision`, `prefill`, `decode`, and
    /// `generate` (prefill, decode and token selection).
    public var timings: [String: Double]
    /// The batch this request ran in: its size, its padded prompt length and the decoding steps it took.
    public var batchSize: Int
    public var promptPositions: Int
    public var decodeSteps: Int
}

/// Runs requests through a loaded model. Thread-compatible: the model is shared read-only; use one engine per thread.
public struct InferenceEngine {
    public let model: VisionLanguageModel
    /// Bytes a batch may use beyond the weights (activations, key/value cache, logits); nil for no limit. Groups
    /// of requests are cut into batches that fit, and a request that cannot fit alone fails with the reason.
    public let memoryBudget: Int?

    public init(model: VisionLanguageModel, memoryBudget: Int? = nil) {
        self.model = model
        self.memoryBudget = memoryBudget
    }

    /// The prompt text and its token chunks (text before and after the image) for `request`.
    public func prompt(for request: InferenceRequest) throws -> (text: String, before: [Int], after: [Int]) {
        let variant = model.configuration.variant
        let template =
            request.promptTemplate ?? model.configuration.promptTemplates?[request.task.rawValue]
            ?? TaskPrompt.defaultTemplate(request.task, variant: variant)
        let text = try TaskPrompt.render(template: template, task: request.task, variant: variant, text: request.text)
        // Multitask: chunks without special tokens and one BOS in front (prompt_wrap). Chat: each chunk with BOS,
        // kept on the first only (LLaVA's tokenizer_image_token).
        let chat = variant == .chat
        let segments = model.tokenizer.encodeSegments(text, around: TaskPrompt.imageMarker, addBOS: chat)
        let before = chat ? segments[0] : [model.tokenizer.bosID] + segments[0]
        return (text, before, segments[1])
    }

    /// Runs `requests`, batching those with equal decoding parameters; results come back in request order.
    public func run(_ requests: [InferenceRequest]) throws -> [InferenceResult] {
        var results = [InferenceResult?](repeating: nil, count: requests.count)
        var groups: [GenerationParameters: [Int]] = [:]
        for (index, request) in requests.enumerated() { groups[request.parameters, default: []].append(index) }
        for (parameters, indices) in groups.sorted(by: { $0.value[0] < $1.value[0] }) {
            for part in try fitting(indices, of: requests, parameters: parameters) {
                let batch = try runBatch(part.map { requests[$0] }, parameters: parameters)
                for (position, index) in part.enumerated() { results[index] = batch[position] }
            }
        }
        return results.map { $0! }
    }

    /// Working memory of a batch of `requests` (bytes beyond the weights), as the budget counts it.
    public func workingBytes(_ requests: [InferenceRequest], parameters: GenerationParameters) throws -> Int {
        workingBytes(
            images: Set(requests.map(\.imageKey)).count, rows: requests.count,
            promptLength: try requests.map(promptPositions).max() ?? 0, parameters: parameters)
    }

    /// Positions a request's prompt takes: its text chunks and the visual tokens.
    private func promptPositions(_ request: InferenceRequest) throws -> Int {
        let prompt = try prompt(for: request)
        return prompt.before.count + model.configuration.visualTokenCount + prompt.after.count
    }

    private func workingBytes(images: Int, rows: Int, promptLength: Int, parameters: GenerationParameters) -> Int {
        model.workingBytes(
            images: images, rows: rows * parameters.beamCount, promptLength: promptLength,
            newTokens: parameters.maxNewTokens)
    }

    /// `indices` cut, in order, into runs whose batches fit the memory budget; each prompt is tokenized once.
    private func fitting(_ indices: [Int], of requests: [InferenceRequest], parameters: GenerationParameters) throws
        -> [[Int]]
    {
        guard let memoryBudget else { return [indices] }
        var parts: [[Int]] = [], current: [Int] = []
        var images = Set<String>(), longest = 0
        for index in indices {
            let positions = try promptPositions(requests[index])
            let alone = workingBytes(images: 1, rows: 1, promptLength: positions, parameters: parameters)
            guard alone <= memoryBudget else {
                throw ModelError.exceedsMemory(
                    needed: alone, budget: memoryBudget,
                    what: "\(requests[index].imageKey) with \(parameters.beamCount) beam(s) and up to "
                        + "\(parameters.maxNewTokens) new tokens")
            }
            let grown = workingBytes(
                images: images.union([requests[index].imageKey]).count, rows: current.count + 1,
                promptLength: max(longest, positions), parameters: parameters)
            if !current.isEmpty && grown > memoryBudget {
                parts.append(current)
                current = []
                images = []
                longest = 0
            }
            current.append(index)
            images.insert(requests[index].imageKey)
            longest = max(longest, positions)
        }
        if !current.isEmpty { parts.append(current) }
        return parts
    }

    /// The decoder input for a batch: per row `[pad…] BOS+text, P² visual rows, text`, left-padded to one
    /// length with the pad token's embedding, and the mask that hides the padding.
    /// - Parameters:
    ///   - images: the distinct image keys, in the order of `visualTokens`.
    public func assemble(
        _ prompts: [(text: String, before: [Int], after: [Int])], images: [String], of requests: [InferenceRequest],
        visualTokens: [Float], maxNewTokens: Int
    ) throws -> (embeddings: [Float], length: Int, valid: [Bool]) {
        let hidden = model.configuration.text.hiddenSize, visual = model.configuration.visualTokenCount
        let keys = images
        let lengths = prompts.map { $0.before.count + visual + $0.after.count }
        let length = lengths.max() ?? 0
        let limit = model.configuration.text.maxPositionEmbeddings
        if let longest = lengths.max(), longest + maxNewTokens > limit {
            throw ModelError.promptTooLong(tokens: longest + maxNewTokens, limit: limit)
        }
        // Left padding with the pad token's embedding, hidden by the mask.
        let padRow = model.decoder.embed([model.configuration.text.resolvedPadTokenID])
        var embeddings = [Float](), valid = [Bool]()
        embeddings.reserveCapacity(requests.count * length * hidden)
        for (index, prompt) in prompts.enumerated() {
            let padding = length - lengths[index]
            for _ in 0..<padding { embeddings.append(contentsOf: padRow) }
            valid += [Bool](repeating: false, count: padding) + [Bool](repeating: true, count: lengths[index])
            embeddings.append(contentsOf: model.decoder.embed(prompt.before))
            let image = keys.firstIndex(of: requests[index].imageKey)!
            embeddings.append(contentsOf: visualTokens[(image * visual * hidden)..<((image + 1) * visual * hidden)])
            embeddings.append(contentsOf: model.decoder.embed(prompt.after))
        }
        return (embeddings, length, valid)
    }

    private func runBatch(_ requests: [InferenceRequest], parameters: GenerationParameters) throws -> [InferenceResult]
    {
        let clock = ContinuousClock()
        let prompts = try requests.map(prompt)
        // The vision encoder runs once per distinct image.
        var keys: [String] = [], firstIndex: [String: Int] = [:]
        for (index, request) in requests.enumerated() where firstIndex[request.imageKey] == nil {
            firstIndex[request.imageKey] = index
            keys.append(request.imageKey)
        }
        var visualTokens: [Float] = []
        let visionTime = clock.measure {
            visualTokens = model.visualTokens(keys.map { requests[firstIndex[$0]!].image })
        }
        let (embeddings, length, valid) = try assemble(
            prompts, images: keys, of: requests, visualTokens: visualTokens, maxNewTokens: parameters.maxNewTokens)
        let lengths = (0..<requests.count).map { row in valid[(row * length)..<((row + 1) * length)].filter { $0 }.count
        }
        var session = DecoderSession(decoder: model.decoder, capacity: length + parameters.maxNewTokens)
        var sequences: [GeneratedSequence] = []
        let generateTime = try clock.measure {
            sequences = try Generator().generate(
                &session, embeddings: embeddings, length: length, valid: valid, batch: requests.count,
                parameters: parameters, streams: requests.map(\.resolvedRandomStream))
        }
        let timings = [
            "vision": visionTime.milliseconds, "prefill": session.prefillTime.milliseconds,
            "decode": session.decodeTime.milliseconds, "generate": generateTime.milliseconds,
        ]
        return requests.enumerated().map { index, request in
            let text = model.tokenizer.decode(sequences[index].tokens).trimmingCharacters(in: .whitespacesAndNewlines)
            let boxes =
                request.task == .ground
                ? BoxParser.boxes(in: text, frame: request.image.frame)
                : []
            return InferenceResult(
                text: text, tokens: sequences[index].tokens, boxes: boxes, prompt: prompts[index].text,
                promptTokenCount: lengths[index], timings: timings, batchSize: requests.count, promptPositions: length,
                decodeSteps: session.steps)
        }
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
