// Finding and reading a model directory's weight files: one safetensors file, safetensors shards with an
// index, or PyTorch .bin files read by the restricted unpickler.

import Foundation
import Imaging
import Tensors

/// The tensors of a checkpoint directory, with the file each came from.
public struct CheckpointFiles {
    public let tensors: [String: WeightTensor]
    public let files: [String: String]

    public static func read(directory: String) throws -> CheckpointFiles {
        let manager = FileManager.default
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        if manager.fileExists(atPath: path("model.safetensors")) {
            return try merge([path("model.safetensors")], reader: Safetensors.read)
        }
        if manager.fileExists(atPath: path("model.safetensors.index.json")) {
            return try merge(
                shards(index: path("model.safetensors.index.json"), directory: directory), reader: Safetensors.read)
        }
        if manager.fileExists(atPath: path("pytorch_model.bin.index.json")) {
            return try merge(
                shards(index: path("pytorch_model.bin.index.json"), directory: directory),
                reader: PickledCheckpoint.read)
        }
        if manager.fileExists(atPath: path("pytorch_model.bin")) {
            return try merge([path("pytorch_model.bin")], reader: PickledCheckpoint.read)
        }
        throw ModelError.noWeights(
            directory: directory, found: (try? manager.contentsOfDirectory(atPath: directory)) ?? [])
    }

    /// The shard files an index's `weight_map` names, each once, in order of first mention.
    static func shards(index: String, directory: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: index),
            let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            let map = root["weight_map"] as? [String: String]
        else { throw TensorError.badHeader(file: index, reason: "no weight_map object") }
        var seen = Set<String>(), files: [String] = []
        for file in map.values.sorted() where seen.insert(file).inserted {
            guard !file.contains("/") && !file.contains("..") else {
                throw TensorError.badHeader(file: index, reason: "shard name \(file) points outside the directory")
            }
            let path = (directory as NSString).appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: path) else {
                let tensors = map.filter { $0.value == file }.keys.sorted()
                throw TensorError.badHeader(
                    file: index,
                    reason: "names the shard \(file), which is not there; it holds \(tensors.count) tensors, "
                        + "among them \(tensors.prefix(3).joined(separator: ", "))")
            }
            files.append(path)
        }
        return files
    }

    private static func merge(_ paths: [String], reader: (String) throws -> [String: WeightTensor]) throws
        -> CheckpointFiles
    {
        var tensors: [String: WeightTensor] = [:], files: [String: String] = [:]
        for path in paths {
            for (name, tensor) in try reader(path) {
                guard tensors[name] == nil else {
                    throw TensorError.badTensor(
                        file: path, tensor: name, reason: "also in \(files[name] ?? "another shard")")
                }
                tensors[name] = tensor
                files[name] = path
            }
        }
        return CheckpointFiles(tensors: tensors, files: files)
    }
}

extension CheckpointFiles {
    /// The SHA-256 of the weight files' bytes, concatenated in file-name order (one file's digest equals
    /// `sha256sum FILE`). Computed once and cached, keyed by each file's name, size and modification time, in
    /// `.infmllm-weights-sha256.json` beside the weights, or under `~/.cache/infmllm` when the directory is read-only.
    public static func weightsSHA256(directory: String) throws -> String {
        let manager = FileManager.default
        let paths = Set(try read(directory: directory).files.values).sorted {
            ($0 as NSString).lastPathComponent < ($1 as NSString).lastPathComponent
        }
        let stamps = try paths.map { path -> WeightsDigestCache.Stamp in
            let attributes = try manager.attributesOfItem(atPath: path)
            return WeightsDigestCache.Stamp(
                name: (path as NSString).lastPathComponent, size: (attributes[.size] as? Int) ?? -1,
                modified: ((attributes[.modificationDate] as? Date) ?? .distantPast).timeIntervalSince1970)
        }
        let cacheFiles = WeightsDigestCache.locations(directory: directory)
        for file in cacheFiles {
            if let data = manager.contents(atPath: file),
                let cached = try? JSONDecoder().decode(WeightsDigestCache.self, from: data), cached.files == stamps
            {
                return cached.sha256
            }
        }
        var hasher = SHA256.Hasher()
        let chunk = 8 << 20
        for path in paths {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw TensorError.badHeader(file: path, reason: "cannot be read to hash it")
            }
            defer { try? handle.close() }
            while let data = try handle.read(upToCount: chunk), !data.isEmpty {
                data.withUnsafeBytes { hasher.update($0) }
            }
        }
        let digest = SHA256.hex(hasher.finish())
        let record = WeightsDigestCache(files: stamps, sha256: digest)
        if let data = try? JSONEncoder().encode(record) {
            for file in cacheFiles {
                try? manager.createDirectory(
                    atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                if (try? data.write(to: URL(fileURLWithPath: file), options: .atomic)) != nil { break }
            }
        }
        return digest
    }

    /// A cheap identity of a checkpoint's weights: SHA-256 over config.json and, for each weight file, its name,
    /// size and first and last MiB. Hashing all 15 GB of a 7B model at every worker start would take minutes;
    /// this changes whenever a file is replaced, rewritten or retrained in place.
    public static func fingerprint(directory: String) throws -> String {
        let manager = FileManager.default
        let names = try manager.contentsOfDirectory(atPath: directory).filter {
            $0 == "config.json" || $0.hasSuffix(".safetensors") || $0.hasSuffix(".bin") || $0.hasSuffix(".index.json")
        }.sorted()
        var material: [UInt8] = []
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let handle = FileHandle(forReadingAtPath: path) else { continue }
            defer { try? handle.close() }
            let size = (try? manager.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            material += Array("\(name)\u{0}\(size)\u{0}".utf8)
            material += [UInt8](try handle.read(upToCount: 1 << 20) ?? Data())
            if size > 2 << 20 {
                try handle.seek(toOffset: UInt64(size - (1 << 20)))
                material += [UInt8](try handle.read(upToCount: 1 << 20) ?? Data())
            }
        }
        return SHA256.hex(of: material)
    }
}

/// A remembered weights digest and the files it was computed from.
struct WeightsDigestCache: Codable, Equatable {
    struct Stamp: Codable, Equatable {
        let name: String
        let size: Int
        let modified: Double
    }

    let files: [Stamp]
    let sha256: String

    /// Beside the weights first, then the user's cache directory (for read-only model directories).
    static func locations(directory: String) -> [String] {
        let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
        let environment = ProcessInfo.processInfo.environment
        let cacheRoot =
            environment["XDG_CACHE_HOME"]
            ?? ((environment["HOME"] ?? NSTemporaryDirectory()) as NSString).appendingPathComponent(".cache")
        return [
            (absolute as NSString).appendingPathComponent(".infmllm-weights-sha256.json"),
            (cacheRoot as NSString).appendingPathComponent(
                "infmllm/weights-" + SHA256.hex(of: Array(absolute.utf8)).prefix(16) + ".json"),
        ]
    }
}
