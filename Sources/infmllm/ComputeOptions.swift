// --device, --dtype and --threads, shared by `infer` and `worker`: the one place that builds the compute backend.

import ArgumentParser
import CPUBackend
import CUDABackend
import Compute
import Foundation
import Models

struct ComputeOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Where the model runs: cpu, cuda (the first GPU), cuda:N, or auto (a GPU when one is usable).",
            discussion: """
                cuda loads the NVIDIA driver, cuBLAS and NVRTC at start (no CUDA is needed to build or to run on \
                the CPU) and fails with the reason when one is missing. Its kernels are compiled for the GPU found on \
                first use and cached in $INFMLLM_CUDA_CACHE (default ~/.cache/infmllm/cuda). cuda runs f32 and bf16; \
                int8 is a CPU mode.
                """, valueName: "cpu|cuda[:N]|auto"))
    var device: String = "cpu"

    @Option(
        help: ArgumentHelp(
            "Compute mode: auto, f32 (exact, the reference), bf16 (fast) or int8 (faster still, half the memory).",
            discussion: """
                f32 computes as PyTorch does in f32: the generated ids match transformers' generate. bf16 holds the \
                weight matrices as bf16 (packed once at load), multiplies bf16 activations with f32 accumulation \
                and keeps the key/value cache in bf16. int8 quantises the weight matrices at load (one scale per \
                output and 64 inputs) and otherwise computes as bf16: decoding reads half the bytes, at some cost in \
                accuracy (see BENCHMARKS.md). auto (the default): bf16 for a checkpoint stored in bf16 or f16 where \
                the device has fast bf16 products (a GPU, or a CPU with AVX2 + FMA or better: see --kernels), f32 \
                otherwise; a checkpoint stored in f32 runs in f32.
                """, valueName: "auto|f32|bf16|int8"))
    var dtype: String?

    @Option(
        help: ArgumentHelp(
            "CPU kernels for bf16 and int8: auto, amx, avx512bf16, avx512, avx2vnni, avx2 or portable.",
            discussion: """
                auto: the best set this processor runs (between the two AVX-512 sets, the one measured faster here). \
                A set the processor lacks falls to the best one below it. Env INFMLLM_KERNELS. `infmllm doctor` and \
                the worker's first log line name the set in use and why.
                """, valueName: "set"))
    var kernels: String?

    @Option(help: ArgumentHelp("CPU threads for every kernel (default: all cores).", valueName: "n"))
    var threads: Int?

    @Option(
        help: ArgumentHelp(
            "Memory the model may use in all: weights, activations and key/value caches (e.g. 20G, 800M).",
            discussion: """
                Batches are cut to fit what is left after the weights; a request that cannot fit even alone fails \
                with the reason. Default: 90% of the machine's memory (or of a cgroup v2 memory.max limit). On a \
                GPU, where activations and key/value caches live, batches also fit in 90% of the GPU memory left \
                once the weights are there.
                """, valueName: "bytes"))
    var maxMemory: String?

    /// The parsed --device.
    enum Device: Equatable {
        case cpu, auto
        case cuda(Int)
    }

    var parsedDevice: Device? {
        switch device {
        case "cpu": return .cpu
        case "auto": return .auto
        case "cuda": return .cuda(0)
        default:
            guard device.hasPrefix("cuda:"), let ordinal = Int(device.dropFirst(5)), ordinal >= 0 else { return nil }
            return .cuda(ordinal)
        }
    }

    func validate() throws {
        if parsedDevice == nil { throw ValidationError("--device \(device): use cpu, cuda, cuda:N or auto") }
        if let maxMemory, Self.bytes(maxMemory) == nil {
            throw ValidationError("--max-memory \(maxMemory): give bytes, or a number with K, M, G or T")
        }
        if let dtype, dtype != "auto", ComputePrecision(rawValue: dtype) == nil {
            throw ValidationError("--dtype \(dtype): use auto, f32, bf16 or int8")
        }
        _ = try kernelLimit()
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// The mode for `directory`: the flag, else (auto) bf16 for a checkpoint stored in bf16 or f16 when `fastBF16`
    /// (the device multiplies bf16 fast), else f32.
    func resolvedPrecision(modelDirectory: String, fastBF16: Bool) throws -> ComputePrecision {
        if let dtype, let precision = ComputePrecision(rawValue: dtype) { return precision }
        let stored = try VisionLanguageModel.storedMatrixType(directory: modelDirectory)
        return (stored == .bf16 || stored == .f16) && fastBF16 ? .bf16 : .f32
    }

    /// The kernel set --kernels (or INFMLLM_KERNELS) limits the CPU to; nil for auto.
    func kernelLimit() throws -> KernelSet? {
        try Self.kernelLimit(named: Setting.kernels.resolve(kernels, environment: ProcessInfo.processInfo.environment))
    }

    /// The kernel set called `name` (auto: no limit).
    static func kernelLimit(named name: String) throws -> KernelSet? {
        guard let set = KernelSet.named(name) else {
            let names = ["auto"] + KernelSet.allCases.reversed().map(\.description)
            throw ValidationError("--kernels \(name): use " + names.joined(separator: ", "))
        }
        return set
    }

    /// "20G", "800M", "1.5G", "123456" as bytes.
    static func bytes(_ text: String) -> Int? {
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        var number = text.uppercased()
        if number.hasSuffix("B") { number.removeLast() }
        var scale = 1.0
        if let last = number.last, let unit = units[last] {
            scale = unit
            number.removeLast()
        }
        guard let value = Double(number), value.isFinite, value > 0, value * scale < 9e18 else { return nil }
        return Int(value * scale)
    }

    /// The machine's memory: the cgroup limit when one is set, else MemTotal.
    static func machineMemory() -> Int {
        var total = Int(ProcessInfo.processInfo.physicalMemory)
        if let text = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
            let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            total = min(total, limit)
        }
        return total
    }

    /// The budget for batches once `model` is loaded: --max-memory (or 90% of the machine) less the weights.
    func memoryBudget(for model: VisionLanguageModel) throws -> Int {
        let total = maxMemory.flatMap(Self.bytes) ?? Self.machineMemory() / 10 * 9
        let budget = total - model.weightBytes
        guard budget > 0 else {
            throw ValidationError(
                "the weights take \(byteCount(model.weightBytes)), more than the \(byteCount(total)) memory limit "
                    + "(--max-memory)")
        }
        // On a GPU the working memory is the GPU's: what the weights left free there bounds it too.
        if let gpu = model.backend as? CUDABackend, let memory = try? gpu.memoryInfo() {
            return min(budget, memory.free / 10 * 9)
        }
        return budget
    }

    /// The backend --device names; `auto` takes the first GPU when CUDA opens there and the mode runs on it.
    func backend(modelDirectory: String) throws -> any ComputeBackend {
        let threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        CPUBackend.useOpenBLASThreads(threads)
        let kernels = try kernelLimit()
        let cpuPrecision = try resolvedPrecision(
            modelDirectory: modelDirectory, fastBF16: KernelSet.chosen(limit: kernels).multipliesBF16Fast)
        switch parsedDevice ?? .cpu {
        case .cpu:
            return CPUBackend(precision: cpuPrecision, threads: threads, kernels: kernels)
        case .cuda(let ordinal):
            do {
                let precision = try resolvedPrecision(modelDirectory: modelDirectory, fastBF16: true)
                let gpu = try CUDABackend(precision: precision, ordinal: ordinal)
                try Self.checkFits(modelDirectory: modelDirectory, on: gpu)
                return gpu
            } catch {
                throw CUDAError("--device \(device): \(error)")
            }
        case .auto:
            do {
                let precision = try resolvedPrecision(modelDirectory: modelDirectory, fastBF16: true)
                let gpu = try CUDABackend(precision: precision)
                try Self.checkFits(modelDirectory: modelDirectory, on: gpu)
                return gpu
            } catch {
                FileHandle.standardError.write(Data("infmllm: --device auto runs on the CPU: \(error)\n".utf8))
                return CPUBackend(precision: cpuPrecision, threads: threads, kernels: kernels)
            }
        }
    }

    /// Throws, before anything is loaded, when the checkpoint's weight matrices in `gpu`'s mode need more than 95% of
    /// the GPU's free memory.
    static func checkFits(modelDirectory: String, on gpu: CUDABackend) throws {
        let bytes = try VisionLanguageModel.matrixElements(directory: modelDirectory) * (gpu.precision == .f32 ? 4 : 2)
        let free = try gpu.memoryInfo().free
        guard bytes <= free / 20 * 19 else {
            throw CUDAError(
                "the weights take \(byteCount(bytes)) in \(gpu.precision.rawValue) and \(gpu.device.name) has "
                    + "\(byteCount(free)) free: use --dtype bf16, a larger GPU or --device cpu")
        }
    }

    /// Throws when the model's weights did not all reach the backend's device (a GPU too small, say).
    func checkLoaded(_ backend: any ComputeBackend) throws {
        if let gpu = backend as? CUDABackend { try gpu.checkLoaded() }
    }

    /// "cpu bf16" or "cuda:0 bf16", as results and logs name where a task ran.
    static func deviceName(_ backend: any ComputeBackend) -> String {
        if let gpu = backend as? CUDABackend { return "cuda:\(gpu.device.ordinal) \(gpu.precision.rawValue)" }
        return "cpu \(backend.precision.rawValue)"
    }
}

/// Where LLaMA's settings and tokenizer are when the model directory lacks them (InfMLLM-7B's release).
struct LanguageOptions: ParsableArguments {
    @Option(
        name: .customLong("tokenizer"),
        help: ArgumentHelp(
            "A directory with LLaMA's config.json and tokenizer.model, for a model directory without them.",
            discussion: "InfMLLM-7B's repository reads them from lmsys/vicuna-7b-v1.5; give that directory here.",
            valueName: "dir"))
    var directory: String?
}
