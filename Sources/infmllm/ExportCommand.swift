// `infmllm export JOB --format jsonl|csv|parquet|coco|odvg|label-studio|yolo|imagefolder|shard-jsonl|sidecars|txt`: a job's
// results for other tools; parquet a typed, compressed file for data frames and query engines; imagefolder the
// metadata.jsonl Hugging Face datasets reads beside a folder of images; label-studio makes them pre-annotations to review, yolo label files to train a detector on, shard-jsonl and
// sidecars keep archive shards' results beside their shards, keyed as webdataset keys them, and txt writes a caption
// file per image, as training tools read them.

import ArgumentParser
import Foundation
import ImageSources
import Imaging
import Jobs
import Postgres

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract:
            "Write a job's results as JSONL, CSV, Parquet, COCO, Label Studio tasks, YOLO labels, Hugging Face "
            + "imagefolder metadata, per-shard files or a text file per image.",
        discussion: """
            For images from tar or zip shards, shard-jsonl writes one JSONL file per shard (<shard>.jsonl, a line \
            per member with its webdataset key in "__key__": the member path without its extensions) and sidecars \
            writes webdataset-style sidecars (<shard>/<key>.json); both need --output DIR. Other images are left \
            out of those two formats, with a count. CSV has a line per task, or per box of a grounding result that \
            holds several (the column box numbers them from 0). Parquet has JSONL's fields as typed columns, a row \
            per task, boxes a list of [x1, y1, x2, y2, x1_norm, y1_norm, x2_norm, y2_norm] lists (gzip-compressed \
            pages, row groups of 65,536 tasks or 128 MiB of text), for pandas, Polars, DuckDB, Spark or Hugging Face \
            datasets.

            txt writes one text file per image with its output (the outputs of an image's tasks one per line), for \
            training tools that read a caption beside each image: for an image file, its path under --relative-to \
            with the extension replaced by .txt, under --output (so --output equal to --relative-to writes beside \
            the images: a.jpg, a.txt); for an archive member, <output>/<shard>/<key>.txt. URLs, files outside \
            --relative-to, and files that exist (unless --overwrite) are left out with a count. With --relative-to, \
            COCO's file_name is relative to it for the image files under it.

            label-studio writes Label Studio tasks with the results as predictions to review: a grounding job's \
            boxes as rectangle labels (one task per image, every expression's boxes, labelled "referred object" or, \
            with --categories expression, by expression), in percent of the image as browsers show it (its Exif \
            orientation applied); a caption job's captions as text (one task per image); a VQA or chat job's answers \
            (one task per question, the question in data.question). data.image is the image's URL or path as \
            stored, or with --image-prefix and --relative-to, the prefix and its path under that folder \
            (--image-prefix '/data/local-files/?d=' for Label Studio's local files). --label-config FILE writes the \
            labeling config the tasks fit.

            imagefolder writes the metadata.jsonl that Hugging Face datasets reads beside a folder of images \
            (load_dataset("imagefolder", data_dir=DIR), as diffusers' text-to-image training does): needs \
            --relative-to DIR, a line per image file under it with a done task, file_name its path under DIR and, \
            by the job's kind, text (the caption), questions and answers (lists, in task order), or objects (bbox: \
            COCO's [x, y, width, height] in pixels of the image as datasets loads it, its Exif orientation applied, \
            and each box's expression). Write it to DIR/metadata.jsonl with --output. datasets before 3.4 needs a \
            line for every image in the folder; HEIC images need pillow_heif.register_heif_opener() there.

            yolo writes a grounding job's boxes as YOLO label files (needs --output DIR), one per image with a \
            done task, named as txt names its files (so --relative-to IMAGES --output LABELS mirrors the images' \
            folders), a line per box: the class (0, "referred object", or with --categories expression one per \
            expression) and the box's centre, width and height as fractions of the image as viewers show it (its \
            Exif orientation applied); an image without boxes gets an empty file. classes.txt lists the classes.
            """)

    @Argument(help: "The job's id or name.") var job: String
    @Option(help: "jsonl, csv, parquet, coco, odvg, label-studio, yolo, imagefolder, shard-jsonl, sidecars or txt.")
    var format: String = "jsonl"
    @Option(
        help: ArgumentHelp(
            "Write here instead of standard output (a directory for shard-jsonl, sidecars, txt and yolo).",
            valueName: "path"))
    var output: String?
    @Option(
        help: ArgumentHelp(
            "The folder image files are named relative to (txt and yolo files, COCO file_name, Label Studio with "
                + "--image-prefix).", valueName: "dir"))
    var relativeTo: String?
    @Option(
        help: ArgumentHelp(
            "label-studio: what comes before an image file's path under --relative-to in data.image.",
            valueName: "prefix"))
    var imagePrefix: String?
    @Option(
        help: ArgumentHelp("label-studio: write the labeling config the tasks fit to this file.", valueName: "path"))
    var labelConfig: String?
    @Option(
        help: ArgumentHelp(
            "COCO categories (Label Studio labels) of a grounding job: single (one, \"referred object\") or "
                + "expression (one per distinct expression, for jobs whose expressions are class names).",
            valueName: "kind"))
    var categories: String = "single"
    @Flag(help: "txt, yolo: replace files that exist (by default they are left as they are, with a count).")
    var overwrite = false
    @Flag(
        help: ArgumentHelp(
            "txt: add the outputs after the text of files that exist (tags written earlier).",
            discussion: "A file that ends with them already (an earlier run) is left as it is."))
    var append = false
    @Option(
        help: ArgumentHelp(
            "txt: text put before each output, such as a training trigger word (\"photo of sks, \").", valueName: "text"
        ))
    var prefix: String = ""
    @Option(help: ArgumentHelp("txt: text put after each output.", valueName: "text")) var suffix: String = ""
    @Option(
        help: ArgumentHelp(
            "jsonl, csv, parquet, shard-jsonl, sidecars: only the tasks in this state (repeatable: done, failed, queued, "
                + "running, cancelled), such as the failures with their reasons.", valueName: "state"))
    var status: [TaskStatus] = []
    @Flag(
        help: ArgumentHelp(
            "Boxes, width and height as viewers show each image, its Exif orientation applied (by default as stored: "
                + "the pixels the model saw)."))
    var exifOrientation = false
    @Option(
        help: ArgumentHelp(
            "Leave out done tasks whose confidence is below this (0 to 1), as if not done; with a count on stderr.",
            discussion:
                "Confidence: the geometric mean of the output tokens' probabilities (the views' confidence). Done tasks without one (written before it was recorded) are left out too. Formats written by image keep an image's other tasks.",
            valueName: "p"))
    var minConfidence: Double?
    @OptionGroup var services: ServiceOptions

    func validate() throws {
        guard ["single", "expression"].contains(categories) else {
            throw ValidationError("--categories is single or expression")
        }
        if categories != "single" && !["coco", "label-studio", "yolo"].contains(format) {
            throw ValidationError("--categories is for --format coco, label-studio and yolo")
        }
        if relativeTo != nil && !["txt", "coco", "odvg", "label-studio", "yolo", "imagefolder"].contains(format) {
            throw ValidationError("--relative-to is for --format txt, yolo, imagefolder, coco, odvg and label-studio")
        }
        if format == "imagefolder" && relativeTo == nil {
            throw ValidationError("--format imagefolder needs --relative-to DIR (the folder whose images it describes)")
        }
        if (imagePrefix != nil || labelConfig != nil) && format != "label-studio" {
            throw ValidationError("--image-prefix and --label-config are for --format label-studio")
        }
        if imagePrefix != nil && relativeTo == nil {
            throw ValidationError("--image-prefix needs --relative-to (the folder image paths are named under)")
        }
        if format == "label-studio" && relativeTo != nil && imagePrefix == nil {
            throw ValidationError("--relative-to with --format label-studio names images under --image-prefix")
        }
        if overwrite && !["txt", "yolo"].contains(format) {
            throw ValidationError("--overwrite is for --format txt and yolo")
        }
        if (append || !prefix.isEmpty || !suffix.isEmpty) && format != "txt" {
            throw ValidationError("--append, --prefix and --suffix are for --format txt")
        }
        if append && overwrite { throw ValidationError("--append and --overwrite exclude each other") }
        if (prefix + suffix).contains(where: \.isNewline) {
            throw ValidationError("--prefix and --suffix are put on each output's line: no line breaks")
        }
        if !status.isEmpty && !["jsonl", "csv", "parquet", "shard-jsonl", "sidecars"].contains(format) {
            throw ValidationError("--status is for --format jsonl, csv, parquet, shard-jsonl and sidecars")
        }
        if exifOrientation && format == "txt" { throw ValidationError("--exif-orientation is for formats with boxes") }
        if let minConfidence, !(minConfidence >= 0 && minConfidence <= 1) {
            throw ValidationError("--min-confidence must be between 0 and 1")
        }
    }

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let (store, id) = (resolved.store, resolved.job.id)
        switch format {
        case "shard-jsonl", "sidecars", "txt", "yolo":
            guard let output else { throw ValidationError("--format \(format) needs --output DIR") }
            if format == "txt" {
                // One line per output: its own line breaks become spaces.
                try writeTextFiles(store: store, job: id, to: output) { row in
                    [prefix + (row.output ?? "").split(whereSeparator: \.isNewline).joined(separator: " ") + suffix]
                }
            } else if format == "yolo" {
                try writeYOLO(store: store, job: id, kind: resolved.job.taskKind, to: output)
            } else {
                try writeShards(store: store, job: id, to: output, sidecars: format == "sidecars")
            }
        case "jsonl", "csv", "parquet", "coco", "odvg", "label-studio", "imagefolder":
            let sink = try ExportSink(path: output)
            switch format {
            case "odvg":
                try writeODVG(store: store, job: id, kind: resolved.job.taskKind, to: sink)
            case "label-studio":
                try writeLabelStudio(store: store, job: id, kind: resolved.job.taskKind, to: sink)
            case "jsonl":
                try rows(store, job: id) { rows in
                    for row in rows { try sink.write(try Self.jsonLine(row) + "\n") }
                }
            case "csv":
                try sink.write(Self.csvHeader + "\n")
                try rows(store, job: id) { rows in try sink.write(Self.csvLines(rows)) }
            case "parquet":
                try writeParquet(store: store, job: id, to: sink)
            case "imagefolder":
                try writeImageFolder(store: store, job: id, kind: resolved.job.taskKind, to: sink)
            default:
                try writeCOCO(store: store, job: id, kind: resolved.job.taskKind, to: sink)
            }
            try sink.finish()
        default:
            throw ValidationError(
                "unknown format \(format): use jsonl, csv, parquet, coco, odvg, label-studio, yolo, imagefolder, "
                    + "shard-jsonl, "
                    + "sidecars or txt")
        }
    }

    /// The job's rows as this export writes them: the tasks in the states asked for (all by default), their boxes,
    /// width and height turned to the shown image when asked (always for Label Studio and YOLO, whose tools show
    /// and load images as browsers and viewers do).
    func rows(
        _ store: PostgresJobStore, job: Int64, order: ExportOrder = .task, _ body: ([ExportRow]) throws -> Void
    ) throws {
        var unknown = 0, below = 0, unscored = 0
        let orient = exifOrientation || ["label-studio", "yolo", "imagefolder"].contains(format)
        try store.exportRows(job: job, order: order, statuses: status) { rows in
            var rows = rows
            if let minConfidence {
                rows.removeAll { row in
                    guard row.status == TaskStatus.done.rawValue else { return false }
                    guard let confidence = row.confidence else {
                        unscored += 1
                        return true
                    }
                    guard confidence < minConfidence else { return false }
                    below += 1
                    return true
                }
            }
            if orient { unknown += rows.filter { $0.width != nil && $0.orientation == nil }.count }
            try body(orient ? rows.map(Self.shown) : rows)
        }
        if unknown > 0 {
            FileHandle.standardError.write(
                Data(
                    ("\(unknown) task(s) were read before orientations were recorded: their boxes, width and height "
                        + "stay as stored\n").utf8))
        }
        if let minConfidence, below + unscored > 0 {
            FileHandle.standardError.write(
                Data(
                    ("\(below) done task(s) below --min-confidence \(minConfidence) left out"
                        + (unscored > 0
                            ? ", and \(unscored) without a confidence (written before it was recorded)" : "")
                        + "\n").utf8))
        }
    }

    /// The job's done tasks an image at a time, for the formats written per image: rows come by image URI (its
    /// bytes), so an image's tasks arrive together and one image is held at a time.
    func doneImages(_ store: PostgresJobStore, job: Int64, _ body: ([ExportRow]) throws -> Void) throws {
        var current: [ExportRow] = []
        try rows(store, job: job, order: .image) { rows in
            for row in rows where row.status == "done" {
                if let first = current.first, !first.image.utf8.elementsEqual(row.image.utf8) {
                    try body(current)
                    current = []
                }
                current.append(row)
            }
        }
        if !current.isEmpty { try body(current) }
    }

    /// `row` as viewers show its image: width and height swapped for a quarter turn, and each box (in pixels, and
    /// normalised) mapped by the image's Exif orientation. A row without a tag, or a size, is as stored.
    static func shown(_ row: ExportRow) -> ExportRow {
        guard let value = row.orientation, let orientation = ExifOrientation(value), let width = row.width,
            let height = row.height
        else { return row }
        var shown = row
        shown.orientation = 1  // the shown image is upright: a reader that applies the tag must not turn it again
        (shown.width, shown.height) = orientation.displayedSize(width: width, height: height)
        shown.boxes = row.boxes.map { box in
            guard box.count == 8 else { return box }
            return orientation.displayed(box: Array(box[0..<4]), width: Double(width), height: Double(height))
                + orientation.displayed(box: Array(box[4..<8]), width: 1, height: 1)
        }
        return shown
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
        let base = root.standardizedFileURL.path
        return file.standardizedFileURL.path.hasPrefix(base == "/" ? "/" : base + "/")
    }

    /// The archive part of an archive member's URI as stored (`tar:/d/a.tar!/`; for a remote archive, without where
    /// the member lies), as bytes: what tells shards apart.
    static func shardURI(_ uri: String) -> [UInt8] {
        Array((ImageLocation.archivePart(of: uri) ?? uri).utf8)
    }

    /// The `--output` folder of the formats that write several files, made if missing; an error naming it when it is
    /// a file or cannot be made.
    static func outputDirectory(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--output \(path) is a file: this format writes a folder of files")
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("--output \(path): cannot make the folder (\(error.localizedDescription))")
        }
        return url
    }

    /// Per shard: `<shard>.jsonl`, or `<shard>/<key>.json` sidecars, under `directory`. Every task of a key (several
    /// questions about one image, or `a.jpg` beside `a.png`) goes in its sidecar, as an object for one task and an
    /// array for several; keys that would leave the folder (`..`, absolute) are left out with a count. Rows come by
    /// image URI, so each archive's members arrive together and one shard at a time is held in memory.
    private func writeShards(store: PostgresJobStore, job: Int64, to directory: String, sidecars: Bool) throws {
        let root = try Self.outputDirectory(directory)
        var namer = ShardNamer()
        // A shard is the archive part of its members' URIs as stored (`tar:/d/a.tar!/`), compared as bytes, the
        // order the rows come in: `TAR:` beside `tar:`, or the same path in another Unicode form, is another shard.
        var current: (uri: [UInt8], archive: String, members: [(key: String, member: String, row: ExportRow)])?
        var shards = 0, loose = 0, unsafe = 0, results = 0
        func flush() throws {
            guard let shard = current else { return }
            current = nil
            let name = namer.name(for: shard.uri, archive: shard.archive)
            try Self.writeShard(shard.members, name: name, under: root, sidecars: sidecars)
            shards += 1
            results += shard.members.count
        }
        try rows(store, job: job, order: .image) { rows in
            for row in rows {
                switch (try? ImageLocation(row.image))?.archiveMember {
                case let (archive, member)?:
                    let key = Self.key(ofMember: member)
                    guard Self.isSafe(key: key) else {
                        unsafe += 1
                        continue
                    }
                    let uri = Self.shardURI(row.image)
                    if current?.uri != uri {
                        try flush()
                        current = (uri, archive, [])
                    }
                    current?.members.append((key, member, row))
                case nil:
                    loose += 1
                }
            }
        }
        try flush()
        var note = loose > 0 ? "; \(loose) images not from an archive left out" : ""
        if unsafe > 0 { note += "; \(unsafe) members whose names would leave the folder (.., absolute) left out" }
        FileHandle.standardError.write(
            Data("wrote \(results) results of \(shards) shard(s) to \(directory)\(note)\n".utf8))
    }

    private static func writeShard(
        _ members: [(key: String, member: String, row: ExportRow)], name shard: String, under root: URL,
        sidecars: Bool
    ) throws {
        var lines: [String] = []
        var byKey: [String: [[String: Any]]] = [:]
        for (key, member, row) in members {
            var object = try Self.object(row)
            object["__key__"] = key
            object["member"] = member
            if sidecars {
                byKey[key, default: []].append(object)
            } else {
                lines.append(try JSONOutput.string(object))
            }
        }
        for (key, objects) in byKey {
            let file = root.appendingPathComponent(shard).appendingPathComponent(key + ".json")
            guard isInside(file, root) else { throw ValidationError("\(file.path) would be outside --output") }
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            let value: Any = objects.count == 1 ? objects[0] : objects
            try JSONOutput.data(value).write(to: file)
        }
        if !sidecars {
            guard isInside(root.appendingPathComponent(shard + ".jsonl"), root) else {
                throw ValidationError("\(shard).jsonl would be outside --output")
            }
            try (lines.joined(separator: "\n") + "\n").write(
                to: root.appendingPathComponent(shard + ".jsonl"), atomically: true, encoding: .utf8)
        }
    }

    /// A row as a JSON object, with its manifest fields under `metadata` when it has some.
    static func object(_ row: ExportRow) throws -> [String: Any] {
        var object =
            try JSONSerialization.jsonObject(with: Data(try JSONOutput.encode(row).utf8)) as? [String: Any] ?? [:]
        if let metadata = row.metadata {
            object["metadata"] = try JSONSerialization.jsonObject(with: Data(metadata.utf8))
        }
        return object
    }

    /// A row as one JSON line, keys sorted.
    static func jsonLine(_ row: ExportRow) throws -> String {
        row.metadata == nil ? try JSONOutput.encode(row) : try JSONOutput.string(try object(row))
    }

    static let csvHeader =
        "task_id,image,width,height,input,status,error,output,model,box,x1,y1,x2,y2,metadata,confidence"

    /// The CSV lines of `rows`: one per task, or per box of a result with several (`box` numbers them from 0;
    /// empty with none), each ending with a newline.
    static func csvLines(_ rows: [ExportRow]) -> String {
        func field(_ value: String?) -> String {
            guard let value else { return "" }
            // By scalar: "\r\n" is one Character, equal to neither "\r" nor "\n".
            return value.unicodeScalars.contains(where: { ",\"\n\r".unicodeScalars.contains($0) })
                ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
        }
        var lines = ""
        for row in rows {
            let task = [
                String(row.taskID), field(row.image), row.width.map(String.init) ?? "",
                row.height.map(String.init) ?? "",
                field(row.input), row.status, field(row.error), field(row.output), field(row.model),
            ]
            let end = [field(row.metadata), row.confidence.map { String($0) } ?? ""]
            guard !row.boxes.isEmpty else {
                lines += (task + ["", "", "", "", ""] + end).joined(separator: ",") + "\n"
                continue
            }
            for (ordinal, box) in row.boxes.enumerated() {
                lines +=
                    (task + [String(ordinal)] + box.prefix(4).map { String($0) } + end).joined(separator: ",") + "\n"
            }
        }
        return lines
    }

    /// A whole CSV document of `rows`.
    static func csv(_ rows: [ExportRow]) -> String {
        csvHeader + "\n" + csvLines(rows)
    }

    /// COCO: `images` once per file; for grounding, one annotation per box with bbox [x, y, w, h] in pixels and
    /// the expression; otherwise one caption annotation per result. One pass over the rows by image: images go to
    /// the sink as they come, annotations to a temporary file appended after them.
    private func writeCOCO(store: PostgresJobStore, job: Int64, kind: String, to sink: ExportSink) throws {
        let spool = FileManager.default.temporaryDirectory
            .appendingPathComponent("infmllm-coco-\(UInt64.random(in: 0...UInt64.max)).json").path
        let annotations = try ExportSink(path: spool)
        defer { try? FileManager.default.removeItem(atPath: spool) }
        var imageID = 0, annotationID = 0
        // With --categories expression: each distinct expression's category, numbered as first met.
        var categoryIDs: [String: Int] = [:], categoryNames: [String] = []
        func category(_ expression: String) -> Int {
            guard categories == "expression" else { return 1 }
            if let id = categoryIDs[expression] { return id }
            categoryNames.append(expression)
            categoryIDs[expression] = categoryNames.count
            return categoryNames.count
        }
        try sink.write("{\"images\":[")
        try doneImages(store, job: job) { rows in
            let image = rows[0]
            imageID += 1
            try sink.write(
                (imageID > 1 ? "," : "")
                    + JSONOutput.string([
                        "id": imageID, "file_name": relativeFileName(image.image) ?? image.image,
                        "width": image.width ?? 0, "height": image.height ?? 0,
                    ]))
            for row in rows {
                var objects: [[String: Any]] = []
                if kind == "ground" {
                    // Every expression of the job is a category, whether or not its output held a box.
                    let categoryID = category(row.input)
                    for box in row.boxes where box.count >= 4 {
                        let width = box[2] - box[0], height = box[3] - box[1]
                        objects.append([
                            "image_id": imageID, "category_id": categoryID,
                            "bbox": [box[0], box[1], width, height],
                            "area": width * height, "iscrowd": 0, "expression": row.input, "task_id": row.taskID,
                        ])
                    }
                } else {
                    var object: [String: Any] = [
                        "image_id": imageID, "caption": row.output ?? "", "task_id": row.taskID,
                    ]
                    if kind != "caption" { object["question"] = row.input }
                    objects.append(object)
                }
                for var object in objects {
                    if let confidence = row.confidence { object["score"] = confidence }
                    annotationID += 1
                    object["id"] = annotationID
                    try annotations.write((annotationID > 1 ? "," : "") + JSONOutput.string(object))
                }
            }
        }
        try annotations.finish()
        try sink.write("],\"annotations\":[")
        guard let spooled = FileHandle(forReadingAtPath: spool) else { throw ExportError("cannot read \(spool)") }
        defer { try? spooled.close() }
        while let chunk = try spooled.read(upToCount: 1 << 20), !chunk.isEmpty {
            try sink.write(chunk)
        }
        try sink.write("]")
        if kind == "ground" {
            let names = categories == "expression" ? categoryNames : ["referred object"]
            let list = try names.enumerated().map { try JSONOutput.string(["id": $0.offset + 1, "name": $0.element]) }
            try sink.write(",\"categories\":[" + list.joined(separator: ",") + "]")
        }
        try sink.write("}\n")
    }
}

/// Output names for shards in the order they come (their URIs' byte order): the archive's file name without its
/// extension, made a plain file name; where an earlier shard took the name, also a short hash of the URI.
struct ShardNamer {
    private var names: [[UInt8]: String] = [:]
    private var taken: Set<String> = []

    mutating func name(for uri: [UInt8], archive: String) -> String {
        if let name = names[uri] { return name }
        // A URL's file name is the last part of its path (a pre-signed URL's query holds slashes of its own).
        // An s3:// URL's key is taken as written (it may hold `?` or `%`).
        let path =
            ImageLocation.isS3(archive)
            ? String(archive.dropFirst(5))
            : ImageLocation.isURL(archive) ? URLComponents(string: archive)?.path ?? archive : archive
        var name = ExportCommand.safeFileName(((path as NSString).lastPathComponent as NSString).deletingPathExtension)
        if taken.contains(name) { name += "-" + String(SHA256.hex(of: uri).prefix(8)) }
        taken.insert(name)
        names[uri] = name
        return name
    }
}
