// The whole model on the CUDA backend against the same transformers references as the CPU: in f32, activations
// within 1e-4 and generated ids identical (greedy and beam); in bf16, prefill logits within the CPU bf16 mode's
// bounds. They run where an NVIDIA GPU and its driver are present and are skipped elsewhere.

import CUDABackend
import Compute
import Generation
import Models
import Testing

enum GPUFixtures {
    static let f32 = Result { try CUDABackend(precision: .f32) }
    static let bf16 = Result { try CUDABackend(precision: .bf16) }
    static var available: Bool { (try? f32.get()) != nil }
}

@Suite(.enabled(if: GPUFixtures.available, "needs an NVIDIA GPU, its driver, NVRTC and cuBLAS"))
struct CUDAGoldenTests {
    @Test(arguments: EngineGoldenTests.variants.filter { $0.0 != "multitask-sharded" })
    func f32ActivationsMatchTransformers(_ directory: String, _ variant: String) throws {
        try EngineGoldenTests.checkActivations(directory, variant, backend: GPUFixtures.f32.get())
    }

    @Test(arguments: EngineGoldenTests.variants.filter { $0.0 != "multitask-sharded" })
    func f32GeneratedIDsMatchTransformers(_ directory: String, _ variant: String) throws {
        let mismatches = try EngineGoldenTests.generationMismatches(
            directory, variant, backend: GPUFixtures.f32.get())
        #expect(mismatches.isEmpty, "\(mismatches.count) differ: \(mismatches.prefix(4))")
    }

    @Test func bf16PrefillLogitsStayWithinTheCPUBF16Bounds() throws {
        let model = try VisionLanguageModel(
            directory: EngineFixtures.modelDirectory("multitask"), backend: GPUFixtures.bf16.get())
        let ours = try FastModeTests.prefillLogits(model)
        let cpu = try FastModeTests.prefillLogits(
            VisionLanguageModel(directory: EngineFixtures.modelDirectory("multitask"), backend: EngineFixtures.bf16))
        let f32 = EngineFixtures.cases.multitask.prefill_logits
        for row in ours.indices {
            // The same bounds as the CPU's bf16 mode (FastModeTests), and close to that mode itself.
            let againstF32 = EngineFixtures.relativeError(ours[row], f32[row])
            let againstTorch = EngineFixtures.relativeError(ours[row], BF16Reference.loaded.prefill_logits[row])
            let againstCPU = EngineFixtures.relativeError(ours[row], cpu[row])
            #expect(againstF32 <= 0.05, "row \(row): \(againstF32) from f32")
            #expect(againstTorch <= 0.05, "row \(row): \(againstTorch) from PyTorch bf16")
            #expect(againstCPU <= 0.05, "row \(row): \(againstCPU) from the CPU bf16 mode")
            let argmax = ours[row].indices.max { ours[row][$0] < ours[row][$1] }!
            #expect(argmax == BF16Reference.loaded.f32_prefill_argmax[row], "row \(row): most likely token")
        }
    }
}
