// `infmllm enqueue`: adds an archive's images to a job (idempotently) and publishes one message per new task.

import ArgumentParser
import Foundation
import Generation
import ImageSources
import Jobs
import Models
import Postgres
import Worker

struct EnqueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Add images to a job and queue them for the workers.",
        discussion: """
            Images come from --dir (recursive, filtered by --include/--exclude globs), from paths or URLs given as \
            arguments, from a --manifest (JSONL objects, CSV rows or Parquet rows with "image", or the column \
            --image-column names, and, per image, "question" or "expression"; LAION, DataComp or COYO metadata \
            files: --manifest part-00000.parquet --image-column url), from --urls (one URL per line), from the \
            image members of tar and zip --archive files or of tar and zip files served over HTTP(S) (--archive 'https://host/shards/{00000..00099}.tar': \
            each shard's headers are read as it streams past, a zip file's central directory with range requests, \
            and the workers read each member with one range request), or from an earlier job (--from-job). An image is a path (stored absolute: workers on other \
            machines need the same mount; relative ones are taken from the working directory, or from the folder \
            of the manifest or URL list), a \
            file://, http://, https:// or s3:// URL (s3:// signed with the AWS CLI's variables), or an archive member, tar:/path/shard.tar!/member/name.jpg or \
            zip:/path/a.zip!/name.png, or a remote tar or zip member, tar:URL#offset=START&size=BYTES!/name.jpg \
            or zip:URL#header=START&packed=BYTES&size=BYTES&crc=HEX!/name.jpg (as --archive URL lists them), read \
            in place by the workers. Enqueueing the same images into the same job \
            again adds nothing. Prints the job id.
            """
    )

    @Argument(help: "caption, vqa, ground or chat.") var task: String
    @Argument(help: "Image files or URLs.") var paths: [String] = []
    @Option(
        help: ArgumentHelp(
            "A directory to scan recursively, or an S3 prefix whose objects are listed (s3://bucket/photos/).",
            valueName: "dir"))
    var dir: String?
    @Option(
        help:
            "Glob of file names to take from --dir (repeatable; default *.jpg *.jpeg *.png *.webp *.gif *.heic *.heif *.avif, any case)."
    )
    var include: [String] = []
    @Option(help: "Glob of file names to leave out from --dir (repeatable).") var exclude: [String] = []
    @Option(
        help: ArgumentHelp(
            "A JSONL, CSV or Parquet manifest of images and their questions or expressions "
                + "(-: JSONL on standard input), or a glob or braces of several ('part-{00000..00031}.parquet').",
            discussion: "Its other fields or columns are kept with each task (`metadata`, exported with the results); "
                + "a Parquet file's nested columns (lists, structs, maps) are left out and named. A Parquet file is "
                + "read a page at a time, with SNAPPY, GZIP, ZSTD, LZ4_RAW or no compression.",
            valueName: "path"))
    var manifest: String?
    @Option(
        help: ArgumentHelp(
            "The manifest's field or column that holds each image's path or URL.",
            discussion: "URL for LAION's metadata files, url for DataComp's and COYO's.", valueName: "name"))
    var imageColumn = "image"
    @Option(
        help: ArgumentHelp(
            "The manifest's field or column that holds each image's question or expression (vqa, ground, chat).",
            discussion: "Default: question (vqa, chat) or expression (ground), else text.", valueName: "name"))
    var textColumn: String?
    @Option(
        help: ArgumentHelp(
            "The manifest's other fields or columns to keep with each task, comma-separated (default: all; '' none).",
            discussion: "Kept fields come back with the results (export, SQL); all of a line's kept fields together "
                + "must fit 8192 bytes as JSON, or the line is refused.", valueName: "names"))
    var fields: String?
    @Option(
        help: ArgumentHelp("A file of image URLs (or paths), one per line (-: standard input).", valueName: "path"))
    var urls: String?
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Tar or zip files (globs allowed), or http(s) URLs of them, whose image members are enqueued, "
                + "read in place; {000..099} and {a,b} braces are expanded.", valueName: "path"))
    var archive: [String] = []
    @Option(
        help: ArgumentHelp(
            "A file of archives, one per line, as --archive takes them (paths, globs, URLs; -: standard input).",
            discussion: "For shard lists too long for the command line or without a brace pattern; relative paths "
                + "are taken from the list's folder.",
            valueName: "path"))
    var archiveList: String?
    @Option(
        help: ArgumentHelp(
            "The images of an existing job (id or name), with their questions or expressions and fields.",
            discussion: "To run them again with another model, prompt or settings: --question or --expression "
                + "replaces their texts, --from-status takes only tasks in a state.",
            valueName: "job"))
    var fromJob: String?
    @Option(
        help: "With --from-job, only its tasks in this state (repeatable: queued, running, done, failed, cancelled).")
    var fromStatus: [TaskStatus] = []
    @Option(help: "The job's name; a new job is created if none has it (default: the task and the time).") var job:
        String?
    @Option(help: "The model the job is for (its directory or name), recorded with every result.") var model: String
    @Option(help: "The question for every image (vqa, chat).") var question: String?
    @Option(help: "The referring expression for every image (ground).") var expression: String?
    @Option(help: "A prompt template overriding the task's; <ImageHere> marks the image.") var prompt: String?
    @Option(help: "Beams for beam search.") var beams: Int?
    @Option(help: "New tokens at most.") var maxNewTokens: Int?
    @Option(help: "New tokens before end-of-sequence is allowed.") var minNewTokens: Int?
    @Option(help: "Beam scores divide by length^penalty.") var lengthPenalty: Double?
    @Option(help: BeamRules.help) var beamRules: BeamRules?
    @Option(help: DecodingPreset.help) var preset: DecodingPreset = .greedy
    @Option(help: "Sample with this temperature.") var temperature: Float?
    @Option(help: "Nucleus sampling mass.") var topP: Float?
    @Option(help: "Keep only the k most likely tokens when sampling.") var topK: Int?
    @Option(help: "Sampling seed.") var seed: UInt64?
    @Flag(
        help: ArgumentHelp(
            "Skip images that already have a result from this model, task, prompt and decoding settings.",
            discussion:
                "Images with a result under the same URI are left out here; the workers reuse any result for the same image content (SHA-256) and input from the same weights, wherever it came from."
        ))
    var skipDone = false
    @Flag(
        help: ArgumentHelp(
            "Skip image files that have a caption file beside them (a.txt beside a.jpg, not empty).",
            discussion: "For training folders where some images are captioned already (by hand, or by an earlier "
                + "`export --format txt`); archive members and URLs are taken as they are."))
    var skipCaptioned = false
    @Option(
        help: ArgumentHelp(
            "The job's priority: high, normal or low (default: normal for a new job; an existing job keeps its own).",
            discussion: "Each is a queue lane of the model: workers take a lower lane's tasks only while the higher "
                + "lanes have none ready. Given for an existing job, it applies to the tasks published from then on.",
            valueName: "lane"))
    var priority: TaskPriority?
    @Flag(
        help: ArgumentHelp(
            "Refuse the whole manifest when any line is bad.",
            discussion: "Otherwise the good lines are enqueued, the bad ones listed, and the exit status is 3."))
    var strict = false
    @Flag(
        help: ArgumentHelp(
            "List and check everything, count what would be added, and estimate the work; write nothing.",
            discussion: "The estimate is the mean worker time of this model's newest results with the same task, "
                + "prompt and decoding settings, per device."
        ))
    var dryRun = false
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as one JSON object.") var json = false

    struct Outcome: Encodable {
        /// The job's id; nil for a dry run on a job that does not exist yet.
        let job_id: Int64?
        let job: String
        /// Whether the job was created (would be, in a dry run).
        let created: Bool
        let dry_run: Bool
        /// Images listed (with their text), an image listed twice counted twice.
        let found: Int
        let skipped_done: Int
        /// Image files left out by --skip-captioned.
        let skipped_captioned: Int
        let added: Int
        let published: Int
        /// Manifest and URL-list lines (a Parquet manifest's rows, from 1) left out: the first thousand, with their
        /// numbers and reasons, and how many.
        let refused: [ImageListing.Refusal]
        let refused_count: Int
        /// Archive members left out because they are not images.
        let skipped_members: Int
        /// Archives that stop early (truncated or damaged), with the reason.
        let damaged_archives: [String]
        /// Folders under --dir that could not be read, with the reason.
        let unreadable_folders: [String]
        /// A Parquet manifest's nested columns, not kept with the tasks ("tags (a list)").
        let unread_columns: [String]
        /// The key the job's tasks are routed by, and the workers consuming that model's queue (nil when the
        /// broker could not say).
        let model_key: String
        let consumers: Int?
        /// A dry run's estimate of the work added, per device that has run this model with these settings.
        let estimate: [Estimate]
    }

    /// `--model` as jobs record it: a directory that ends in `.` or `..` (`--model .` inside the model's folder) as
    /// its absolute path, so that it routes by the folder's name as the worker serving it does; anything else as
    /// typed.
    static func recorded(model: String) -> String {
        let last = (model as NSString).lastPathComponent
        var isDirectory: ObjCBool = false
        guard last == "." || last == "..",
            FileManager.default.fileExists(atPath: (model as NSString).expandingTildeInPath, isDirectory: &isDirectory),
            isDirectory.boolValue
        else { return model }
        return ImageListing.absolute((model as NSString).expandingTildeInPath)
    }

    func run() throws {
        if let problem = S3Settings(environment: ProcessInfo.processInfo.environment).problem {
            throw ValidationError(problem)
        }
        let model = Self.recorded(model: self.model)
        guard let kind = TaskKind(rawValue: task) else {
            throw ValidationError("unknown task \"\(task)\": use caption, vqa, ground or chat")
        }
        guard fromStatus.isEmpty || fromJob != nil else {
            throw ValidationError("--from-status chooses among the tasks of --from-job, which is missing")
        }
        guard textColumn == nil || (kind.takesTextInput && manifest != nil) else {
            throw ValidationError(
                "--text-column names a manifest's column of questions or expressions: \(task) "
                    + (kind.takesTextInput ? "has no --manifest" : "takes no text"))
        }
        guard fields == nil || manifest != nil else {
            throw ValidationError("--fields chooses among a manifest's fields: give --manifest")
        }
        let environment = ProcessInfo.processInfo.environment
        let parameters: GenerationParameters
        do {
            parameters = try GenerationParameters.overriding(
                try Self.presetParameters(preset, task: kind, model: model),
                maxNewTokens: maxNewTokens, minNewTokens: minNewTokens, beams: beams, lengthPenalty: lengthPenalty,
                temperature: temperature, topP: topP, topK: topK, seed: seed, beamRules: beamRules)
        } catch {
            throw ValidationError("\(error)")
        }
        try Self.checkFits(parameters, model: model)

        var request = ImageListing.Request(
            takesText: kind.takesTextInput, textName: kind == .ground ? "expression" : "question",
            sharedText: (kind == .ground ? expression : question) ?? "")
        request.paths = paths
        request.directory = dir
        request.include = include
        request.exclude = exclude
        request.manifest = manifest
        request.imageColumn = imageColumn
        request.textColumn = textColumn
        request.fields = fields.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        request.urls = urls
        do {
            try ImageListing.checkStandardInput([manifest, urls, archiveList])
            request.archives = try archive + (archiveList.map(ImageListing.archivePatterns(fromList:)) ?? [])
        } catch let error as ImageSourceError {
            throw ValidationError("\(error)")
        }
        let listsFiles =
            !paths.isEmpty || dir != nil || manifest != nil || urls != nil || !request.archives.isEmpty
            || archiveList != nil
        let databaseURL = services.resolvedDatabaseURL(environment)
        let source = try fromJob.map { try Self.sourceJob($0, kind: kind, sharedText: request.sharedText, databaseURL) }
        // Remote archives are read from wherever the user points (a private address included): workers check
        // their own policy (--allow-private-urls) when they read the members.
        let reader = ImageReader(
            fetch: FetchSettings(allowPrivateAddresses: true, s3: S3Settings(environment: environment)))
        do {
            if listsFiles || source == nil { try ImageListing.check(request, reader: reader) }
        } catch let error as ImageSourceError {
            throw ValidationError("\(error)")
        }

        let store = try JobServices.store(databaseURL)
        let publisher = try services.publisher(environment, role: "enqueue")
        let name = job ?? "\(kind.rawValue)-\(ISO8601DateFormatter().string(from: Date()))"
        let generation = String(decoding: try JSONEncoder().encode(parameters), as: UTF8.self)
        // A dry run and --strict write in one transaction and publish nothing meanwhile: a dry run rolls it back (the
        // counts are exact, and nothing stays); --strict commits it only when no line was refused, then publishes.
        let oneTransaction = dryRun || strict
        var writer = EnqueueWriter(
            store: store, outbox: oneTransaction ? nil : TaskOutbox(publisher: publisher),
            open: {
                try store.openJob(
                    name: name, kind: kind, model: model, promptTemplate: prompt, generationJSON: generation,
                    reuseResults: skipDone, priority: priority)
            },
            skipDone: !skipDone
                ? nil
                : {
                    try store.withoutResults(
                        $0, kind: kind, model: model, promptTemplate: prompt, generationJSON: generation)
                },
            progress: json ? nil : { FileHandle.standardError.write(Data("enqueue: \($0)\n".utf8)) })
        var report = ImageListing.Report()
        var skippedCaptioned = 0
        if oneTransaction { try store.connection.execute("BEGIN") }
        do {
            if listsFiles {
                try ImageListing.forEach(request, reader: reader, report: &report, checked: true) { image in
                    if skipCaptioned && Self.hasCaption(image.uri) {
                        skippedCaptioned += 1
                    } else {
                        try writer.take(image)
                    }
                }
            }
            if let source {
                // An explicit question or expression replaces the source tasks' own.
                let shared = request.sharedText
                try source.store.taskInputs(job: source.job.id, statuses: fromStatus) { rows in
                    for row in rows {
                        let text = !kind.takesTextInput ? "" : shared.isEmpty ? row.text : shared
                        try writer.take(ListedImage(uri: row.uri, text: text, metadata: row.metadata))
                    }
                }
            }
            try writer.finish()
        } catch {
            // Nothing of it stays (a transaction, or no task added yet): the error as it is. Otherwise the job keeps
            // what was added, and the same command adds the rest.
            if oneTransaction { _ = try? store.connection.execute("ROLLBACK") }
            guard !oneTransaction && writer.added > 0 else {
                if let error = error as? ImageSourceError { throw ValidationError("\(error)") }
                throw error
            }
            throw EnqueueInterrupted(added: writer.added, underlying: error)
        }
        var published = writer.published
        if strict && report.refusedCount > 0 {
            try store.connection.execute("ROLLBACK")
            printRefusals(report)
            throw ValidationError(
                "--strict: \(report.refusedCount) bad manifest lines; nothing \(dryRun ? "would be" : "was") enqueued")
        }
        if dryRun {
            try store.connection.execute("ROLLBACK")
        } else if strict {
            try store.connection.execute("COMMIT")
            if let opened = writer.opened {
                do {
                    published += try TaskOutbox(publisher: publisher).publishUnpublished(
                        store: store, grace: 0, job: opened.id)
                } catch {
                    // Committed: the tasks stay, and the same command (or a worker's reconciler) publishes them.
                    throw EnqueueInterrupted(added: writer.added, underlying: error)
                }
            }
        }
        printRefusals(report)
        for damaged in report.damagedArchives {
            FileHandle.standardError.write(Data("archive \(damaged)\n".utf8))
        }
        if !report.unreadColumns.isEmpty {
            FileHandle.standardError.write(
                Data("the manifest's columns \(report.unreadColumns.joined(separator: ", ")) are not kept\n".utf8))
        }
        for folder in report.unreadableFolders {
            FileHandle.standardError.write(Data("cannot read the folder \(folder); its images are not enqueued\n".utf8))
        }
        guard let opened = writer.opened else { throw ValidationError("no images found to enqueue") }

        let costs =
            dryRun
            ? try store.taskCosts(kind: kind, model: model, promptTemplate: prompt, generationJSON: generation) : []
        let consumers = JobServices.consumers(of: model, publisher: publisher)
        let found = writer.found + skippedCaptioned  // images listed, those skipped as captioned included
        let outcome = Outcome(
            job_id: dryRun && opened.created ? nil : opened.id, job: name, created: opened.created,
            dry_run: dryRun, found: found, skipped_done: writer.skipped,
            skipped_captioned: skippedCaptioned, added: writer.added,
            published: published, refused: report.refused, refused_count: report.refusedCount,
            skipped_members: report.skippedMembers, damaged_archives: report.damagedArchives,
            unreadable_folders: report.unreadableFolders, unread_columns: report.unreadColumns,
            model_key: ModelKey.of(model), consumers: consumers,
            estimate: costs.map { Estimate($0, tasks: writer.added) })
        if json {
            print(try JSONOutput.encode(outcome))
        } else {
            FileHandle.standardError.write(
                Data(
                    summary(
                        name: name, found: found, added: writer.added,
                        skipped: writer.skipped, skippedCaptioned: skippedCaptioned,
                        republished: max(0, published - writer.added), skippedMembers: report.skippedMembers
                    ).utf8))
            if dryRun {
                FileHandle.standardError.write(
                    Data(Self.estimateLines(outcome.estimate, tasks: writer.added, consumers: consumers).utf8))
            } else {
                print(opened.id)
            }
            if consumers == 0 { FileHandle.standardError.write(Data((JobServices.nobodyServes(model) + "\n").utf8)) }
        }
        if report.refusedCount > 0 { throw ExitCode(3) }
    }

    /// The job `--from-job` names, on a connection of its own (its tasks are read through a cursor while the new
    /// ones are written); refused when it does not exist, or when the new task needs a text its tasks do not have.
    static func sourceJob(_ reference: String, kind: TaskKind, sharedText: String, _ databaseURL: String) throws -> (
        store: PostgresJobStore, job: JobSummary
    ) {
        let store = try JobServices.store(databaseURL)
        guard let job = try store.job(reference) else { throw ValidationError("no job \(reference) to enqueue from") }
        if kind.takesTextInput && sharedText.isEmpty && !(TaskKind(rawValue: job.taskKind)?.takesTextInput ?? false) {
            throw ValidationError(
                "job \(job.name)'s tasks have no \(kind == .ground ? "expression" : "question"): give --"
                    + (kind == .ground ? "expression" : "question"))
        }
        return (store, job)
    }

    /// Whether `uri` is an image file with a caption file beside it: its name with `.txt` for its extension, a
    /// regular file that is not empty (an image named `scan.txt` is not its own caption).
    static func hasCaption(_ uri: String) -> Bool {
        guard case let .file(path)? = try? ImageLocation(uri) else { return false }
        let caption = (path as NSString).deletingPathExtension + ".txt"
        var status = stat()
        guard caption != path, stat(caption, &status) == 0 else { return false }  // links followed
        return status.st_mode & S_IFMT == S_IFREG && status.st_size > 0
    }

    /// The first hundred refused lines on stderr, and how many more there were.
    func printRefusals(_ report: ImageListing.Report) {
        let named = manifest ?? urls ?? "manifest"
        let source = named == "-" ? "standard input" : named
        for refusal in report.refused.prefix(100) {
            FileHandle.standardError.write(Data("\(refusal.file ?? source):\(refusal.line): \(refusal.reason)\n".utf8))
        }
        if report.refusedCount > 100 {
            FileHandle.standardError.write(Data("... and \(report.refusedCount - 100) more refused lines\n".utf8))
        }
    }

    /// The line `enqueue` prints on stderr.
    func summary(
        name: String, found: Int, added: Int, skipped: Int, skippedCaptioned: Int, republished: Int,
        skippedMembers: Int
    ) -> String {
        var line =
            "\(dryRun ? "dry run: " : "")job \(name): \(found) images, \(added) new tasks "
            + "\(dryRun ? "would be queued" : "queued"), \(skipped) skipped as done"
        if skippedCaptioned > 0 { line += ", \(skippedCaptioned) skipped as captioned (a .txt beside them)" }
        if skippedMembers > 0 { line += ", \(skippedMembers) archive members skipped as not images" }
        if republished > 0 { line += ", \(republished) unpublished tasks of earlier runs published" }
        return line + "\n"
    }

    /// `preset`'s settings for `task`. The evaluation settings depend on the model's variant, read from the
    /// configuration of `model`, which must then be the model's directory.
    static func presetParameters(_ preset: DecodingPreset, task: TaskKind, model: String) throws
        -> GenerationParameters
    {
        guard preset == .evaluation else { return preset.parameters(task, variant: .multitask) }
        let directory = (model as NSString).expandingTildeInPath
        guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("config.json"))
        else {
            throw ValidationError(
                "--preset evaluation depends on the model's variant: give --model as the model's directory, or the "
                    + "settings as flags (README, \"Using the released models\")")
        }
        return preset.parameters(task, variant: try ModelConfiguration.load(directory: directory).variant)
    }

    /// When `model` is a model directory, refuses decoding settings that no prompt could fit in its context: the
    /// visual tokens, BOS and the new tokens alone. (Prompts longer than that, and memory, are checked by the
    /// worker, which fails such a task with the reason.)
    static func checkFits(_ parameters: GenerationParameters, model: String) throws {
        let directory = (model as NSString).expandingTildeInPath
        guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("config.json"))
        else { return }
        let configuration = try ModelConfiguration.load(directory: directory)
        let needed = 1 + configuration.visualTokenCount + parameters.maxNewTokens
        let limit = configuration.text.maxPositionEmbeddings
        guard needed <= limit else {
            throw ValidationError(
                "--max-new-tokens \(parameters.maxNewTokens) can never fit \(model): BOS, "
                    + "\(configuration.visualTokenCount) visual tokens and the new tokens need \(needed) positions, "
                    + "more than the \(limit) the model has")
        }
    }
}

/// `--from-status`'s values.
extension TaskStatus: ExpressibleByArgument {}
extension TaskPriority: ExpressibleByArgument {}
