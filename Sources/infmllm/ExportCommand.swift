// `infmllm export JOB --format jsonl|csv|coco|shard-jsonl|sidecars`: a job's results for other tools; the last two
// keep archive shards' results beside their shards, keyed as webdataset keys them.

import ArgumentParser
import Foundation
import ImageSources
import Imaging
import Postgres

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a job's results as JSONL, CSV or COCO (grounding boxes, or captions COCO-style).",
        discussion: """
            For images from tar or zip shards, shard-jsonl writes one JSONL file per shard (<shard>.jsonl, a line \
            per member with its webdataset key in "__key__": the member path without its extensions) and sidecars \
            writes webdataset-style sidecars (<shard>/<key>.json); both need --output DIR. Other images are left \
            out of those two formats, with a count. CSV has a line per task, or per box of a grounding result that \
            holds several (the column box numbers them from 0).
            """)

    @Argument(help: "The job's id or name.") var job: String
    @Option(help: "jsonl, csv, coco, shard-jsonl or sidecars.") var format: String = "jsonl"
    @Option(
        help: ArgumentHelp(
            "Write here instead of standard output (a directory for shard-jsonl and sidecars).", valueName: "path"))
    var output: String?
    @OptionGroup var services: ServiceOptions

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let rows = try resolved.store.exportRows(job: resolved.job.id)
        if format == "shard-jsonl" || format == "sidecars" {
            guard let output else { throw ValidationError("--format \(format) needs --output DIR") }
            try writeShards(rows, to: output, sidecars: format == "sidecars")
            return
        }
        let text: String
        switch format {
        case "jsonl":
            text = try rows.map { try JSONOutput.encode($0) }.joined(separator: "\n") + (rows.isEmpty ? "" : "\n")
        case "csv": text = Self.csv(rows)
        case "coco": text = try coco(rows, kind: resolved.job.taskKind)
        default: throw ValidationError("unknown format \(format): use jsonl, csv, coco, shard-jsonl or sidecars")
        }
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            print(text, terminator: "")
        }
    }

    /// The webdataset key of an archive member: its path without the extensions of its file name.
    static func key(ofMember member: String) -> String {
        let folder = (member as NSString).deletingLastPathComponent
        let name = (member as NSString).lastPathComponent
        let stem =
            name.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? name
        return folder.isEmpty ? stem : folder + "/" + stem
    }

    /// Whether `key` stays inside the folder it is written under: relative, without `..` or empty components. (`.`
    /// components stay: `tar -C images -cf shard.tar .` names every member `./...`.)
    static func isSafe(key: String) -> Bool {
        !key.isEmpty && !key.hasPrefix("/")
            && !key.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == ".." || $0.isEmpty }
            && key.split(separator: "/").contains { $0 != "." }
    }

    /// `name` as one plain file name: characters other than letters, digits, `.`, `-` and `_` become `_`, and a
    /// name that is empty or starts with a dot (`.`, `..`, hidden files) gets a `shard` in front.
    static func safeFileName(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
        let cleaned = String(name.prefix(200).map { allowed.contains($0) ? $0 : "_" })
        return cleaned.isEmpty || cleaned.hasPrefix(".") ? "shard" + cleaned : cleaned
    }

    /// Whether `file` lies inside `root`, once both are standardised (no `.`/`..` left).
    static func isInside(_ file: URL, _ root: URL) -> Bool {
        file.standardizedFileURL.path.hasPrefix(root.standardizedFileURL.path + "/")
    }

    /// The output name of each archive: its file name without the extension, and where two archives in different
    /// folders share one, the later ones also a short hash of their path.
    static func shardNames(_ archives: [String]) -> [String: String] {
        var names: [String: String] = [:], taken: Set<String> = []
        for archive in archives.sorted() {
            var name = safeFileName(((archive as NSString).lastPathComponent as NSString).deletingPathExtension)
            if taken.contains(name) { name += "-" + String(SHA256.hex(of: Array(archive.utf8)).prefix(8)) }
            taken.insert(name)
            names[archive] = name
        }
        return names
    }

    /// Per shard: `<shard>.jsonl`, or `<shard>/<key>.json` sidecars, under `directory`. Every task of a key (several
    /// questions about one image, or `a.jpg` beside `a.png`) goes in its sidecar, as an object for one task and an
    /// array for several; keys that would leave the folder (`..`, absolute) are left out with a count.
    private func writeShards(_ rows: [ExportRow], to directory: String, sidecars: Bool) throws {
        var byArchive: [String: [(key: String, member: String, row: ExportRow)]] = [:]
        var loose = 0, unsafe = 0
        for row in rows {
            switch try? ImageLocation(row.image) {
            case let .tarMember(archive, member), let .zipMember(archive, member):
                let key = Self.key(ofMember: member)
                guard Self.isSafe(key: key) else {
                    unsafe += 1
                    continue
                }
                byArchive[archive, default: []].append((key, member, row))
            default:
                loose += 1
            }
        }
        let root = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let names = Self.shardNames(Array(byArchive.keys))
        for (archive, members) in byArchive {
            let shard = names[archive]!
            var lines: [String] = []
            var byKey: [String: [[String: Any]]] = [:]
            for (key, member, row) in members {
                var object =
                    try JSONSerialization.jsonObject(with: Data(try JSONOutput.encode(row).utf8)) as? [String: Any]
                    ?? [:]
                object["__key__"] = key
                object["member"] = member
                if sidecars {
                    byKey[key, default: []].append(object)
                } else {
                    let data = try JSONSerialization.data(
                        withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                    lines.append(String(decoding: data, as: UTF8.self))
                }
            }
            for (key, objects) in byKey {
                let file = root.appendingPathComponent(shard).appendingPathComponent(key + ".json")
                guard Self.isInside(file, root) else { throw ValidationError("\(file.path) would be outside --output") }
                try FileManager.default.createDirectory(
                    at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                let value: Any = objects.count == 1 ? objects[0] : objects
                try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
                    .write(to: file)
            }
            if !sidecars {
                guard Self.isInside(root.appendingPathComponent(shard + ".jsonl"), root) else {
                    throw ValidationError("\(shard).jsonl would be outside --output")
                }
                try (lines.joined(separator: "\n") + "\n").write(
                    to: root.appendingPathComponent(shard + ".jsonl"), atomically: true, encoding: .utf8)
            }
        }
        var note = loose > 0 ? "; \(loose) images not from an archive left out" : ""
        if unsafe > 0 { note += "; \(unsafe) members whose names would leave the folder (.., absolute) left out" }
        FileHandle.standardError.write(
            Data(
                "wrote \(rows.count - loose - unsafe) results of \(byArchive.count) shard(s) to \(directory)\(note)\n"
                    .utf8))
    }

    static func csv(_ rows: [ExportRow]) -> String {
        func field(_ value: String?) -> String {
            guard let value else { return "" }
            return value.contains(where: { ",\"\n\r".contains($0) })
                ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
        }
        // One line per task, or per box of a result with several (`box` numbers them from 0; empty with none).
        var lines = ["task_id,image,width,height,input,status,error,output,model,box,x1,y1,x2,y2"]
        for row in rows {
            let task = [
                String(row.taskID), field(row.image), row.width.map(String.init) ?? "",
                row.height.map(String.init) ?? "",
                field(row.input), row.status, field(row.error), field(row.output), field(row.model),
            ]
            guard !row.boxes.isEmpty else {
                lines.append((task + ["", "", "", "", ""]).joined(separator: ","))
                continue
            }
            for (ordinal, box) in row.boxes.enumerated() {
                lines.append((task + [String(ordinal)] + box.prefix(4).map { String($0) }).joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// COCO: `images` once per file; for grounding, one annotation per box with bbox [x, y, w, h] in pixels and
    /// the expression; otherwise one caption annotation per result.
    private func coco(_ rows: [ExportRow], kind: String) throws -> String {
        var imageIDs: [String: Int] = [:]
        var images: [[String: Any]] = []
        var annotations: [[String: Any]] = []
        for row in rows where row.status == "done" {
            let imageID: Int
            if let existing = imageIDs[row.image] {
                imageID = existing
            } else {
                imageID = images.count + 1
                imageIDs[row.image] = imageID
                images.append([
                    "id": imageID, "file_name": row.image, "width": row.width ?? 0, "height": row.height ?? 0,
                ])
            }
            if kind == "ground" {
                for box in row.boxes where box.count >= 4 {
                    let width = box[2] - box[0], height = box[3] - box[1]
                    annotations.append([
                        "id": annotations.count + 1, "image_id": imageID, "category_id": 1,
                        "bbox": [box[0], box[1], width, height],
                        "area": width * height, "iscrowd": 0, "expression": row.input, "task_id": row.taskID,
                    ])
                }
            } else {
                annotations.append([
                    "id": annotations.count + 1, "image_id": imageID, "caption": row.output ?? "",
                    "task_id": row.taskID,
                ])
            }
        }
        var document: [String: Any] = ["images": images, "annotations": annotations]
        if kind == "ground" { document["categories"] = [["id": 1, "name": "referred object"]] }
        let data = try JSONSerialization.data(
            withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
