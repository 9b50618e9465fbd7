// Images for the worker: each read (file, URL or archive member), decoded, hashed and preprocessed on threads of
// its own as soon as it is asked for, with no batch to wait for; finished images wait for the worker loop, which
// hands them to the model as they come.

import Foundation
import Generation
import ImageSources
import Imaging

/// Reads and prepares images on its own threads. Thread-safe.
final class ImagePipeline: @unchecked Sendable {
    /// An image ready for the model: its content digest and size, and the model's input.
    struct Image: Sendable {
        let sha256: String
        let width: Int
        let height: Int
        /// The Exif orientation tag (1 to 8; 1, upright, when it has none): recorded, never applied to what the model
        /// sees.
        let orientation: Int
        let input: PreprocessedImage
        /// Reading, decoding and preprocessing it took this long.
        let milliseconds: Double
    }

    /// A finished request: its ticket, and the image or why it could not be used (naming the image).
    struct Finished: Sendable {
        let ticket: Int
        let image: Result<Image, ImageFailure>
    }

    struct ImageFailure: Error, Sendable {
        let reason: String
        /// A reason that may pass (a timeout, a lost connection, HTTP 5xx or 429): reading again later may work.
        var isTransient = false
    }

    private let reader: ImageReader
    private let decoder: ImageDecoder
    private let preprocessor: ImagePreprocessor
    private let memory: ImageMemory
    private let work = OperationQueue()
    // Invariant: `done`, `pending` and `nextTicket` are only read and written while holding `condition`.
    private let condition = NSCondition()
    private var done: [Finished] = []
    private var pending = 0
    private var nextTicket = 0

    /// - Parameter concurrency: images in progress at once (URLs wait on the network, so many may run).
    /// - Parameter memory: what images being decoded may hold at once.
    init(
        reader: ImageReader, decoder: ImageDecoder, preprocessor: ImagePreprocessor, concurrency: Int,
        memory: ImageMemory
    ) {
        self.memory = memory
        self.reader = reader
        self.decoder = decoder
        self.preprocessor = preprocessor
        work.maxConcurrentOperationCount = max(1, concurrency)
    }

    /// Starts on `uri`; returns the ticket its result will carry.
    func read(_ uri: String) -> Int {
        let ticket = condition.withLock {
            nextTicket += 1
            pending += 1
            return nextTicket
        }
        let (reader, decoder, preprocessor, memory) = (self.reader, self.decoder, self.preprocessor, self.memory)
        work.addOperation { [self] in
            let began = ContinuousClock.now
            let image: Result<Image, ImageFailure>
            do {
                let bytes = try reader.bytes(of: uri)
                // What decoding may take is reserved from the header's size before any pixel is allocated (a
                // header past the pixel limit is refused by the decoder itself).
                let header = ImageDecoder.header(of: bytes)
                let cost = header.flatMap(decoder.decodingBytes(for:)) ?? 0
                if cost > 0 {
                    do {
                        try memory.reserve(cost)
                    } catch {
                        throw ImageSourceError(source: uri, reason: "\(error)")
                    }
                }
                defer { if cost > 0 { memory.release(cost) } }
                let decoded = try decoder.decodeWithDigest(bytes, source: uri)
                let input = preprocessor(decoded.image)
                let elapsed = ContinuousClock.now - began
                image = .success(
                    Image(
                        sha256: decoded.sha256, width: decoded.image.width, height: decoded.image.height,
                        orientation: header?.orientation?.value ?? 1, input: input,
                        milliseconds: Double(elapsed.components.seconds) * 1000
                            + Double(elapsed.components.attoseconds) / 1e15))
            } catch {
                image = .failure(
                    ImageFailure(reason: "\(error)", isTransient: (error as? ImageSourceError)?.isTransient ?? false))
            }
            condition.withLock {
                done.append(Finished(ticket: ticket, image: image))
                pending -= 1
                condition.broadcast()
            }
        }
        return ticket
    }

    /// Images asked for and not yet taken.
    var count: Int { condition.withLock { pending + done.count } }

    /// The finished images not yet taken, in the order they finished.
    func takeFinished() -> [Finished] {
        condition.withLock {
            defer { done = [] }
            return done
        }
    }

    /// Waits until an image is finished (true) or `timeout` seconds pass (false).
    func waitForFinished(timeout: Double) -> Bool {
        condition.withLock {
            let deadline = Date(timeIntervalSinceNow: timeout)
            while done.isEmpty && pending > 0 {
                if !condition.wait(until: deadline) { break }
            }
            return !done.isEmpty
        }
    }
}
