// `model init` then `infer`, through the built binary: one request, a manifest with a bad line, box output.

import Foundation
import TestSupport
import Testing

@Suite struct InferCommandTests {
    static func makeModel(variant: String) throws -> String {
        let directory = ScratchFolders.path("infmllm-tiny")
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(),
            ["model", "init", "--preset", "tiny", "--variant", variant, "--seed", "7", "--out", directory])
        #expect(result.status == 0, "\(result.output)")
        return directory
    }

    static let image = RepositoryFiles.path("Tests/ImagingTests/Fixtures/images/rgb_640x427.jpg")

    /// `model init` into a directory holding a model refuses; with --force it replaces its own three files, and a
    /// link among them (a `model import` directory's tokenizer) is replaced, not written through.
    @Test func initLeavesAnotherModelsFilesAloneUnlessForced() throws {
        let model = try Self.makeModel(variant: "multitask")
        let release = model + "-release-tokenizer.model"
        try Data("the release's tokenizer".utf8).write(to: URL(fileURLWithPath: release))
        defer { try? FileManager.default.removeItem(atPath: release) }
        try FileManager.default.removeItem(atPath: model + "/tokenizer.model")
        try FileManager.default.createSymbolicLink(atPath: model + "/tokenizer.model", withDestinationPath: release)
        let config = try Data(contentsOf: URL(fileURLWithPath: model + "/config.json"))
        let arguments = ["model", "init", "--preset", "tiny", "--variant", "chat", "--seed", "8", "--out", model]
        let refused = try ProcessResult.run(try RepositoryFiles.binary(), arguments)
        #expect(refused.status != 0 && refused.output.contains("not empty"), "\(refused.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: model + "/config.json")) == config)
        let forced = try ProcessResult.run(try RepositoryFiles.binary(), arguments + ["--force"])
        #expect(forced.status == 0, "\(forced.output)")
        #expect(try String(contentsOfFile: release, encoding: .utf8) == "the release's tokenizer")
        let link = try? FileManager.default.destinationOfSymbolicLink(atPath: model + "/tokenizer.model")
        #expect(link == nil, "the link was replaced by a file")
        #expect(try Data(contentsOf: URL(fileURLWithPath: model + "/config.json")) != config)
    }

    @Test(arguments: ["multitask", "chat"])
    func initWritesALoadableModelAndInferAnswers(_ variant: String) throws {
        let model = try Self.makeModel(variant: variant)
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(),
            [
                "infer", "--model", model, "--image", Self.image, "--task", "vqa", "--question", "What is it?",
                "--json",
                "--max-new-tokens", "5", "--beams", "2",
            ])
        #expect(result.status == 0, "\(result.output)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        let tokens = try #require(object?["tokens"] as? [Int])
        #expect(!tokens.isEmpty)
        #expect(object?["text"] is String)
        // The tokens' log-probability, and its geometric mean per token as a confidence.
        let logprob = try #require(object?["logprob"] as? Double)
        #expect(logprob <= 0)
        let confidence = try #require(object?["confidence"] as? Double)
        #expect(abs(confidence - exp(logprob / Double(tokens.count))) < 1e-9)
    }

    /// `--preset evaluation` runs the released evaluation scripts' settings for the task and the model's variant,
    /// the same tokens as those settings given as flags; flags beside the preset override its values.
    @Test func theEvaluationPresetRunsTheScriptsSettings() throws {
        func infer(_ model: String, _ arguments: [String]) throws -> [String: Any] {
            let result = try ProcessResult.run(
                try RepositoryFiles.binary(),
                ["infer", "--model", model, "--image", Self.image, "--question", "What is it?", "--json"] + arguments)
            #expect(result.status == 0, "\(result.output)")
            return try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
        }
        let multitask = try Self.makeModel(variant: "multitask")
        let preset = try infer(multitask, ["--task", "vqa", "--preset", "evaluation"])
        let flags = try infer(
            multitask, ["--task", "vqa", "--beams", "5", "--max-new-tokens", "10", "--length-penalty", "0"])
        #expect(preset["tokens"] as? [Int] == flags["tokens"] as? [Int])
        let decoding = preset["decoding"] as? [String: Any]
        #expect(decoding?["num_beams"] as? Int == 5 && decoding?["max_new_tokens"] as? Int == 10)
        #expect(
            decoding?["length_penalty"] as? Double == 0 && decoding?["beam_rules"] as? String == "transformers-4.31")
        let shorter = try infer(multitask, ["--task", "caption", "--preset", "evaluation", "--max-new-tokens", "3"])
        let overridden = shorter["decoding"] as? [String: Any]
        #expect(overridden?["num_beams"] as? Int == 5 && overridden?["max_new_tokens"] as? Int == 3)
        #expect(overridden?["min_new_tokens"] as? Int == 3, "the preset's 7, held to the new maximum")
        let chat = try infer(try Self.makeModel(variant: "chat"), ["--task", "vqa", "--preset", "evaluation"])
        let greedy = chat["decoding"] as? [String: Any]
        #expect(greedy?["num_beams"] as? Int == 1 && greedy?["max_new_tokens"] as? Int == 128)
    }

    /// Without the model's directory, `enqueue` cannot tell the variant the evaluation settings depend on.
    @Test func enqueueRefusesTheEvaluationPresetForAModelName() throws {
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(),
            ["enqueue", "caption", Self.image, "--model", "InfMLLM-7B", "--preset", "evaluation"])
        #expect(
            result.status != 0 && result.output.contains("give --model as the model's directory"), "\(result.output)")
    }

    @Test func inspectDescribesAModelAsJSON() throws {
        let model = try Self.makeModel(variant: "chat")
        let result = try ProcessResult.run(try RepositoryFiles.binary(), ["model", "inspect", model, "--json"])
        #expect(result.status == 0, "\(result.output)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(object?["layout"] as? String == "chat-1")
        #expect((object?["parameters"] as? Int ?? 0) > 0)
        #expect((object?["files"] as? [[String: Any]])?.first?["format"] as? String == "safetensors")
    }

    @Test func importLinksAReleasedDirectoryBesideAConfigOfOurOwn() throws {
        let binary = try RepositoryFiles.binary()
        let source = RepositoryFiles.path("Tests/GenerationTests/Fixtures/chat-hf")
        let out = ScratchFolders.path("infmllm-import")
        let result = try ProcessResult.run(binary, ["model", "import", source, "--out", out])
        #expect(result.status == 0, "\(result.output)")
        let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        #expect(config.contains("\"text\"") && config.contains("\"chat\""))
        let shard = try FileManager.default.destinationOfSymbolicLink(atPath: out + "/pytorch_model-00001-of-00002.bin")
        #expect(shard.hasSuffix("chat-hf/pytorch_model-00001-of-00002.bin"))
        let answer = try ProcessResult.run(
            binary,
            ["infer", "--model", out, "--image", Self.image, "--task", "ground", "--expression", "the dog", "--json"])
        #expect(answer.status == 0, "\(answer.output)")
        let again = try ProcessResult.run(binary, ["model", "import", source, "--out", out])
        #expect(again.status != 0 && again.output.contains("not empty"))
    }

    /// An import whose weights fit no layout leaves nothing behind, so that the same command runs again once the
    /// source is fixed.
    @Test func aFailedImportLeavesNoHalfWrittenDirectory() throws {
        let binary = try RepositoryFiles.binary()
        let source = try Self.makeModel(variant: "multitask")
        let header = Array(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        let file = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + [0, 0, 0, 0]
        try Data(file).write(to: URL(fileURLWithPath: source + "/model.safetensors"))
        let out = ScratchFolders.path("infmllm-import")
        let failed = try ProcessResult.run(binary, ["model", "import", source, "--out", out])
        #expect(failed.status != 0 && failed.output.contains("no known layout"), "\(failed.output)")
        #expect(!FileManager.default.fileExists(atPath: out), "nothing left behind")
    }

    /// A worker's settings from the environment are checked before the model loads (minutes for a 7B model): a
    /// bad one is reported at once, here before the missing model is even looked for.
    @Test(arguments: [
        ["INFMLLM_DELIVERY_LIMIT": "many"],
        ["INFMLLM_EMBEDDING_CACHE": "/tmp/x", "INFMLLM_EMBEDDING_CACHE_SIZE": "20"],
        ["INFMLLM_ALLOW_PRIVATE_URLS": "perhaps"], ["INFMLLM_MAX_IMAGE_PIXELS": "lots"],
    ])
    func aWorkersBadEnvironmentStopsItBeforeTheModelLoads(_ environment: [String: String]) throws {
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(), ["worker", "--model", "/no/such/model"], environment: environment)
        #expect(result.status != 0, "\(result.output)")
        #expect(!result.output.contains("/no/such/model"), "the setting is named first: \(result.output)")
    }

    @Test func theSameSeedGivesTheSameWeightsAndAnswers() throws {
        let first = try Self.makeModel(variant: "multitask"), second = try Self.makeModel(variant: "multitask")
        let a = try Data(contentsOf: URL(fileURLWithPath: first + "/model.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: second + "/model.safetensors"))
        #expect(a == b)
    }

    @Test func manifestLinesFailAloneAndTheRestAnswer() throws {
        let model = try Self.makeModel(variant: "multitask")
        let manifest = ScratchFolders.path("manifest", suffix: ".jsonl")
        let lines = [
            "{\"image\": \"\(Self.image)\", \"task\": \"caption\", \"max_new_tokens\": 4}",
            "{\"image\": \"/no/such/image.jpg\", \"task\": \"caption\"}",
            "{\"image\": \"\(Self.image)\", \"task\": \"ground\", \"expression\": \"the left dog\", \"max_new_tokens\": 4}",
            "{\"image\": \"\(Self.image)\", \"task\": \"vqa\"}",
        ]
        try lines.joined(separator: "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(),
            ["infer", "--model", model, "--manifest", manifest, "--batch-size", "2", "--json"])
        #expect(result.status == 3, "some lines failed: \(result.output)")
        let objects = result.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(objects.count == 4)
        #expect(objects.filter { $0["error"] != nil }.count == 2)
        #expect(objects.contains { ($0["error"] as? String)?.contains("/no/such/image.jpg") == true })
        #expect(objects.contains { ($0["error"] as? String)?.contains("needs --question") == true })
        #expect(objects.contains { $0["task"] as? String == "ground" && $0["boxes"] is [Any] })
    }

    @Test func manifestPathsAreRelativeToTheManifestAsEnqueueReadsThem() throws {
        let model = try Self.makeModel(variant: "multitask")
        let folder = ScratchFolders.url("infmllm-manifest")
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("images"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(
            atPath: Self.image, toPath: folder.appendingPathComponent("images/dog.jpg").path)
        let manifest = folder.appendingPathComponent("requests.jsonl").path
        try "{\"image\": \"images/dog.jpg\", \"task\": \"caption\", \"max_new_tokens\": 2}\n"
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        // The binary runs in the repository root, which has no images/dog.jpg: only the manifest's folder does.
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(), ["infer", "--model", model, "--manifest", manifest, "--json"])
        #expect(result.status == 0, "\(result.output)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(object?["error"] == nil, "\(result.output)")
        #expect((object?["tokens"] as? [Int])?.count == 2)
    }

    @Test func unknownPresetAndBadDtypeAreUsageErrors() throws {
        let binary = try RepositoryFiles.binary()
        let preset = try ProcessResult.run(binary, ["model", "init", "--preset", "huge", "--out", "/tmp/x"])
        #expect(preset.status != 0 && preset.output.contains("unknown preset"))
        let dtype = try ProcessResult.run(
            binary, ["infer", "--model", "/tmp/x", "--image", Self.image, "--dtype", "f16"])
        #expect(dtype.status != 0 && dtype.output.contains("use auto, f32, bf16 or int8"))
        let kernels = try ProcessResult.run(
            binary, ["infer", "--model", "/tmp/x", "--image", Self.image, "--kernels", "avx3"])
        #expect(kernels.status != 0 && kernels.output.contains("--kernels avx3: use auto, amx, avx512bf16"))
        let memory = try ProcessResult.run(
            binary, ["infer", "--model", "/tmp/x", "--image", Self.image, "--max-memory", "lots"])
        #expect(memory.status != 0 && memory.output.contains("--max-memory lots"))
    }

    @Test(arguments: ["f32", "bf16", "int8"])
    func everyModeAnswersWithTimingsPerPhase(_ mode: String) throws {
        let model = try Self.makeModel(variant: "multitask")
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(),
            [
                "infer", "--model", model, "--image", Self.image, "--json", "--dtype", mode, "--threads", "2",
                "--max-new-tokens", "6", "--min-new-tokens", "6",
            ])
        #expect(result.status == 0, "\(result.output)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        let timings = object?["timings_ms"] as? [String: Double] ?? [:]
        #expect(Set(timings.keys).isSuperset(of: ["vision", "prefill", "decode", "generate"]), "\(timings)")
        #expect((object?["tokens"] as? [Int])?.count == 6)
        #expect(object?["decode_steps"] as? Int == 5 && object?["batch"] as? Int == 1)
    }

    static let hasAVX2 = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" avx2") ?? false

    /// --dtype auto: a checkpoint stored in bf16 runs in bf16 where the kernels are fast and in f32 with only the
    /// portable ones; one stored in f32 runs in f32. --kernels names the set the products use.
    @Test(arguments: ["bf16", "f32"])
    func autoPicksTheModeFromTheCheckpointAndTheKernels(_ stored: String) throws {
        let binary = try RepositoryFiles.binary()
        let directory = ScratchFolders.path("infmllm-tiny")
        let created = try ProcessResult.run(
            binary, ["model", "init", "--preset", "tiny", "--dtype", stored, "--seed", "7", "--out", directory])
        #expect(created.status == 0, "\(created.output)")
        for kernels in ["auto", "avx2", "portable"] {
            let result = try ProcessResult.run(
                binary,
                [
                    "infer", "--model", directory, "--image", Self.image, "--json", "--threads", "2", "--kernels",
                    kernels,
                    "--max-new-tokens", "2",
                ])
            #expect(result.status == 0, "\(result.output)")
            let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
            let compute = object?["compute"] as? String ?? ""
            switch (stored, kernels) {
            case ("f32", _), ("bf16", "portable"): #expect(compute == "cpu f32 openblas sgemm", "\(kernels)")
            case (_, "avx2") where Self.hasAVX2: #expect(compute == "cpu bf16 avx2", "\(kernels)")
            case (_, "avx2"): #expect(compute == "cpu f32 openblas sgemm", "\(kernels) without AVX2")
            default: #expect(compute.hasPrefix("cpu bf16 "), "\(kernels): \(compute)")
            }
        }
    }

    @Test func aRequestThatCannotFitTheMemoryBudgetFailsAloneWithTheReason() throws {
        let model = try Self.makeModel(variant: "multitask")
        let manifest = ScratchFolders.path("manifest", suffix: ".jsonl")
        try [
            "{\"image\": \"\(Self.image)\", \"task\": \"caption\", \"max_new_tokens\": 4}",
            "{\"image\": \"\(Self.image)\", \"task\": \"caption\", \"max_new_tokens\": 400, \"num_beams\": 8}",
        ].joined(separator: "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let binary = try RepositoryFiles.binary()
        // The tiny model's weights take about 1.1 MiB: 1500K leaves room for the first request, not the second.
        let result = try ProcessResult.run(
            binary, ["infer", "--model", model, "--manifest", manifest, "--json", "--max-memory", "1500K"])
        #expect(result.status == 3, "one line failed: \(result.output)")
        let objects = result.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(objects.count == 2)
        #expect(objects.first?["tokens"] is [Int])
        #expect((objects.last?["error"] as? String)?.contains("8 beam(s) and up to 400 new tokens needs about") == true)
        let tooSmall = try ProcessResult.run(
            binary, ["infer", "--model", model, "--image", Self.image, "--max-memory", "1M"])
        #expect(tooSmall.status != 0 && tooSmall.output.contains("the weights take"))
    }
}
