// The scheduler: a request's ids are the same alone, beside others, admitted mid-decode, on a shared prefix, from
// cached visual tokens, after preemption and with its chunks run together or apart, in every compute mode; vision and
// prefixes run once per image; prompts arriving during decoding are paced over its steps; short answers leave as
// soon as they end; a request that cannot fit fails alone.

import CPUBackend
import Compute
import Foundation
import Imaging
import Jobs
import Models
import Synchronization
import Testing

@testable import Generation

/// Visual tokens in memory, counting what it was asked.
final class MemoryEmbeddingCache: VisualEmbeddingCache {
    private let entries = Mutex<[String: [Float]]>([:])

    func tokens(for key: String, count: Int) -> [Float]? {
        entries.withLock { $0[key].flatMap { $0.count == count ? $0 : nil } }
    }

    func store(_ tokens: [Float], for key: String) { entries.withLock { $0[key] = tokens } }

    var count: Int { entries.withLock { $0.count } }
}

@Suite struct SchedulerTests {
    static let images = ["rgb_640x427.jpg", "gray_64x48.png", "rgb_100x37.png"]

    /// Several tasks per image (so that prefixes are shared), of different lengths, greedy, sampled and with beams;
    /// one question long enough that its own positions take the packed attention path.
    static func requests(_ model: VisionLanguageModel) throws -> [InferenceRequest] {
        let decoder = ImageDecoder()
        var requests: [InferenceRequest] = []
        for (index, name) in images.enumerated() {
            let image = model.preprocessor(
                try decoder.decode(contentsOf: EngineFixtures.imagesDirectory.appendingPathComponent(name).path))
            func add(_ task: TaskKind, _ text: String, tokens: Int, beams: Int = 1, temperature: Float? = nil) {
                var parameters = GenerationParameters()
                parameters.maxNewTokens = tokens
                parameters.minNewTokens = tokens
                parameters.beamCount = beams
                parameters.temperature = temperature
                parameters.seed = 3
                var request = InferenceRequest(
                    imageKey: name, image: image, task: task, text: text, parameters: parameters)
                request.imageSHA256 = "sha-\(name)"
                requests.append(request)
            }
            add(.caption, "", tokens: 12 - index)
            add(.vqa, "What colour is the bus?", tokens: 2)
            add(.vqa, "How many people stand in the long queue in front of the old red bus by the station?", tokens: 5)
            add(.ground, "the man in red on the left", tokens: 7, beams: index == 1 ? 3 : 1)
            add(.vqa, "Is it raining?", tokens: 6, temperature: 0.9)
        }
        return requests
    }

    static func model(_ precision: ComputePrecision) throws -> VisionLanguageModel {
        try VisionLanguageModel(
            directory: EngineFixtures.modelDirectory("multitask"), backend: CPUBackend(precision: precision, threads: 2)
        )
    }

    /// Chunks of 20 positions in a budget that often cannot take a whole one beside the decoding rows: prompts
    /// take several chunks, and the long question's own positions take the packed attention path (16 queries or
    /// more) while the others take the direct loop.
    static let configuration = SchedulerConfiguration(maxRows: 6, tokenBudget: 26, prefillChunk: 20, kvPositions: 4096)

    /// What a run gave each request: its tokens and the bits of its logits after the prompt.
    struct Outputs: Equatable {
        var tokens: [[Int]]
        var promptLogits: [[UInt32]]

        /// The requests whose tokens (or, with `bits`, whose logits' bits) differ from `other`'s.
        func differences(from other: Outputs, bits: Bool = true) -> [Int] {
            tokens.indices.filter {
                tokens[$0] != other.tokens[$0] || (bits && promptLogits[$0] != other.promptLogits[$0])
            }
        }
    }

    /// Runs `requests`, submitting request `i` before step `arrival(i)`.
    static func run(
        _ requests: [InferenceRequest], engine: InferenceEngine,
        configuration: SchedulerConfiguration = configuration, cache: MemoryEmbeddingCache? = nil,
        arrival: (Int) -> Int = { _ in 0 }
    ) throws -> (outputs: Outputs, scheduler: Scheduler) {
        let scheduler = Scheduler(
            engine: engine, configuration: configuration, embeddingCache: cache, visionFingerprint: "test")
        var outputs = Outputs(
            tokens: Array(repeating: [], count: requests.count),
            promptLogits: Array(repeating: [], count: requests.count))
        var done = 0, step = 0
        while done < requests.count && step < 10_000 {
            for index in requests.indices where arrival(index) == step {
                scheduler.submit(requests[index], id: index, recordsPromptLogits: true)
            }
            for completion in scheduler.step() {
                outputs.tokens[completion.id] = try completion.result.get().tokens
                outputs.promptLogits[completion.id] = completion.promptLogits!.map(\.bitPattern)
                done += 1
            }
            step += 1
        }
        #expect(done == requests.count, "the scheduler stopped making progress")
        return (outputs, scheduler)
    }

    /// Each request run on a scheduler of its own.
    static func alone(_ requests: [InferenceRequest], engine: InferenceEngine) throws -> Outputs {
        let runs = try requests.map { try run([$0], engine: engine).outputs }
        return Outputs(tokens: runs.map { $0.tokens[0] }, promptLogits: runs.map { $0.promptLogits[0] })
    }

    /// bf16 and int8 give the same bits in any company; f32 (OpenBLAS, whose kernels depend on the row count) the
    /// same ids.
    @Test(arguments: [ComputePrecision.bf16, .int8, .f32])
    func aRequestGivesTheSameIDsAloneAndInAnyCompany(_ precision: ComputePrecision) throws {
        let model = try Self.model(precision)
        let engine = InferenceEngine(model: model)
        let requests = try Self.requests(model)
        let bits = precision != .f32
        let alone = try Self.alone(requests, engine: engine)
        #expect(alone.tokens.allSatisfy { !$0.isEmpty })
        let together = try Self.run(requests, engine: engine)
        #expect(together.outputs.differences(from: alone, bits: bits) == [], "all submitted at once")
        #expect(together.scheduler.statistics.preemptions == 0)
        var reversed = try Self.run(Array(requests.reversed()), engine: engine).outputs
        reversed.tokens.reverse()
        reversed.promptLogits.reverse()
        #expect(reversed.differences(from: alone, bits: bits) == [], "submitted in the other order")
        // One request joins every third step: each is admitted while others are decoding.
        let staggered = try Self.run(requests, engine: engine) { 3 * $0 }
        #expect(staggered.outputs.differences(from: alone, bits: bits) == [], "admitted mid-decode")
        #expect(staggered.scheduler.statistics.prefixHits > 0)
    }

    @Test func eachImageIsEncodedAndEachPrefixComputedOnce() throws {
        let model = try Self.model(.bf16)
        let requests = try Self.requests(model)
        let scheduler = try Self.run(requests, engine: InferenceEngine(model: model)).scheduler
        let statistics = scheduler.statistics
        #expect(statistics.imagesEncoded == Self.images.count)
        // Captions, questions and expressions on the multitask model all start `BOS <image>`: one prefix per image.
        #expect(statistics.prefixesComputed == Self.images.count)
        #expect(statistics.prefixHits == requests.count - Self.images.count)
        #expect(scheduler.isIdle && scheduler.runningRows == 0)
    }

    @Test(arguments: [ComputePrecision.bf16, .int8])
    func cachedVisualTokensGiveTheSameIDs(_ precision: ComputePrecision) throws {
        let model = try Self.model(precision)
        let engine = InferenceEngine(model: model)
        let requests = try Self.requests(model)
        let cache = MemoryEmbeddingCache()
        let first = try Self.run(requests, engine: engine, cache: cache)
        #expect(first.scheduler.statistics.embeddingCacheMisses == Self.images.count)
        #expect(cache.count == Self.images.count)
        let second = try Self.run(requests, engine: engine, cache: cache)
        #expect(second.outputs.differences(from: first.outputs) == [])
        #expect(second.scheduler.statistics.embeddingCacheHits == Self.images.count)
        #expect(second.scheduler.statistics.imagesEncoded == 0, "no vision pass")
    }

    @Test(arguments: [ComputePrecision.bf16, .int8])
    func preemptedSequencesAreComputedAgainWithTheSameIDs(_ precision: ComputePrecision) throws {
        let model = try Self.model(precision)
        let engine = InferenceEngine(model: model)
        let requests = try Self.requests(model)
        let alone = try Self.alone(requests, engine: engine)
        // Room for a prefix and about three sequences, each admitted with 2 positions for new tokens: they grow
        // past them and run out.
        var tight = Self.configuration
        tight.kvPositions = 160
        tight.decodeReserve = 2
        let result = try Self.run(requests, engine: engine, configuration: tight)
        #expect(result.scheduler.statistics.preemptions > 0)
        #expect(result.outputs.differences(from: alone) == [])
    }

    /// A step runs as many chunks of a prompt as its budget takes: the same bits as one chunk a step, in fewer steps.
    @Test(arguments: [ComputePrecision.bf16, .int8])
    func aPromptsChunksGiveTheSameBitsTogetherOrApart(_ precision: ComputePrecision) throws {
        let model = try Self.model(precision)
        let engine = InferenceEngine(model: model)
        let requests = try Self.requests(model)
        let together = SchedulerConfiguration(maxRows: 6, tokenBudget: 512, prefillChunk: 4, kvPositions: 4096)
        var apart = together
        apart.tokenBudget = 4
        let many = try Self.run(requests, engine: engine, configuration: together)
        let one = try Self.run(requests, engine: engine, configuration: apart)
        #expect(many.outputs.differences(from: one.outputs) == [])
        #expect(many.scheduler.statistics.promptPositions == one.scheduler.statistics.promptPositions)
        #expect(many.scheduler.statistics.steps < one.scheduler.statistics.steps)
    }

    /// A prefix that arrives while every row decodes rides in the decoding steps, a chunk or so a step, rather than
    /// in steps of its own that the decoding rows wait for; its result is the same as alone.
    @Test func aPrefixArrivingWhileEveryRowDecodesIsPacedOverTheDecodingSteps() throws {
        let model = try Self.model(.bf16)
        let engine = InferenceEngine(model: model)
        let all = try Self.requests(model)
        var caption = all[0]  // the first image
        caption.parameters.maxNewTokens = 40
        caption.parameters.minNewTokens = 40
        let question = all[6]  // the second image
        let configuration = SchedulerConfiguration(maxRows: 1, tokenBudget: 512, prefillChunk: 2, kvPositions: 4096)
        let scheduler = Scheduler(engine: engine, configuration: configuration)
        scheduler.submit(caption, id: 0)
        var tokens: [Int: [Int]] = [:]
        for _ in 0..<10 where scheduler.entries.values.first?.phase != .decoding {
            for completion in scheduler.step() { tokens[completion.id] = try completion.result.get().tokens }
        }
        #expect(scheduler.entries.values.first?.phase == .decoding)
        // Alone, the caption's whole prefix ran in its first step.
        #expect(scheduler.statistics.promptPositionsBesideDecoding == 0)
        let beforeQuestion = scheduler.statistics.promptPositions
        scheduler.submit(question, id: 1)
        var perStep: [Int] = []
        for _ in 0..<100 where !scheduler.isIdle {
            let before = scheduler.statistics.promptPositions
            for completion in scheduler.step() { tokens[completion.id] = try completion.result.get().tokens }
            perStep.append(scheduler.statistics.promptPositions - before)
        }
        #expect(scheduler.isIdle)
        let plan = try engine.plan(question)
        #expect(plan.sharedLength > 2 * configuration.prefillChunk)
        // Its prefix beside the caption's decoding row, one chunk a step (its few positions spread over the
        // caption's 39 steps left come to less than a chunk a step); its own positions once the caption is done.
        #expect(scheduler.statistics.promptPositions - beforeQuestion == plan.length)
        #expect(scheduler.statistics.promptPositionsBesideDecoding == plan.sharedLength)
        #expect(perStep.prefix(3).allSatisfy { $0 == configuration.prefillChunk }, "\(perStep)")
        #expect(tokens[1] == (try Self.run([question], engine: engine).outputs.tokens[0]))
        #expect(tokens[0]?.count == 40)
    }

    /// With few decoding steps before a row frees, the pace rises to several chunks a step, so that the prefix is
    /// ready when the row is; with a row free, a prefix runs at once.
    @Test func thePaceRisesWhenARowFreesSoonAndStopsWhenOneIsFree() throws {
        let model = try Self.model(.bf16)
        let engine = InferenceEngine(model: model)
        let all = try Self.requests(model)
        var caption = all[0]
        caption.parameters.maxNewTokens = 4
        caption.parameters.minNewTokens = 4
        let shared = try engine.plan(all[6]).sharedLength
        #expect(shared >= 4)
        for rows in [1, 2] {
            // Chunks of one position: the fixture's prefixes are a few positions long.
            let configuration = SchedulerConfiguration(
                maxRows: rows, tokenBudget: 512, prefillChunk: 1, kvPositions: 4096)
            let scheduler = Scheduler(engine: engine, configuration: configuration)
            scheduler.submit(caption, id: 0)
            for _ in 0..<10 where scheduler.entries.values.first?.phase != .decoding { _ = scheduler.step() }
            scheduler.submit(all[6], id: 1)
            let before = scheduler.statistics.promptPositionsBesideDecoding
            _ = scheduler.step()
            // Its one row taken, 3 steps before it frees: a third of the question's prefix beside the caption's row.
            // With a second row free, all of it.
            let expected = rows == 1 ? (shared + 2) / 3 : shared
            #expect(scheduler.statistics.promptPositionsBesideDecoding - before == expected, "\(rows) row(s)")
            #expect(scheduler.drain().count == 2)
        }
    }

    /// Paced prefixes are ready when the first row frees, not when the longest sequence ends: a question arriving
    /// while a long caption and a short answer hold every row starts decoding right after the short answer.
    @Test func aPacedPrefixIsReadyWhenTheFirstRowFrees() throws {
        let model = try Self.model(.bf16)
        let engine = InferenceEngine(model: model)
        let all = try Self.requests(model)
        var caption = all[0], short = all[5], question = all[11]  // three images
        caption.parameters.maxNewTokens = 40
        caption.parameters.minNewTokens = 40
        short.parameters.maxNewTokens = 3
        short.parameters.minNewTokens = 3
        question.parameters.maxNewTokens = 2
        question.parameters.minNewTokens = 2
        let configuration = SchedulerConfiguration(maxRows: 2, tokenBudget: 512, prefillChunk: 1, kvPositions: 4096)
        let scheduler = Scheduler(engine: engine, configuration: configuration)
        scheduler.submit(caption, id: 0)
        scheduler.submit(short, id: 1)
        var finished: [Int: Int] = [:]
        var step = 0
        while scheduler.entries.values.contains(where: { $0.phase != .decoding }) && step < 20 {
            for completion in scheduler.step() { finished[completion.id] = step }
            step += 1
        }
        scheduler.submit(question, id: 2)
        while !scheduler.isIdle && step < 200 {
            for completion in scheduler.step() { finished[completion.id] = step }
            step += 1
        }
        // The short answer frees its row; in the next step the question computes its own positions (its first
        // token), in the one after its second token.
        #expect(finished[2]! == finished[1]! + 2, "\(finished)")
        #expect(finished[2]! < finished[0]!, "\(finished)")
    }

    @Test func aShortAnswerLeavesAsSoonAsItEnds() throws {
        let model = try Self.model(.bf16)
        let all = try Self.requests(model)
        let caption = all[0], short = all[1]  // 12 new tokens; 2 new tokens
        let scheduler = Scheduler(engine: InferenceEngine(model: model), configuration: Self.configuration)
        scheduler.submit(caption, id: 0)
        var finished: [Int: Int] = [:]
        var step = 0
        while finished.count < 2 && step < 1000 {
            // The question arrives while the caption is decoding.
            if step == 4 { scheduler.submit(short, id: 1) }
            for completion in scheduler.step() { finished[completion.id] = step }
            step += 1
        }
        #expect(finished[1]! < finished[0]!, "the 2-token answer did not wait for the 12-token caption: \(finished)")
    }

    @Test(arguments: [ComputePrecision.bf16, .int8])
    func aPromptEndingAtTheImageSharesNoPrefixWithPromptsThatGoOn(_ precision: ComputePrecision) throws {
        let model = try Self.model(precision)
        let engine = InferenceEngine(model: model)
        let caption = try Self.requests(model)[0]
        // The same image and text before it, but nothing after it: its prefix stops one row short of the caption's.
        var bare = caption
        bare.promptTemplate = "<image>" + TaskPrompt.imageMarker
        let requests = [bare, caption, bare, caption]
        let together = try Self.run(requests, engine: engine, arrival: { $0 * 3 }).outputs
        #expect(together.differences(from: try Self.alone(requests, engine: engine)).isEmpty)
    }

    @Test func aBeamSearchGrowsPastItsReserveInMemorySizedForIt() throws {
        let model = try Self.model(.bf16)
        var request = try Self.requests(model)[0]
        request.parameters.beamCount = 2
        request.parameters.maxNewTokens = 60
        request.parameters.minNewTokens = 60
        // The engine sizes its memory for exactly this request: the beams' rows, side by side, must move together.
        let result = try InferenceEngine(model: model).results([request])[0].get()
        #expect(result.tokens.count == 60)
    }

    @Test func aRequestWhosePrefixSplitsTheFreeMemoryComputesItAgainRatherThanFail() throws {
        let model = try Self.model(.bf16)
        let engine = InferenceEngine(model: model)
        let all = try Self.requests(model)
        var short = all[0]  // a caption on the first image
        short.parameters.maxNewTokens = 1
        short.parameters.minNewTokens = 1
        var long = all[7]  // the long question on the second image
        long.parameters.maxNewTokens = 32
        long.parameters.minNewTokens = 32
        // Memory for the long question alone, exactly. Its prefix starts beside the caption's, the caption's row
        // after both; when the caption ends, the free memory lies on either side of the question's prefix.
        var configuration = Self.configuration
        configuration.maxRows = 1
        configuration.kvPositions = try engine.scheduler(for: [long]).kvPositions
        let scheduler = Scheduler(engine: engine, configuration: configuration)
        scheduler.submit(short, id: 0)
        scheduler.submit(long, id: 1)
        let completions = scheduler.drain()
        #expect(completions.count == 2)
        let answer = try #require(completions.first { $0.id == 1 }).result.get()
        #expect(answer.tokens == (try Self.run([long], engine: engine).outputs.tokens[0]))
    }

    @Test func moreBeamsThanRowsFailAtOnce() throws {
        let model = try Self.model(.bf16)
        var request = try Self.requests(model)[0]
        request.parameters.beamCount = 3
        var narrow = Self.configuration
        narrow.maxRows = 2
        let scheduler = Scheduler(engine: InferenceEngine(model: model), configuration: narrow)
        scheduler.submit(request, id: 0)
        let completions = scheduler.drain()
        #expect(completions.count == 1)
        #expect(throws: (any Error).self) { try completions[0].result.get() }
        if case let .failure(error) = completions[0].result {
            #expect("\(error)".contains("num_beams 3 is more than the 2 sequences"), "\(error)")
        }
    }

    @Test func aRequestThatCannotFitFailsAloneWithTheReason() throws {
        let model = try Self.model(.bf16)
        var requests = try Self.requests(model)
        requests[3].parameters.beamCount = 40
        var small = Self.configuration
        small.kvPositions = 400
        small.maxRows = 64
        let scheduler = Scheduler(engine: InferenceEngine(model: model), configuration: small)
        for (index, request) in requests.enumerated() { scheduler.submit(request, id: index) }
        let completions = scheduler.drain()
        #expect(completions.count == requests.count)
        for completion in completions {
            switch completion.result {
            case .success: #expect(completion.id != 3)
            case let .failure(error):
                #expect(completion.id == 3)
                #expect("\(error)".contains("40 beam(s)"), "\(error)")
            }
        }
    }
}
