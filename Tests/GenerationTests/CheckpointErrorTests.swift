// Every kind of bad checkpoint is a clear error naming the file and the tensor; LoRA pairs are merged.

import Foundation
import Generation
import Models
import Tensors
import TestSupport
import Testing

@Suite struct CheckpointErrorTests {
    /// A copy of the multitask fixture whose tensors `edit` may change, written as f32 safetensors.
    static func checkpoint(_ edit: (inout [String: (shape: [Int], values: [Float])]) -> Void) throws -> String {
        let source = EngineFixtures.modelDirectory("multitask")
        let directory = ScratchFolders.path("infmllm-checkpoint")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for file in ["config.json", "tokenizer.model"] {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: directory + "/" + file)
        }
        var tensors: [String: (shape: [Int], values: [Float])] = try Safetensors.read(
            path: source + "/model.safetensors"
        ).mapValues { (shape: $0.shape, values: $0.floats()) }
        edit(&tensors)
        let names = tensors.keys.sorted()
        try Safetensors.write(
            names.map { Safetensors.Header(name: $0, shape: tensors[$0]!.shape, dtype: .f32) },
            to: directory + "/model.safetensors"
        ) { tensors[names[$0]]!.values }
        return directory
    }

    static func expectLoadError(_ directory: String, mentioning words: [String]) {
        #expect {
            _ = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        } throws: { error in
            let text = "\(error)"
            return words.allSatisfy { text.contains($0) }
        }
    }

    @Test func missingTensorIsNamed() throws {
        let directory = try Self.checkpoint { $0["lm_model.model.layers.1.mlp.up_proj.weight"] = nil }
        Self.expectLoadError(directory, mentioning: ["missing tensor", "layers.1.mlp.up_proj.weight", "[128, 64]"])
    }

    @Test func extraTensorIsNamed() throws {
        let directory = try Self.checkpoint { $0["visual_encoder.head.weight"] = ([2], [0, 0]) }
        Self.expectLoadError(directory, mentioning: ["unexpected", "visual_encoder.head.weight"])
    }

    @Test func misshapenTensorIsNamed() throws {
        let directory = try Self.checkpoint { $0["ln_vision.weight"] = ([16], [Float](repeating: 1, count: 16)) }
        Self.expectLoadError(directory, mentioning: ["ln_vision.weight", "[16]", "[32]"])
    }

    @Test func unknownLayoutListsExpectedAndFound() throws {
        let directory = try Self.checkpoint { tensors in
            tensors = Dictionary(uniqueKeysWithValues: tensors.map { ("encoder." + $0.key, $0.value) })
        }
        Self.expectLoadError(directory, mentioning: ["no known layout", "visual_encoder.cls_token", "encoder."])
    }

    @Test func truncatedWeightsAreReported() throws {
        let directory = try Self.checkpoint { _ in }
        let path = directory + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        Self.expectLoadError(directory, mentioning: ["model.safetensors", "past the end"])
    }

    @Test(arguments: [[UInt8](), [1, 2, 3], Array("not a safetensors file at all".utf8)])
    func badHeadersAreReported(_ bytes: [UInt8]) throws {
        let directory = try Self.checkpoint { _ in }
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/model.safetensors"))
        Self.expectLoadError(directory, mentioning: ["model.safetensors"])
    }

    @Test func badConfigurationIsReported() throws {
        let directory = try Self.checkpoint { _ in }
        let path = directory + "/config.json"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
            of: "\"pool_out_size\": 2", with: "\"pool_out_size\": 3")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        Self.expectLoadError(directory, mentioning: ["config.json", "pools"])
    }

    @Test func directoryWithoutWeightsIsReported() throws {
        let directory = try Self.checkpoint { _ in }
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        Self.expectLoadError(directory, mentioning: ["no model.safetensors", "config.json"])
    }

    @Test func aPickleNamingAnyOtherGlobalIsRefused() throws {
        // GLOBAL os.system, then the text to run, REDUCE, STOP: must be refused before anything runs.
        let pickle: [UInt8] =
            [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x58, 5, 0, 0, 0] + Array("touch".utf8)
            + [0x85, 0x52, 0x2E]
        let directory = try Self.checkpoint { _ in }
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        try StoredZip.bytes(["archive/data.pkl": pickle]).write(
            to: URL(fileURLWithPath: directory + "/pytorch_model.bin"))
        Self.expectLoadError(directory, mentioning: ["refuses the global os.system"])
    }

    @Test func loraPairsAreMergedIntoTheirBaseWeight() throws {
        let target = "lm_model.model.layers.0.self_attn.q_proj"
        let directory = try Self.checkpoint { tensors in
            // Store W - B·A as the base and the pair beside it: merging must give back W.
            let (shape, weight) = tensors[target + ".weight"]!
            let rank = 2
            var generator = SplitMix64(seed: 3)
            let a = (0..<(rank * shape[1])).map { _ in Float(Int(generator.next() % 200) - 100) / 1000 }
            let b = (0..<(shape[0] * rank)).map { _ in Float(Int(generator.next() % 200) - 100) / 1000 }
            var base = weight
            for row in 0..<shape[0] {
                for column in 0..<shape[1] {
                    var product: Float = 0
                    for k in 0..<rank { product += b[row * rank + k] * a[k * shape[1] + column] }
                    base[row * shape[1] + column] -= product
                }
            }
            tensors[target + ".weight"] = nil
            tensors["lm_model.base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"] = (shape, base)
            tensors[target + ".lora_A.weight"] = ([rank, shape[1]], a)
            tensors[target + ".lora_B.weight"] = ([shape[0], rank], b)
        }
        let merged = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        let original = try VisionLanguageModel(
            directory: EngineFixtures.modelDirectory("multitask"), backend: EngineFixtures.f32)
        let probe = (0..<64).map { Float($0) / 64 }
        let layerInput = merged.decoder.embed([5, 6, 7])
        #expect(!layerInput.isEmpty && probe.count == 64)
        func logits(_ decoder: LlamaDecoder, _ input: [Float]) -> [Float] {
            var arena = decoder.makeArena(positions: 16)
            let region = arena.allocate(positions: 3)!
            return decoder.forward(
                input, segments: [DecoderSegment(region: region, past: 0, count: 3, wantsLogits: true)], arena: &arena)
        }
        let a = logits(merged.decoder, layerInput)
        let b = logits(original.decoder, original.decoder.embed([5, 6, 7]))
        #expect(EngineFixtures.relativeError(a, b) <= 1e-5)
    }
}
