// The CPU kernel sets (CKernels), by name: which one this processor runs best, the one in use and why, and the
// process-wide limit that `--kernels` sets.

import CKernels

/// A set of CPU kernels for the bf16 and int8 products, the softmax and the packing, chosen at run time.
public enum KernelSet: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx2VNNI = 2
    case avx512BF16 = 3

    /// The name `--kernels` takes and logs show: portable, avx2, avx2vnni, avx512bf16.
    public var description: String { String(cString: ck_kernels_name(rawValue)) }

    /// The instructions the set's products use.
    public var instructions: String {
        switch self {
        case .portable: return "plain C"
        case .avx2: return "AVX2 + FMA: bf16 widened to f32 in registers; int8 through vpmaddubsw"
        case .avx2VNNI: return "AVX2 + FMA, AVX-VNNI for int8"
        case .avx512BF16: return "AVX-512 BF16 and VNNI"
        }
    }

    /// Whether this processor (and its operating system) runs the set.
    public var isRunnable: Bool { ck_runs_kernels(rawValue) != 0 }

    /// The best set this processor runs.
    public static var best: KernelSet { KernelSet(rawValue: ck_best_kernels()) ?? .portable }

    /// The set the products run with now: the best one at or below the limit.
    public static var current: KernelSet { KernelSet(rawValue: ck_kernels()) ?? .portable }

    /// Whether the bf16 and int8 modes have fast kernels here (any set but the portable one, which runs several times
    /// slower than the f32 mode's OpenBLAS).
    public static var hasFastProducts: Bool { current != .portable }

    /// The set named `name` (`auto`: no limit).
    public static func named(_ name: String) -> KernelSet?? {
        if name == "auto" { return .some(nil) }
        guard let set = allCases.first(where: { $0.description == name }) else { return nil }
        return .some(set)
    }

    /// Every thread uses the best runnable set at or below `set` from now on (nil: the best there is). Set once, at
    /// start, before any product runs.
    public static func limit(to set: KernelSet?) {
        ck_limit_kernels(set?.rawValue ?? -1)
    }

    /// The set in use and why: "avx2 (AVX2 + FMA: ...; this processor has no AVX-512 BF16)".
    public static var explanation: String {
        let current = current, best = best
        var reasons: [String] = []
        if current != best {
            reasons.append("limited by --kernels; the processor runs \(best)")
        } else {
            let missing = allCases.filter { $0.rawValue > current.rawValue && !$0.isRunnable }
            if !missing.isEmpty {
                reasons.append("this processor lacks " + missing.map { $0.instructionsName }.joined(separator: " and "))
            }
        }
        return "\(current) (\(current.instructions)" + (reasons.isEmpty ? ")" : "; \(reasons.joined(separator: "; ")))")
    }

    /// The instructions a set needs beyond the one below it, for saying what a processor lacks.
    private var instructionsName: String {
        switch self {
        case .portable: return "nothing"
        case .avx2: return "AVX2, FMA or F16C"
        case .avx2VNNI: return "AVX-VNNI"
        case .avx512BF16: return "AVX-512 BF16"
        }
    }
}
