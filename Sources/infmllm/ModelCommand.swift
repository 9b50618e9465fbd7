// `infmllm model init`: writes a random-weight checkpoint in the released layout.

import ArgumentParser
import Foundation
import Models
import Tensors

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Make and inspect model directories.",
        subcommands: [ModelInitCommand.self, ModelInspectCommand.self, ModelImportCommand.self]
    )
}

struct ModelInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a random-weight checkpoint (config.json, model.safetensors, tokenizer.model).",
        discussion: """
            Presets: tiny (tests, the demo), bench (CPU benchmarks), slice (the 7b layer widths with 3 vision \
            blocks and 3 decoder layers), 7b (the real InfMLLM-7B shapes, ~15.5 GB in bf16). The same seed always gives the same weights. The tokenizer is the repository's small \
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

    @Option(help: ArgumentHelp("The directory to write (new, or empty).", valueName: "dir"))
    var out: String

    @Flag(
        help:
            "Write into a directory that is not empty, replacing its config.json, tokenizer.model and model.safetensors (a link among them is replaced, not written through)."
    )
    var force = false

    /// The files `model init` writes.
    static let written = ["config.json", "tokenizer.model", "model.safetensors"]

    func run() throws {
        let manager = FileManager.default
        if let contents = try? manager.contentsOfDirectory(atPath: out), !contents.isEmpty {
            guard force else {
                throw ValidationError(
                    "\(out) exists and is not empty (a model's files would be replaced): give --force to replace "
                        + "its config.json, tokenizer.model and model.safetensors")
            }
            // Removed first, so that a link (a `model import` directory's) goes, not the file it points to.
            for name in Self.written where contents.contains(name) {
                try manager.removeItem(atPath: (out as NSString).appendingPathComponent(name))
            }
        }
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

struct ModelInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a model directory from its headers: files, tensor families, types, parameters, layout.",
        discussion: """
            Reads config.json and the weight files' headers only (safetensors, shards with an index, or PyTorch \
            .bin). For each known layout it lists the tensor names that are missing and left over, so a directory \
            that does not load says why. --json gives exact integers.
            """
    )

    @Argument(help: ArgumentHelp("The model directory.", valueName: "dir")) var directory: String
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var language: LanguageOptions

    func run() throws {
        let inspection = try ModelInspection(directory: directory, languageDirectory: language.directory)
        if json {
            print(try JSONOutput.encode(inspection))
            return
        }
        func count(_ value: Int) -> String {
            value >= 1_000_000_000
                ? String(format: "%.3f B", Double(value) / 1e9)
                : value >= 1_000_000 ? String(format: "%.2f M", Double(value) / 1e6) : "\(value)"
        }
        func tensors(_ number: Int) -> String { number == 1 ? "1 tensor" : "\(number) tensors" }
        print(inspection.directory)
        if let keys = inspection.configurationKeys {
            print("config.json keys: \(keys.joined(separator: ", "))")
        }
        if let problem = inspection.configurationProblem { print("configuration: \(problem)") }
        print("files:")
        for file in inspection.files {
            print("  \(file.name)  \(file.format), \(byteCount(file.bytes)), \(tensors(file.tensors))")
        }
        print("tensor families:")
        for family in inspection.families {
            print("  \(family.name)  \(tensors(family.tensors)), \(count(family.parameters)) parameters")
        }
        let types = inspection.parametersByType.sorted { $0.key < $1.key }.map { "\($0.key) \(count($0.value))" }
        print("element types: \(types.joined(separator: ", "))")
        let networks = inspection.parametersByNetwork.sorted { $0.key < $1.key }.map { "\($0.key) \(count($0.value))" }
        print(
            "parameters: \(count(inspection.parameters)) (\(networks.joined(separator: ", "))), \(byteCount(inspection.tensorBytes))"
        )
        if let layout = inspection.layout {
            print("layout: \(layout)")
        } else {
            print("layout: none of the known layouts fits")
            for fit in inspection.layouts {
                print(
                    "  \(fit.layout): \(fit.missing.count) missing (\(fit.missing.prefix(4).joined(separator: ", "))), "
                        + "\(fit.leftOver.count) left over (\(fit.leftOver.prefix(4).joined(separator: ", ")))")
            }
        }
    }
}

struct ModelImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Make a fixed model directory from a released one: this project's config.json beside links.",
        discussion: """
            Derives the configuration from SRC's config.json (with --tokenizer for InfMLLM-7B, whose LLaMA \
            settings live in lmsys/vicuna-7b-v1.5) and writes it to OUT with symbolic links to SRC's weight files, \
            shard index and tokenizer.model: no copy of the weights. Fails, naming what is wrong, unless OUT then \
            matches a known layout.
            """
    )

    @Argument(help: ArgumentHelp("The released model's directory.", valueName: "src")) var source: String
    @Option(help: ArgumentHelp("The directory to write (new, or empty).", valueName: "dir")) var out: String
    @OptionGroup var language: LanguageOptions

    func run() throws {
        let manager = FileManager.default
        let source = URL(fileURLWithPath: self.source).standardizedFileURL.path
        let configuration = try ModelConfiguration.load(directory: source, languageDirectory: language.directory)
        if manager.fileExists(atPath: out), !(try manager.contentsOfDirectory(atPath: out)).isEmpty {
            throw ValidationError("\(out) exists and is not empty")
        }
        let existed = manager.fileExists(atPath: out)
        try manager.createDirectory(atPath: out, withIntermediateDirectories: true)
        // What a failed import wrote goes again, so that running it once more (fixed) finds the directory as it was.
        var finished = false
        defer {
            if !finished {
                for name in (try? manager.contentsOfDirectory(atPath: out)) ?? [] {
                    try? manager.removeItem(atPath: out + "/" + name)
                }
                if !existed { try? manager.removeItem(atPath: out) }
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(configuration).write(to: URL(fileURLWithPath: out + "/config.json"))
        var linked: [String] = []
        for name in try manager.contentsOfDirectory(atPath: source).sorted()
        where name.hasSuffix(".safetensors") || name.hasSuffix(".bin") || name.hasSuffix(".index.json") {
            try manager.createSymbolicLink(atPath: out + "/" + name, withDestinationPath: source + "/" + name)
            linked.append(name)
        }
        let tokenizer = VisionLanguageModel.tokenizerPath(directory: source, languageDirectory: language.directory)
        try manager.createSymbolicLink(
            atPath: out + "/tokenizer.model",
            withDestinationPath: URL(fileURLWithPath: tokenizer).standardizedFileURL.path)
        let inspection = try ModelInspection(directory: out)
        guard let layout = inspection.layout else {
            let fits = inspection.layouts.map {
                "\($0.layout): \($0.missing.count) missing, \($0.leftOver.count) left over"
            }
            throw ValidationError("\(out): the weights match no known layout (\(fits.joined(separator: "; ")))")
        }
        finished = true
        print(
            "wrote \(out): config.json (\(configuration.variant.rawValue), \(layout) layout), links to "
                + "\(linked.joined(separator: ", ")) and tokenizer.model")
    }
}
