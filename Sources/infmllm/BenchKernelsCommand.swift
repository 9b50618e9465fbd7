// `infmllm bench kernels`: the machine's bf16 and bandwidth ceilings and the backend's products at the model's
// shapes, so that every engine figure can be read against what the cores and memory can do.

import ArgumentParser
import CKernels
import CPUBackend
import Compute
import Foundation
import Tensors

struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Measure bf16 peak, memory bandwidth and matrix products; one JSON object per line.",
        discussion: """
            Shapes are m,n,k: m activation rows times a weight of n outputs and k inputs. The default list holds \
            the EVA ViT-g and LLaMA-7B products for one image (1,025 tokens), a 280-token prompt and decoding at \
            batch 1 and 8.
            """
    )

    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(
        help: ArgumentHelp(
            "Kernel sets to measure (comma-separated): auto, amx, avx512bf16, avx512, avx2vnni, avx2, portable.",
            discussion:
                "Each set's peak and bf16/int8 products are measured in turn; a set the processor lacks is skipped."
        ))
    var kernels = "auto"
    @Option(help: "Compute modes to measure, comma-separated.") var modes = "bf16,f32"
    @Option(help: "Products as m,n,k;m,n,k;...")
    var shapes =
        "1025,4224,1408;1025,6144,1408;1025,1408,6144;280,4096,4096;280,11008,4096;280,4096,11008;1,4096,4096;1,11008,4096;1,4096,11008;8,11008,4096;1,32000,4096"
    @Option(help: "Seconds to spend on each measurement.") var seconds = 0.5
    @Option(
        help: ArgumentHelp(
            "Different weights to cycle through, so that each product finds its weights in memory rather than in cache, as inside a forward pass."
        ))
    var distinct = 1

    func validate() throws {
        guard seconds.isFinite, seconds > 0, seconds <= 3600 else {
            throw ValidationError("--seconds must be a number of seconds > 0, at most an hour")
        }
        guard threads.map({ $0 >= 1 }) ?? true, distinct >= 1 else {
            throw ValidationError("--threads and --distinct must be ≥ 1")
        }
        _ = try products()
    }

    /// `--shapes` as (m, n, k) triples: sizes ≥ 1, with m·k and n·k at most 2^32 (the values made for them).
    func products() throws -> [(m: Int, n: Int, k: Int)] {
        try shapes.split(separator: ";").map { shape in
            let parts = shape.split(separator: ",").compactMap { Int($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 >= 1 }),
                let inputs = WeightTensor.elementCount(of: [parts[0], parts[2]]), inputs <= 1 << 32,
                let weights = WeightTensor.elementCount(of: [parts[1], parts[2]]), weights <= 1 << 32
            else { throw ValidationError("a shape is m,n,k of sizes ≥ 1 (m·k and n·k at most 2^32), not \(shape)") }
            return (parts[0], parts[1], parts[2])
        }
    }

    func run() throws {
        let threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        var sets: [KernelSet] = []
        for name in kernels.split(separator: ",") {
            guard let set = KernelSet.named(String(name)) else { throw ValidationError("unknown kernel set \(name)") }
            let chosen = set ?? KernelSet.best
            if chosen.isRunnable && !sets.contains(chosen) { sets.append(chosen) }
        }
        for set in sets {
            // Multiply-add peak of the set's bf16 products, every thread on registers; each reports what it did.
            let pool = ThreadPool(threads: threads, kernels: set)
            let iterations = 20_000_000
            var best = 0.0
            for _ in 0..<3 {
                let operations = SharedTotal()
                let start = ContinuousClock.now
                pool.run(threads) { range in
                    for _ in range { operations.add(Int(ck_peak_bf16(iterations))) }
                }
                best = max(best, Double(operations.total) / (ContinuousClock.now - start).seconds)
            }
            print(
                try JSONOutput.encode(
                    Line(
                        kind: "peak", mode: nil, kernels: set.description, threads: threads, shape: nil, seconds: nil,
                        gflops: best / 1e9, gbps: nil)))
        }
        // Read bandwidth over 1 GiB.
        let pool = ThreadPool(threads: threads)
        let count = 1 << 28
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        pool.run(count) { range in (buffer + range.lowerBound).initialize(repeating: 1, count: range.count) }
        var bandwidth = 0.0
        for _ in 0..<3 {
            let start = ContinuousClock.now
            pool.run(count) { range in _ = ck_read_sum(buffer, range.lowerBound, range.upperBound) }
            bandwidth = max(bandwidth, Double(count * 4) / (ContinuousClock.now - start).seconds)
        }
        print(
            try JSONOutput.encode(
                Line(
                    kind: "read-bandwidth", mode: nil, kernels: nil, threads: threads, shape: nil, seconds: nil,
                    gflops: nil,
                    gbps: bandwidth / 1e9)))
        var runs: [(ComputePrecision, KernelSet?)] = []
        for mode in modes.split(separator: ",") {
            guard let precision = ComputePrecision(rawValue: String(mode)) else {
                throw ValidationError("unknown mode \(mode)")
            }
            // f32 runs OpenBLAS, the same whatever the kernel set.
            runs += precision == .f32 ? [(precision, nil)] : sets.map { (precision, $0) }
        }
        for (precision, set) in runs {
            let backend = CPUBackend(precision: precision, threads: threads, kernels: set)
            for (m, n, k) in try products() {
                var random = SplitMix64(seed: 1)
                let values = (0..<(n * k)).map { _ in Float(Int(random.next() % 2001) - 1000) / 50_000 }
                let weight = OwnedBytes.tensor(name: "w", shape: [n, k], values: values, as: .bf16)
                let layers = (0..<max(1, distinct)).map { _ in Linear(weight: weight, bias: nil, backend: backend) }
                let x = (0..<(m * k)).map { _ in Float(Int(random.next() % 2001) - 1000) / 1000 }
                for layer in layers { _ = layer(x, rows: m) }
                var runs = 0
                var fastest = Double.infinity
                let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
                repeat {
                    let layer = layers[runs % layers.count]
                    let start = ContinuousClock.now
                    _ = layer(x, rows: m)
                    fastest = min(fastest, (ContinuousClock.now - start).seconds)
                    runs += 1
                } while ContinuousClock.now < deadline || runs < 3
                print(
                    try JSONOutput.encode(
                        Line(
                            kind: "linear", mode: precision.rawValue, kernels: set?.description, threads: threads,
                            shape: [m, n, k],
                            seconds: fastest, gflops: 2 * Double(m * n * k) / fastest / 1e9,
                            gbps: Double(n * k * 2) / fastest / 1e9)))
            }
        }
    }

    struct Line: Encodable {
        let kind: String
        let mode: String?
        /// The CPU kernel set (nil for f32's OpenBLAS products and for the bandwidth probe).
        let kernels: String?
        let threads: Int
        let shape: [Int]?
        let seconds: Double?
        let gflops: Double?
        /// Weight bytes (as bf16) per second for products; bytes read per second for the bandwidth probe.
        let gbps: Double?
    }
}
