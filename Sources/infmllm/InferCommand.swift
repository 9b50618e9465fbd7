// `infmllm infer`: one request, or a JSONL manifest of them in batches, with no queue and no database.

import ArgumentParser
import CUDABackend
import Foundation
import Generation
import ImageSources
import Imaging
import Jobs
import Models

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Run the model on one image (or a JSONL manifest) and print the answer.",
        discussion: """
            Manifest lines are objects with "image", "task" and optionally "question", "expression", "prompt", \
            "max_new_tokens", "min_new_tokens", "num_beams", "length_penalty", "temperature", "top_p", "top_k", \
            "seed", "beam_rules", "preset". A line that fails (unreadable image, bad prompt) prints an error object and the \
            rest go on; the exit status is then 3, as for enqueue's refused lines.
            """
    )

    @Option(help: ArgumentHelp("The model directory.", valueName: "dir")) var model: String
    @Option(help: ArgumentHelp("The image file.", valueName: "path")) var image: String?
    @Option(help: "caption, vqa, ground or chat.") var task: String = "caption"
    @Option(help: "The question, for vqa and chat.") var question: String?
    @Option(help: "The referring expression, for ground.") var expression: String?
    @Option(help: "A prompt template overriding the task's; <ImageHere> marks the image.") var prompt: String?
    @Option(help: "Beams for beam search (1: greedy or sampling).") var beams: Int?
    @Option(help: "New tokens at most.") var maxNewTokens: Int?
    @Option(help: "New tokens before end-of-sequence is allowed.") var minNewTokens: Int?
    @Option(help: "Beam scores divide by length^penalty.") var lengthPenalty: Double?
    @Option(help: BeamRules.help) var beamRules: BeamRules?
    @Option(help: DecodingPreset.help) var preset: DecodingPreset = .greedy
    @Option(help: "Sample with this temperature instead of taking the most likely token.") var temperature: Float?
    @Option(help: "Nucleus sampling mass.") var topP: Float?
    @Option(help: "Keep only the k most likely tokens when sampling.") var topK: Int?
    @Option(help: "Sampling seed.") var seed: UInt64?
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var language: LanguageOptions
    @Option(
        help: ArgumentHelp(
            "A JSONL file of requests, run in batches (relative image paths from the file's folder).",
            valueName: "path"))
    var manifest: String?
    @Option(help: "Requests per batch with --manifest.") var batchSize: Int = 8
    @OptionGroup var images: ImageOptions
    @Flag(help: "Print one JSON object per request.") var json = false

    func validate() throws {
        if let problem = S3Settings(environment: ProcessInfo.processInfo.environment).problem {
            throw ValidationError(problem)
        }
        guard (image == nil) != (manifest == nil) else { throw ValidationError("give either --image or --manifest") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        let backend = try compute.backend(modelDirectory: model)
        let vlm = try VisionLanguageModel(directory: model, languageDirectory: language.directory, backend: backend)
        try compute.checkLoaded(backend)
        let engine = InferenceEngine(
            model: vlm, memoryBudget: try compute.memoryBudget(for: vlm),
            scheduling: SchedulerConfiguration(
                maxRows: 64, prefillChunk: SchedulerConfiguration.defaultPrefillChunk(gpu: backend is CUDABackend),
                kvPositions: 0))
        let decoder = ImageDecoder(maxPixels: try images.resolvedMaxImagePixels(ProcessInfo.processInfo.environment))
        let reader = ImageReader(fetch: FetchSettings(s3: S3Settings(environment: ProcessInfo.processInfo.environment)))
        let lines: [ManifestLine]
        if let manifest {
            lines = try ManifestLine.read(manifest)
        } else {
            lines = [
                ManifestLine(
                    image: image!, task: task, question: question, expression: expression, prompt: prompt,
                    max_new_tokens: maxNewTokens, min_new_tokens: minNewTokens, num_beams: beams,
                    length_penalty: lengthPenalty, temperature: temperature, top_p: topP, top_k: topK, seed: seed,
                    beam_rules: beamRules)
            ]
        }
        // Relative image paths: against the manifest's folder, as `enqueue` reads manifests; against the working
        // directory for --image.
        let base = manifest.map(ImageListing.folder(of:)) ?? FileManager.default.currentDirectoryPath
        var failed = false
        for start in stride(from: 0, to: lines.count, by: batchSize) {
            var requests: [(index: Int, request: InferenceRequest)] = []
            for (offset, line) in lines[start..<min(start + batchSize, lines.count)].enumerated() {
                do {
                    requests.append(
                        (
                            start + offset,
                            try line.request(
                                base: base, preset: preset, variant: vlm.configuration.variant, decoder: decoder,
                                reader: reader, preprocessor: vlm.preprocessor)
                        ))
                } catch {
                    failed = true
                    report(line: line, error: error)
                }
            }
            // Each request ends on its own: one that cannot run (a prompt too long, too little memory) fails alone.
            for (pair, result) in zip(requests, try engine.results(requests.map(\.request))) {
                switch result {
                case let .success(answer):
                    report(
                        line: lines[pair.index], result: answer, decoding: pair.request.parameters,
                        compute: backend.arithmetic)
                case let .failure(error):
                    failed = true
                    report(line: lines[pair.index], error: error)
                }
            }
        }
        if failed { throw manifest == nil ? ExitCode.failure : ExitCode(3) }
    }

    private func report(line: ManifestLine, result: InferenceResult, decoding: GenerationParameters, compute: String) {
        if json {
            let output = InferOutput(line: line, result: result, decoding: decoding, compute: compute)
            print((try? JSONOutput.encode(output)) ?? "{}")
        } else {
            print(result.text)
            for box in result.boxes {
                print(
                    "box: (\(box.x1), \(box.y1), \(box.x2), \(box.y2)) normalized; (\(box.pixelX1), \(box.pixelY1), "
                        + "\(box.pixelX2), \(box.pixelY2)) px")
            }
            if line.task == "ground" && result.boxes.isEmpty { print("no box in the output") }
        }
    }

    private func report(line: ManifestLine, error: Error) {
        if json {
            print((try? JSONOutput.encode(["image": line.image, "error": "\(error)"])) ?? "{}")
        } else {
            FileHandle.standardError.write(Data("\(line.image): \(error)\n".utf8))
        }
    }
}

/// One request as a manifest line (or the flags of a single request).
struct ManifestLine: Codable {
    var image: String
    var task: String
    var question: String?
    var expression: String?
    var prompt: String?
    var max_new_tokens: Int?
    var min_new_tokens: Int?
    var num_beams: Int?
    var length_penalty: Double?
    var temperature: Float?
    var top_p: Float?
    var top_k: Int?
    var seed: UInt64?
    var beam_rules: BeamRules?
    var preset: DecodingPreset?

    static func read(_ path: String) throws -> [ManifestLine] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the manifest \(path)")
        }
        return try ImageListing.lines(String(decoding: data, as: UTF8.self)).enumerated().compactMap {
            number, line in
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            do {
                return try JSONDecoder().decode(ManifestLine.self, from: Data(line.utf8))
            } catch {
                throw ValidationError("\(path):\(number + 1): not a request object: \(error)")
            }
        }
    }

    /// The request of this line; the image is a path (relative ones against the folder `base`) or any URI the
    /// workers read (URL, archive member).
    func request(
        base: String, preset: DecodingPreset, variant: ModelVariant, decoder: ImageDecoder, reader: ImageReader,
        preprocessor: ImagePreprocessor
    ) throws -> InferenceRequest {
        guard let kind = TaskKind(rawValue: task) else {
            throw ModelError.badRequest("unknown task \"\(task)\": use caption, vqa, ground or chat")
        }
        let parameters = try GenerationParameters.overriding(
            (self.preset ?? preset).parameters(kind, variant: variant),
            maxNewTokens: max_new_tokens, minNewTokens: min_new_tokens, beams: num_beams, lengthPenalty: length_penalty,
            temperature: temperature, topP: top_p, topK: top_k, seed: seed, beamRules: beam_rules)
        let text = (kind == .ground ? expression : question) ?? ""
        if kind != .caption && text.isEmpty && prompt == nil {
            throw ModelError.badRequest("task \(task) needs --\(kind == .ground ? "expression" : "question")")
        }
        let uri = ImageListing.resolve(image, against: base)
        let decoded = try decoder.decode(try reader.bytes(of: uri), source: image)
        return InferenceRequest(
            imageKey: image, image: preprocessor(decoded), task: kind, text: text, promptTemplate: prompt,
            parameters: parameters)
    }
}

struct InferOutput: Encodable {
    let image: String
    let task: String
    let text: String
    let tokens: [Int]
    /// The sum of the tokens' log-probabilities, and the geometric mean of their probabilities (nil if not finite).
    let logprob: Double?
    let confidence: Double?
    let boxes: [GroundingBox]?
    let prompt_tokens: Int
    let timings_ms: [String: Double]
    /// The batch the request ran in: size, padded prompt length, decoding steps.
    let batch: Int
    let prompt_positions: Int
    let decode_steps: Int
    /// What computed it: "cpu bf16 avx2", "cpu f32 openblas sgemm", "cuda bf16".
    let compute: String
    /// The decoding settings it ran with (a preset's, with the given values applied).
    let decoding: GenerationParameters

    init(line: ManifestLine, result: InferenceResult, decoding: GenerationParameters, compute: String) {
        self.compute = compute
        self.decoding = decoding
        image = line.image
        task = line.task
        text = result.text
        tokens = result.tokens
        logprob = result.logProbability
        confidence = logprob.flatMap { result.tokens.isEmpty ? nil : exp($0 / Double(result.tokens.count)) }
        boxes = line.task == "ground" ? result.boxes : nil
        prompt_tokens = result.promptTokenCount
        timings_ms = result.timings
        batch = result.batchSize
        prompt_positions = result.promptPositions
        decode_steps = result.decodeSteps
    }
}
