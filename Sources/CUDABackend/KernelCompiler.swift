// NVRTC compiles the kernels for the GPU found, once: the image is cached on disk, keyed by the source, the target,
// NVRTC's version and the compile options, so later starts load it without compiling.

import CCUDA
import Foundation

/// Compiles `CUDAKernelSource` with NVRTC.
public enum KernelCompiler {
    /// What one compilation produced.
    public struct Image: Sendable {
        /// A cubin, or PTX text with a terminating NUL.
        public let bytes: [UInt8]
        public let architecture: String
        /// NVRTC's warnings, if any.
        public let log: String
        public let cached: Bool
    }

    /// The kernels every image must hold.
    public static let kernelNames = CUDAKernelSource.names

    /// NVRTC's version as "major.minor", opening it if need be.
    public static func nvrtcVersion() throws -> String {
        try CUDAError.check { ccuda_open_nvrtc($0, $1) }
        var major: Int32 = 0, minor: Int32 = 0
        ccuda_nvrtc_version(&major, &minor)
        return "\(major).\(minor)"
    }

    /// Compiles `source` for `architecture`: "sm_90" gives a cubin, "compute_90" PTX.
    public static func compile(_ source: String = CUDAKernelSource.text, architecture: String) throws -> Image {
        try CUDAError.check { ccuda_open_nvrtc($0, $1) }
        let cubin = architecture.hasPrefix("sm_")
        var image: UnsafeMutableRawPointer?
        var size = 0
        var log: UnsafeMutablePointer<CChar>?
        defer {
            free(image)
            free(log)
        }
        do {
            try CUDAError.check { error, length in
                ccuda_nvrtc_compile(
                    source, "infmllm_kernels.cu", architecture, cubin ? 1 : 0, &image, &size, &log, error, length)
            }
        } catch let error as CUDAError {
            let details = log.map { String(cString: $0) } ?? ""
            throw CUDAError(details.isEmpty ? error.description : "\(error.description)\n\(details)")
        }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: image, count: size))
        return Image(
            bytes: cubin ? bytes : bytes.last == 0 ? bytes : bytes + [0], architecture: architecture,
            log: log.map { String(cString: $0) } ?? "", cached: false)
    }

    /// Part of the cache key: raise it when the options `ccuda_nvrtc_compile` passes to NVRTC change.
    static let optionsVersion = 1

    /// The kernels for a GPU of compute capability `major.minor`: from the cache when an earlier start compiled them,
    /// else compiled (a cubin for the exact architecture, or PTX for the newest NVRTC knows when the GPU is newer)
    /// and cached.
    ///
    /// - Parameter refresh: compile even when the cache holds an image (one the driver refused, say) and replace it.
    public static func image(major: Int, minor: Int, cacheDirectory: URL?, refresh: Bool = false) throws -> Image {
        let version = try nvrtcVersion()
        let wanted = major * 10 + minor
        let newest = Int(ccuda_nvrtc_newest_arch()), oldest = Int(ccuda_nvrtc_oldest_arch())
        guard oldest == 0 || wanted >= oldest else {
            throw CUDAError(
                "NVRTC \(version) cannot build for this GPU (sm_\(wanted)); its oldest target is sm_\(oldest): "
                    + "use an older CUDA's NVRTC (INFMLLM_NVRTC_LIBRARY)")
        }
        let architecture = newest == 0 || wanted <= newest ? "sm_\(wanted)" : "compute_\(newest)"
        let key = fnv1a("\(CUDAKernelSource.text)\u{0}\(architecture)\u{0}\(version)\u{0}\(optionsVersion)")
        let file = cacheDirectory?.appendingPathComponent(
            String(
                format: "kernels-%@-nvrtc%@-%016llx.%@", architecture, version, key,
                architecture.hasPrefix("sm_") ? "cubin" : "ptx"))
        if !refresh, let file, let data = try? Data(contentsOf: file), !data.isEmpty {
            return Image(bytes: [UInt8](data), architecture: architecture, log: "", cached: true)
        }
        let image = try compile(architecture: architecture)
        if let file, let directory = cacheDirectory {
            // A cache that cannot be written costs a compile at the next start, nothing more.
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let temporary = directory.appendingPathComponent(".\(file.lastPathComponent).\(getpid())")
            if (try? Data(image.bytes).write(to: temporary)) != nil {
                _ = rename(temporary.path, file.path)
            }
        }
        return image
    }

    /// $INFMLLM_CUDA_CACHE, else $XDG_CACHE_HOME/infmllm/cuda, else ~/.cache/infmllm/cuda.
    public static func defaultCacheDirectory() -> URL {
        let environment = ProcessInfo.processInfo.environment
        if let chosen = environment["INFMLLM_CUDA_CACHE"], !chosen.isEmpty { return URL(fileURLWithPath: chosen) }
        let base =
            environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache").path
        return URL(fileURLWithPath: base).appendingPathComponent("infmllm/cuda")
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
