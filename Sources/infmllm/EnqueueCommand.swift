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
            arguments, from a --manifest (JSONL objects or CSV rows with "image" and, per image, "question" or \
            "expression"), from --urls (one URL per line), or from the image members of tar and zip --archive \
            files. An image is a path (stored absolute: workers on other machines need the same mount; relative \
            ones are taken from the working directory, or from the folder of the manifest or URL list), a \
            file://, http:// or https:// URL, or an archive member, tar:/path/shard.tar!/member/name.jpg or \
            zip:/path/a.zip!/name.png, read in place by the workers. Enqueueing the same images into the same job \
            again adds nothing. Prints the job id.
            """
    )

    @Argument(help: "caption, vqa, ground or chat.") var task: String
    @Argument(help: "Image files or URLs.") var paths: [String] = []
    @Option(help: ArgumentHelp("A directory to scan recursively.", valueName: "dir")) var dir: String?
    @Option(help: "Glob of file names to take from --dir (repeatable; default *.jpg *.jpeg *.png, any case).")
    var include: [String] = []
    @Option(help: "Glob of file names to leave out from --dir (repeatable).") var exclude: [String] = []
    @Option(
        help: ArgumentHelp("A JSONL or CSV manifest of images and their questions or expressions.", valueName: "path"))
    var manifest: String?
    @Option(help: ArgumentHelp("A file of image URLs (or paths), one per line.", valueName: "path")) var urls: String?
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Tar or zip files (globs allowed) whose image members are enqueued, read in place.", valueName: "path"))
    var archive: [String] = []
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
            "Refuse the whole manifest when any line is bad.",
            discussion: "Otherwise the good lines are enqueued, the bad ones listed, and the exit status is 3."))
    var strict = false
    @OptionGroup var services: ServiceOptions
    @Flag(help: "Print the outcome as one JSON object.") var json = false

    struct Outcome: Encodable {
        let job_id: Int64
        let job: String
        let created: Bool
        let found: Int
        let skipped_done: Int
        let added: Int
        let published: Int
        /// Manifest and URL-list lines left out, with their numbers and reasons.
        let refused: [ImageListing.Refusal]
        /// Archive members left out because they are not images.
        let skipped_members: Int
        /// Archives that stop early (truncated or damaged), with the reason.
        let damaged_archives: [String]
        /// The key the job's tasks are routed by, and the workers consuming that model's queue (nil when the
        /// broker could not say).
        let model_key: String
        let consumers: Int?
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
        let model = Self.recorded(model: self.model)
        guard let kind = TaskKind(rawValue: task) else {
            throw ValidationError("unknown task \"\(task)\": use caption, vqa, ground or chat")
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
        request.urls = urls
        request.archives = archive
        var report = ImageListing.Report()
        let listed: [ListedImage]
        do {
            listed = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        } catch let error as ImageSourceError {
            throw ValidationError("\(error)")
        }
        let tasks = listed.map { NewTask(imageURI: $0.uri, inputText: $0.text, metadataJSON: $0.metadata) }
        let refused = report.refused
        for refusal in refused.prefix(100) {
            FileHandle.standardError.write(
                Data("\(manifest ?? urls ?? "manifest"):\(refusal.line): \(refusal.reason)\n".utf8))
        }
        for damaged in report.damagedArchives {
            FileHandle.standardError.write(Data("archive \(damaged); its members before that are enqueued\n".utf8))
        }
        if refused.count > 100 {
            FileHandle.standardError.write(Data("... and \(refused.count - 100) more refused lines\n".utf8))
        }
        if strict && !refused.isEmpty {
            throw ValidationError("--strict: \(refused.count) bad manifest lines; nothing was enqueued")
        }
        guard !tasks.isEmpty else { throw ValidationError("no images found to enqueue") }

        let store = PostgresJobStore(connection: try PostgresConnection(url: services.resolvedDatabaseURL(environment)))
        let outbox = try services.outbox(environment, role: "enqueue")
        let name = job ?? "\(kind.rawValue)-\(ISO8601DateFormatter().string(from: Date()))"
        let generation = String(decoding: try JSONEncoder().encode(parameters), as: UTF8.self)
        let opened = try store.openJob(
            name: name, kind: kind, model: model, promptTemplate: prompt, generationJSON: generation,
            reuseResults: skipDone)
        let wanted =
            skipDone
            ? try store.withoutResults(
                tasks, kind: kind, model: model, promptTemplate: prompt, generationJSON: generation) : tasks
        // Commit a chunk, then publish the job's tasks without a message, claimed so that another run on the same
        // job (or a worker's reconciler) never sends them too. A failure strands at most one chunk, which the next
        // run on the job or a worker's reconciler publishes; tasks an earlier run left unpublished go out here too.
        var added = 0, published = 0
        for start in stride(from: 0, to: wanted.count, by: 5000) {
            added += try store.addTasks(Array(wanted[start..<min(start + 5000, wanted.count)]), to: opened.id).count
            published += try outbox.publishUnpublished(store: store, grace: 0, job: opened.id)
        }
        if wanted.isEmpty { published += try outbox.publishUnpublished(store: store, grace: 0, job: opened.id) }
        let consumers = JobServices.consumers(of: model, publisher: outbox.publisher)
        let outcome = Outcome(
            job_id: opened.id, job: name, created: opened.created, found: tasks.count,
            skipped_done: tasks.count - wanted.count,
            added: added, published: published, refused: refused, skipped_members: report.skippedMembers,
            damaged_archives: report.damagedArchives, model_key: ModelKey.of(model), consumers: consumers)
        if json {
            print(try JSONOutput.encode(outcome))
        } else {
            FileHandle.standardError.write(
                Data(
                    summary(
                        name: name, found: tasks.count, added: added, skipped: tasks.count - wanted.count,
                        republished: max(0, published - added), skippedMembers: report.skippedMembers
                    ).utf8))
            print(opened.id)
            if consumers == 0 { FileHandle.standardError.write(Data((JobServices.nobodyServes(model) + "\n").utf8)) }
        }
        if !refused.isEmpty { throw ExitCode(3) }
    }

    /// The line `enqueue` prints on stderr.
    func summary(name: String, found: Int, added: Int, skipped: Int, republished: Int, skippedMembers: Int) -> String {
        var line = "job \(name): \(found) images, \(added) new tasks queued, \(skipped) skipped as done"
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
