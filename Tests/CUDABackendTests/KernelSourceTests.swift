// Every kernel of the CUDA backend compiles with NVRTC, here without a GPU: PTX for Ampere and Hopper and a Hopper
// cubin, each naming every kernel the backend looks up. NVRTC comes from pip's nvidia-cuda-nvrtc: ops/test.sh fetches
// it (tools/nvrtc.sh), names it in INFMLLM_NVRTC_LIBRARY and sets INFMLLM_REQUIRE_NVRTC=1, so the suite fails rather
// than skips without it.

import CUDABackend
import Foundation
import TestSupport
import Testing

enum NVRTC {
    static let version = Result { try KernelCompiler.nvrtcVersion() }
    static var required: Bool { ProcessInfo.processInfo.environment["INFMLLM_REQUIRE_NVRTC"] == "1" }
    static var runs: Bool { required || (try? version.get()) != nil }
}

@Suite(.enabled(if: NVRTC.runs, "needs NVRTC: INFMLLM_NVRTC_LIBRARY=$(tools/nvrtc.sh)"))
struct KernelSourceTests {
    @Test(arguments: ["compute_80", "compute_90"])
    func everyKernelCompilesToPTX(_ architecture: String) throws {
        _ = try NVRTC.version.get()
        let image = try KernelCompiler.compile(architecture: architecture)
        let ptx = String(decoding: image.bytes.dropLast(), as: UTF8.self)
        #expect(ptx.contains(".target sm_\(architecture.dropFirst("compute_".count))"))
        for name in KernelCompiler.kernelNames {
            #expect(ptx.contains(".entry \(name)("), "no entry point \(name) in the PTX")
        }
        #expect(image.log.isEmpty || !image.log.contains("warning"), "NVRTC warns: \(image.log)")
    }

    @Test func aHopperCubinIsBuiltAndCached() throws {
        _ = try NVRTC.version.get()
        let cache = ScratchFolders.url("infmllm-cuda")
        defer { try? FileManager.default.removeItem(at: cache) }
        let first = try KernelCompiler.image(major: 9, minor: 0, cacheDirectory: cache)
        #expect(!first.cached && first.architecture == "sm_90")
        #expect(first.bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "a cubin is an ELF file")
        let second = try KernelCompiler.image(major: 9, minor: 0, cacheDirectory: cache)
        #expect(second.cached && second.bytes == first.bytes)
    }

    @Test func aGPUOlderThanNVRTCsTargetsIsRefusedWithTheReason() throws {
        _ = try NVRTC.version.get()
        #expect {
            try KernelCompiler.image(major: 3, minor: 0, cacheDirectory: nil)
        } throws: { error in
            "\(error)".contains("cannot build for this GPU (sm_30)")
        }
    }

    @Test func aCompileErrorCarriesNVRTCsLog() throws {
        _ = try NVRTC.version.get()
        #expect {
            try KernelCompiler.compile(
                "extern \"C\" __global__ void k() { undefined_name(); }", architecture: "compute_80")
        } throws: { error in
            "\(error)".contains("undefined_name")
        }
    }
}
