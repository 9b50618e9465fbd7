// What a model directory holds, read from headers only: configuration keys, weight files, tensor families, element
// types, parameter counts per network, and how well each known layout fits. `infmllm model inspect`.

import Foundation
import Tensors

/// A model directory described without loading it.
public struct ModelInspection: Encodable, Sendable {
    public struct File: Encodable, Sendable {
        public let name: String
        /// "safetensors" or "pytorch" (a .bin zip with a pickle).
        public let format: String
        public let bytes: Int
        public let tensors: Int
    }

    /// Tensors sharing a name once layer numbers are replaced by `*`, cut after the first number.
    public struct Family: Encodable, Sendable {
        public let name: String
        public let tensors: Int
        public let parameters: Int
    }

    /// How one known layout fits the tensor names (all of its names, when config.json gives the shapes).
    public struct LayoutFit: Encodable, Sendable {
        public let layout: String
        public let matches: Bool
        public let missing: [String]
        public let leftOver: [String]
    }

    public let directory: String
    /// config.json's top-level keys, or nil when there is none.
    public let configurationKeys: [String]?
    /// Why config.json is not a configuration this build reads, when it is not.
    public let configurationProblem: String?
    public let files: [File]
    public let families: [Family]
    /// Parameters per stored element type ("F32", "BF16", "F16").
    public let parametersByType: [String: Int]
    /// Parameters per network ("vision", "adapter", "language", "other"), by the matching layout's prefixes.
    public let parametersByNetwork: [String: Int]
    public let parameters: Int
    public let tensorBytes: Int
    public let layouts: [LayoutFit]
    /// The layout that fits, if one does.
    public let layout: String?

    public init(directory: String, languageDirectory: String? = nil) throws {
        self.directory = directory
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        var configuration: ModelConfiguration?
        if let data = FileManager.default.contents(atPath: configPath) {
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            configurationKeys = object.map { $0.keys.sorted() }
            do {
                configuration = try ModelConfiguration.load(directory: directory, languageDirectory: languageDirectory)
                configurationProblem = nil
            } catch {
                configurationProblem = "\(error)"
            }
        } else {
            configurationKeys = nil
            configurationProblem = "\(configPath): missing"
        }
        let checkpoint = try CheckpointFiles.read(directory: directory)
        let tensors = checkpoint.tensors
        files = Set(checkpoint.files.values).sorted().map { path in
            let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return File(
                name: (path as NSString).lastPathComponent,
                format: path.hasSuffix(".safetensors") ? "safetensors" : "pytorch", bytes: bytes,
                tensors: checkpoint.files.values.filter { $0 == path }.count)
        }
        var families: [String: (tensors: Int, parameters: Int)] = [:]
        var byType: [String: Int] = [:]
        for (name, tensor) in tensors {
            families[Self.family(of: name), default: (0, 0)].tensors += 1
            families[Self.family(of: name), default: (0, 0)].parameters += tensor.count
            byType[tensor.dtype.rawValue, default: 0] += tensor.count
        }
        self.families = families.sorted { $0.key < $1.key }.map {
            Family(name: $0.key, tensors: $0.value.tensors, parameters: $0.value.parameters)
        }
        parametersByType = byType
        parameters = tensors.values.reduce(0) { $0 + $1.count }
        tensorBytes = tensors.values.reduce(0) { $0 + $1.count * $1.dtype.size }

        let present = Set(tensors.keys.filter { !CheckpointLayout.isIgnored($0) })
        var fits: [LayoutFit] = []
        for (name, candidate) in Self.candidates {
            let expected: Set<String>
            if let configuration {
                expected = Set(CheckpointWriter.tensorShapes(configuration, layout: candidate).map(\.0))
            } else {
                expected = [
                    candidate.vision + "cls_token", candidate.lnVision + "weight", candidate.pooler + "0.weight",
                    candidate.lmHead,
                ]
            }
            let missing = expected.subtracting(present).sorted()
            let leftOver = configuration == nil ? [] : present.subtracting(expected).sorted()
            fits.append(
                LayoutFit(
                    layout: name, matches: missing.isEmpty && leftOver.isEmpty, missing: missing, leftOver: leftOver))
        }
        layouts = fits
        let matching = fits.first { $0.matches }?.layout
        layout = matching
        var byNetwork: [String: Int] = [:]
        let fitting = Self.candidates.first { $0.0 == matching }?.1
        for (name, tensor) in tensors {
            byNetwork[fitting.map { Self.network(of: name, in: $0) } ?? "other", default: 0] += tensor.count
        }
        parametersByNetwork = byNetwork
    }

    /// The known layouts, named.
    static let candidates: [(String, CheckpointLayout)] =
        [("multitask", CheckpointLayout.multitask)]
        + CheckpointLayout.chatCandidates.enumerated().map { ("chat-\($0.offset + 1)", $0.element) }

    static func network(of name: String, in layout: CheckpointLayout) -> String {
        if name.hasPrefix(layout.lnVision) || name.hasPrefix(layout.pooler) { return "adapter" }
        if name.hasPrefix(layout.vision) { return "vision" }
        if name == layout.lmHead || name.hasPrefix(layout.language) { return "language" }
        return "other"
    }

    /// `visual_encoder.blocks.3.attn.qkv.weight` → `visual_encoder.blocks.*`; `ln_vision.weight` → `ln_vision`.
    static func family(of name: String) -> String {
        let parts = name.split(separator: ".").map(String.init)
        if let number = parts.firstIndex(where: { Int($0) != nil }) {
            return (parts[..<number] + ["*"]).joined(separator: ".")
        }
        return parts.count > 2 ? parts.dropLast().joined(separator: ".") : parts[0]
    }
}
