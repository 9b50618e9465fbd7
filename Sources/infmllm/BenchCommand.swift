// `infmllm bench`: throughput measurements that tools/bench scripts compare with the reference implementations.

import ArgumentParser
import Dispatch
import Foundation
import Tokenization

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the throughput of one stage on this machine (see tools/bench for side-by-side runs).",
        subcommands: [BenchTokenizerCommand.self, BenchImagesCommand.self, BenchKernelsCommand.self]
    )
}

struct BenchTokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encode a corpus repeatedly and report strings, tokens and bytes per second as JSON."
    )

    @Option(help: ArgumentHelp("A SentencePiece tokenizer.model.", valueName: "path"))
    var tokenizer: String

    @Option(help: ArgumentHelp("A JSON array of strings to encode.", valueName: "path"))
    var corpus: String

    @Option(help: "Passes over the corpus.")
    var passes = 20

    @Option(help: "Threads encoding in parallel, each a share of the strings.")
    var threads = 1

    func validate() throws {
        guard passes >= 1, threads >= 1 else { throw ValidationError("--passes and --threads must be ≥ 1") }
    }

    func run() throws {
        let tokenizer = try SentencePieceTokenizer(contentsOf: tokenizer)
        let strings = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: corpus)))
        let bytes = strings.reduce(0) { $0 + $1.utf8.count }
        let threads = max(1, threads)
        _ = strings.map { tokenizer.encode($0) }  // warm-up
        let tokens = SharedTotal()
        let start = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            var count = 0
            for _ in 0..<passes {
                for index in stride(from: worker, to: strings.count, by: threads) {
                    count += tokenizer.encode(strings[index]).count
                }
            }
            tokens.add(count)
        }
        let elapsed = (ContinuousClock.now - start).seconds
        let result = Result(
            implementation: "infmllm (Swift)", threads: threads, strings: strings.count * passes, seconds: elapsed,
            stringsPerSecond: Double(strings.count * passes) / elapsed,
            megabytesPerSecond: Double(bytes * passes) / elapsed / 1e6, tokens: tokens.total)
        print(try JSONOutput.encode(result))
    }

    struct Result: Encodable {
        let implementation: String
        let threads: Int
        let strings: Int
        let seconds: Double
        let stringsPerSecond: Double
        let megabytesPerSecond: Double
        let tokens: Int
    }
}

/// A total summed from several threads.
final class SharedTotal: @unchecked Sendable {
    // Invariant: `count` is only touched while holding `lock`.
    private let lock = NSLock()
    private var count = 0
    func add(_ value: Int) { lock.withLock { count += value } }
    var total: Int { lock.withLock { count } }
}

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
