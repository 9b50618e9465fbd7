// --dtype and --threads, shared by `infer` and `worker`: the one place that builds the compute backend.

import ArgumentParser
import CPUBackend
import Compute
import Foundation
import Models

struct ComputeOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Compute mode: f32 (exact, the reference) or bf16 (fast).",
            discussion: """
                f32 computes as PyTorch does in f32: the generated ids match transformers' generate. bf16 holds the \
                weight matrices as bf16 (packed once at load), multiplies bf16 activations with f32 accumulation \
                (AVX-512 BF16 where the CPU has it, portable code elsewhere) and keeps the key/value cache in bf16. \
                Default: bf16 for checkpoints stored in bf16, f32 otherwise.
                """, valueName: "f32|bf16"))
    var dtype: String?

    @Option(help: ArgumentHelp("CPU threads for every kernel (default: all cores).", valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let dtype, ComputePrecision(rawValue: dtype) == nil {
            throw ValidationError("--dtype \(dtype): use f32 or bf16")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// The mode for `directory`: the flag, else bf16 for a bf16 checkpoint, else f32.
    func resolvedPrecision(modelDirectory: String) throws -> ComputePrecision {
        if let dtype, let precision = ComputePrecision(rawValue: dtype) { return precision }
        return try VisionLanguageModel.storedMatrixType(directory: modelDirectory) == .bf16 ? .bf16 : .f32
    }

    func backend(modelDirectory: String) throws -> CPUBackend {
        CPUBackend(
            precision: try resolvedPrecision(modelDirectory: modelDirectory),
            threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }
}
