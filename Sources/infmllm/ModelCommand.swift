// `infmllm model init`: writes a random-weight checkpoint in the released layout.

import ArgumentParser
import Foundation
import Models
import Tensors

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Make and inspect model directories.",
        subcommands: [ModelInitCommand.self]
    )
}

struct ModelInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a random-weight checkpoint (config.json, model.safetensors, tokenizer.model).",
        discussion: """
            Presets: tiny (tests, the demo), bench (CPU benchmarks), slice (the 7b layer widths with 3 vision blocks and 3 decoder layers), 7b (the real InfMLLM-7B shapes, ~15.5 GB in \
            bf16). The same seed always gives the same weights. The tokenizer is the repository's small \
            SentencePiece model (1,400 pieces, LLaMA's settings).
            """
    )

    @Option(help: "tiny, bench, slice (the 7b widths, 3 + 3 layers) or 7b.")
    var preset: String = "tiny"

    @Option(help: "multitask (InfMLLM-7B names) or chat (InfMLLM-7B-Chat names).")
    var variant: String = "multitask"

    @Option(help: "Seed of the random weights.")
    var seed: UInt64 = 0

    @Option(help: "Stored element type: f32, f16 or bf16.")
    var dtype: String = "f32"

    @Option(help: ArgumentHelp("The directory to write.", valueName: "dir"))
    var out: String

    func run() throws {
        guard let preset = ModelPreset(rawValue: preset) else {
            throw ValidationError("unknown preset \"\(preset)\": use tiny, bench, slice or 7b")
        }
        guard let variant = ModelVariant(rawValue: variant) else {
            throw ValidationError("unknown variant \"\(variant)\": use multitask or chat")
        }
        guard let storage = DType(rawValue: dtype.uppercased()) else {
            throw ValidationError("unknown dtype \"\(dtype)\": use f32, f16 or bf16")
        }
        let configuration = try CheckpointWriter.write(
            preset: preset, variant: variant, seed: seed, dtype: storage, to: out)
        print(
            "wrote \(preset.rawValue) \(variant.rawValue) checkpoint to \(out): image \(configuration.imageSize) px, "
                + "\(configuration.visualTokenCount) visual tokens, \(configuration.text.layerCount) decoder layers")
    }
}
