// A released model's directory as Hugging Face holds it (tools/reference/hf_chat_fixture.py: InfMLLMChatConfig
// keys, bf16 weights in two PyTorch shards with an index) loads directly, with the configuration derived from it.

import Foundation
import Generation
import Models
import Tensors
import TestSupport
import Testing

@Suite struct HuggingFaceDirectoryTests {
    @Test func theChatReleaseLayoutLoadsDirectly() throws {
        let directory = EngineFixtures.modelDirectory("chat-hf")
        let derived = try ModelConfiguration.load(directory: directory)
        let ours = try ModelConfiguration.load(directory: EngineFixtures.modelDirectory("chat"))
        #expect(derived.variant == .chat && derived.text == ours.text && derived.vision == ours.vision)
        #expect(derived.imageSize == ours.imageSize && derived.poolOutSize == ours.poolOutSize)

        let inspection = try ModelInspection(directory: directory)
        #expect(inspection.layout == "chat-1" && inspection.configurationProblem == nil)
        #expect(inspection.files.map(\.format) == ["pytorch", "pytorch"])

        // The same weights rounded to bf16, as the release stores them: close to the f32 reference, same first token.
        let model = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        let reference = EngineFixtures.cases.chat
        let logits = try FastModeTests.prefillLogits(model, reference: reference)
        for (row, expected) in reference.prefill_logits.enumerated() {
            let error = EngineFixtures.relativeError(logits[row], expected)
            #expect(error <= 0.05, "row \(row): \(error)")
            let argmax = logits[row].indices.max { logits[row][$0] < logits[row][$1] }
            let wanted = expected.indices.max { expected[$0] < expected[$1] }
            #expect(argmax == wanted, "row \(row)")
        }
    }

    /// InfMLLM-7B as its repository holds it: a config.json with InfMLLM's keys but not LLaMA's, and no tokenizer;
    /// those come from a vicuna directory. Built from the multitask fixture's own files.
    static func multitaskRelease() throws -> (model: String, vicuna: String) {
        let source = EngineFixtures.modelDirectory("multitask")
        let root = ScratchFolders.path("infmllm-release")
        let model = root + "/InfMLLM_7B", vicuna = root + "/vicuna-7b-v1.5"
        for directory in [model, vicuna] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // Safetensors shards with their index, as transformers 4.31 saves a large model.
        let shards = EngineFixtures.modelDirectory("multitask-sharded")
        for file in [
            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
        ] {
            try FileManager.default.createSymbolicLink(
                atPath: model + "/" + file, withDestinationPath: shards + "/" + file)
        }
        let ours =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: source + "/config.json"))) as! [String: Any]
        let release: [String: Any] = [
            "architectures": ["InfMLLM_Inference_LLAMA"], "torch_dtype": "bfloat16",
            "auto_map": ["AutoModel": "modeling_infmllm.InfMLLM_Inference_LLAMA"], "transformers_version": "4.31.0",
            "image_size": ours["image_size"]!, "pool_out_size": ours["pool_out_size"]!,
            "infmllm_vision": ours["vision"]!,
        ]
        var llama = ours["text"] as! [String: Any]
        llama["architectures"] = ["LlamaForCausalLM"]
        llama["model_type"] = "llama"
        try JSONSerialization.data(withJSONObject: release).write(to: URL(fileURLWithPath: model + "/config.json"))
        try JSONSerialization.data(withJSONObject: llama).write(to: URL(fileURLWithPath: vicuna + "/config.json"))
        try FileManager.default.copyItem(atPath: source + "/tokenizer.model", toPath: vicuna + "/tokenizer.model")
        return (model, vicuna)
    }

    @Test func theMultitaskReleaseLoadsWithItsVicunaDirectory() throws {
        let (model, vicuna) = try Self.multitaskRelease()
        #expect {
            _ = try VisionLanguageModel(directory: model, backend: EngineFixtures.f32)
        } throws: { error in
            "\(error)".contains("vicuna-7b-v1.5") && "\(error)".contains("--tokenizer")
        }
        let loaded = try VisionLanguageModel(directory: model, languageDirectory: vicuna, backend: EngineFixtures.f32)
        #expect(loaded.configuration.variant == .multitask && loaded.layout == .multitask)
        // The same weights as the multitask fixture: the same ids as transformers gave for it.
        let reference = EngineFixtures.cases.multitask
        let engine = InferenceEngine(model: loaded)
        for generation in reference.generations.prefix(3) {
            let all = try EngineFixtures.requests(
                reference, model: loaded, parameters: EngineFixtures.parameters(generation.settings))
            let results = try engine.run(generation.rows.map { all[$0] })
            #expect(results.map(\.tokens) == generation.ids, "\(generation.settings)")
        }
        #expect(try ModelInspection(directory: model, languageDirectory: vicuna).layout == "multitask")
    }

    @Test func aCheckpointSavedWithLoRAAdaptersAttachedGivesTheSameIDs() throws {
        // InfMLLM-7B saved with peft still attached: every LLaMA tensor under `lm_model.base_model.model.`, each
        // linear's base as `.base_layer.weight` holding W - B·A, and its pair as `.lora_A.default.weight` and
        // `.lora_B.default.weight`. Merging must give back W, and the ids transformers gave for W.
        let directory = try CheckpointErrorTests.checkpoint { tensors in
            var generator = SplitMix64(seed: 11)
            for name in Array(tensors.keys) where name.hasPrefix("lm_model.") {
                let (shape, weight) = tensors.removeValue(forKey: name)!
                let peft = name.replacingOccurrences(of: "lm_model.", with: "lm_model.base_model.model.")
                guard name.hasSuffix("_proj.weight") else {
                    tensors[peft] = (shape, weight)
                    continue
                }
                let rank = 2
                let a = (0..<(rank * shape[1])).map { _ in Float(Int(generator.next() % 200) - 100) / 1000 }
                let b = (0..<(shape[0] * rank)).map { _ in Float(Int(generator.next() % 200) - 100) / 1000 }
                var base = weight
                for row in 0..<shape[0] {
                    for column in 0..<shape[1] {
                        for k in 0..<rank {
                            base[row * shape[1] + column] -= b[row * rank + k] * a[k * shape[1] + column]
                        }
                    }
                }
                let stem = String(peft.dropLast(".weight".count))
                tensors[stem + ".base_layer.weight"] = (shape, base)
                tensors[stem + ".lora_A.default.weight"] = ([rank, shape[1]], a)
                tensors[stem + ".lora_B.default.weight"] = ([shape[0], rank], b)
            }
        }
        let inspection = try ModelInspection(directory: directory)
        #expect(inspection.families.contains { $0.name == "lm_model.base_model.model.model.layers.*" })
        let model = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        let reference = EngineFixtures.cases.multitask
        let generation = try #require(reference.generations.first { $0.rows.count > 1 })
        let all = try EngineFixtures.requests(
            reference, model: model, parameters: EngineFixtures.parameters(generation.settings))
        let results = try InferenceEngine(model: model).run(generation.rows.map { all[$0] })
        #expect(results.map(\.tokens) == generation.ids, "\(generation.settings)")
    }

    /// A private copy of the Hugging Face chat fixture.
    static func chatCopy() throws -> String {
        let directory = ScratchFolders.path("infmllm-chat-hf")
        try FileManager.default.copyItem(atPath: EngineFixtures.modelDirectory("chat-hf"), toPath: directory)
        return directory
    }

    @Test func theChatReleaseGivesTheSameIDsAsTheSameWeightsInOurLayout() throws {
        // The release's files against the same tensors rewritten as one safetensors file under this project's
        // config.json: the configuration derivation, shard reading and dtypes must change nothing.
        let release = try Self.chatCopy()
        let ours = ScratchFolders.path("infmllm-chat-ours")
        try FileManager.default.createDirectory(atPath: ours, withIntermediateDirectories: true)
        let tensors = try CheckpointFiles.read(directory: release).tensors
        let names = tensors.keys.sorted()
        try Safetensors.write(
            names.map { Safetensors.Header(name: $0, shape: tensors[$0]!.shape, dtype: tensors[$0]!.dtype) },
            to: ours + "/model.safetensors"
        ) { tensors[names[$0]]!.floats() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(try ModelConfiguration.load(directory: release)).write(
            to: URL(fileURLWithPath: ours + "/config.json"))
        try FileManager.default.copyItem(atPath: release + "/tokenizer.model", toPath: ours + "/tokenizer.model")
        let reference = EngineFixtures.cases.chat
        var outputs: [[[Int]]] = []
        for directory in [release, ours] {
            let model = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
            let engine = InferenceEngine(model: model)
            var ids: [[Int]] = []
            for generation in reference.generations.prefix(2) {
                let all = try EngineFixtures.requests(
                    reference, model: model, parameters: EngineFixtures.parameters(generation.settings))
                ids += try engine.run(generation.rows.map { all[$0] }).map(\.tokens)
            }
            outputs.append(ids)
        }
        #expect(!outputs[0].isEmpty && outputs[0] == outputs[1])
    }

    @Test func aMissingShardIsNamed() throws {
        let directory = try Self.chatCopy()
        try FileManager.default.removeItem(atPath: directory + "/pytorch_model-00002-of-00002.bin")
        #expect {
            _ = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        } throws: { error in
            let text = "\(error)"
            return text.contains("pytorch_model.bin.index.json") && text.contains("pytorch_model-00002-of-00002.bin")
                && text.contains("model.mm_projector.mlp.0.bias")
        }
    }

    @Test func anUnsupportedElementTypeNamesTheTensorAndFile() throws {
        let directory = try CheckpointErrorTests.checkpoint { _ in }
        let header = Data(#"{"visual_encoder.cls_token":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#.utf8)
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(header)
        file.append(Data(count: 8))
        try file.write(to: URL(fileURLWithPath: directory + "/model.safetensors"))
        #expect {
            _ = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        } throws: { error in
            let text = "\(error)"
            return text.contains("model.safetensors") && text.contains("visual_encoder.cls_token")
                && text.contains("I64")
        }
    }

    @Test func anIncompleteLoRAPairNamesTheLayer() throws {
        let directory = try CheckpointErrorTests.checkpoint { tensors in
            let (shape, _) = tensors["lm_model.model.layers.0.mlp.up_proj.weight"]!
            tensors["lm_model.model.layers.0.mlp.up_proj.lora_A.default.weight"] = (
                [2, shape[1]], [Float](repeating: 0, count: 2 * shape[1])
            )
        }
        #expect {
            _ = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        } throws: { error in
            let text = "\(error)"
            return text.contains(directory) && text.contains("lm_model.model.layers.0.mlp.up_proj")
                && text.contains("lora_B")
        }
    }
}
