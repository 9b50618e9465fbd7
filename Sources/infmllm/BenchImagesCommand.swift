// `infmllm bench images`: read + decode + resize throughput over a directory of JPEG, PNG, WebP and GIF files, or over a
// list of image URIs (URLs, archive members, paths) read the way workers read them.

import ArgumentParser
import Dispatch
import Foundation
import ImageSources
import Imaging

struct BenchImagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract:
            "Read and decode every image of a directory or a URI list and resize it to S x S, repeatedly; report images per second as JSON."
    )

    @Option(help: ArgumentHelp("A directory of .jpg/.png/.webp/.gif files.", valueName: "dir"))
    var directory: String?

    @Option(
        help: ArgumentHelp(
            "A file of image URIs, one per line: URLs, tar:/zip: archive members or paths, read as workers do.",
            valueName: "path"))
    var uris: String?

    @Option(help: "The side S of the resized image.")
    var size = 448

    @Option(help: "Passes over the directory.")
    var passes = 3

    @Option(help: "Images read and decoded in parallel (for URLs, the fetches at once).")
    var threads = 2

    @OptionGroup var images: ImageOptions

    @Flag(help: "Decode only, without resizing, to separate the two costs.")
    var decodeOnly = false

    @Option(
        help: ArgumentHelp(
            "The chat model's expand-to-square before the resize: none, canvas (pad to the square, then resize), direct (resize the padded square without building it) or auto (the choice workers make).",
            valueName: "how"))
    var square = "none"

    func validate() throws {
        guard passes >= 1, threads >= 1, size >= 1 else {
            throw ValidationError("--passes, --threads and --size must be ≥ 1")
        }
    }

    func run() throws {
        let files: [String]
        if let directory {
            files = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { [".jpg", ".png", ".webp", ".gif", ".heic", ".avif"].contains(where: $0.hasSuffix) }.sorted()
                .map { ImageListing.absolute((directory as NSString).appendingPathComponent($0)) }
        } else if let uris, let text = FileManager.default.contents(atPath: uris) {
            let base = ImageListing.folder(of: uris)
            files = ImageListing.lines(String(decoding: text, as: UTF8.self)).map(String.init).filter { !$0.isEmpty }
                .map { ImageListing.resolve($0, against: base) }
        } else {
            throw ValidationError("give --directory or a readable --uris file")
        }
        guard !files.isEmpty else { throw ValidationError("no images to read") }
        // The URIs are the user's own (a local server, in tools/bench): private addresses are not refused here.
        let reader = ImageReader(
            fetch: FetchSettings(
                allowPrivateAddresses: true, s3: S3Settings(environment: ProcessInfo.processInfo.environment)))
        let decoder = ImageDecoder(maxPixels: try images.resolvedMaxImagePixels(ProcessInfo.processInfo.environment))
        let size = self.size
        let decodeOnly = self.decodeOnly
        guard ["none", "canvas", "direct", "auto"].contains(square) else {
            throw ValidationError("--square \(square): use none, canvas, direct or auto")
        }
        let square = self.square
        let fill = ImagePreprocessor(size: size, expandToSquare: true).fillColor
        let work = (0..<passes).flatMap { _ in files }
        let failures = SharedTotal()
        let start = ContinuousClock.now
        let threads = max(1, self.threads)
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            for index in stride(from: worker, to: work.count, by: threads) {
                do {
                    let image = try decoder.decode(try reader.bytes(of: work[index]), source: work[index])
                    guard !decodeOnly else { continue }
                    let frame = ImageFrame.square(width: image.width, height: image.height)
                    switch square {
                    case "canvas":
                        let canvas = ImagePreprocessor.expandedToSquare(image, fill: fill)
                        _ = BicubicResampler.resize(canvas, width: size, height: size)
                    case "direct":
                        _ = BicubicResampler.resizeOnCanvas(
                            image, side: frame.frameWidth, left: frame.left, top: frame.top, fill: fill, size: size)
                    case "auto":
                        _ = BicubicResampler.resizeExpandedToSquare(image, fill: fill, size: size)
                    default:
                        _ = BicubicResampler.resize(image, width: size, height: size)
                    }
                } catch {
                    failures.add(1)
                }
            }
        }
        let elapsed = (ContinuousClock.now - start).seconds
        print(
            try JSONOutput.encode(
                Result(
                    implementation: "infmllm (Swift)", threads: threads, images: work.count, seconds: elapsed,
                    imagesPerSecond: Double(work.count) / elapsed, failures: failures.total)))
    }

    struct Result: Encodable {
        let implementation: String
        let threads: Int
        let images: Int
        let seconds: Double
        let imagesPerSecond: Double
        let failures: Int
    }
}
