// The CPU kernel sets (CKernels), by name: which one this processor runs best, and which one a backend limited by
// `--kernels` uses, and why.

import CKernels

/// A set of CPU kernels for the bf16 and int8 products, the softmax and the packing, chosen at run time.
public enum KernelSet: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx2VNNI = 2
    case avx512 = 3
    case avx512BF16 = 4
    case amx = 5

    /// The name `--kernels` takes and logs show: portable, avx2, avx2vnni, avx512, avx512bf16, amx.
    public var description: String { String(cString: ck_kernels_name(rawValue)) }

    /// The instructions the set's products use.
    public var instructions: String {
        switch self {
        case .portable: return "plain C"
        case .avx2: return "AVX2 + FMA: bf16 widened to f32 in registers; int8 through vpmaddubsw"
        case .avx2VNNI: return "AVX2 + FMA, AVX-VNNI for int8"
        case .avx512: return "AVX-512: bf16 widened to f32 in registers, 512-bit FMA; int8 through VNNI"
        case .avx512BF16: return "AVX-512 BF16 and VNNI"
        case .amx: return "AMX tiles: TDPBF16PS for bf16, TDPBSSD for int8 from 16 rows"
        }
    }

    /// Whether the set's bf16 products beat the f32 mode's OpenBLAS (every set but the portable one, which runs
    /// several times slower): what `--dtype auto` goes by.
    public var multipliesBF16Fast: Bool { self != .portable }

    /// Whether this processor (and its operating system) runs the set.
    public var isRunnable: Bool { ck_runs_kernels(rawValue) != 0 }

    /// The best set this processor runs (AMX where it runs; else, where both AVX-512 sets run, the one measured faster
    /// for bf16 products).
    public static var best: KernelSet { KernelSet(rawValue: ck_best_kernels()) ?? .portable }

    /// The set products run with under `limit`: the best runnable one at or below it (nil: `best`).
    public static func chosen(limit: KernelSet?) -> KernelSet {
        guard let limit else { return best }
        return allCases.reversed().first { $0.rawValue <= limit.rawValue && $0.isRunnable } ?? .portable
    }

    /// The set named `name` (`auto`: no limit, `.some(nil)`); nil when there is none of that name.
    public static func named(_ name: String) -> KernelSet?? {
        if name == "auto" { return .some(nil) }
        guard let set = allCases.first(where: { $0.description == name }) else { return nil }
        return .some(set)
    }

    /// The set chosen under `limit` and why: "avx2 (AVX2 + FMA: ...; this processor lacks AVX-512 BF16)", or "(...;
    /// set by --kernels, where auto runs avx512)".
    public static func explanation(limit: KernelSet?) -> String {
        let current = chosen(limit: limit), best = best
        var reason = ""
        if current != best {
            reason = "; set by --kernels, where auto runs \(best)"
        } else if current == .avx512 && avx512BF16.isRunnable {
            reason = "; its 512-bit FMA measured faster here than vdpbf16ps"
        } else {
            let missing = allCases.filter { $0.rawValue > current.rawValue && !$0.isRunnable }
            if !missing.isEmpty { reason = "; this processor lacks " + missing.map(\.needs).joined(separator: " and ") }
        }
        return "\(current) (\(current.instructions)\(reason))"
    }

    /// The instructions a set needs beyond the one below it, for saying what a processor lacks.
    private var needs: String {
        switch self {
        case .portable: return "nothing"
        case .avx2: return "AVX2, FMA or F16C"
        case .avx2VNNI: return "AVX-VNNI"
        case .avx512: return "AVX-512 with VNNI"
        case .avx512BF16: return "AVX-512 BF16"
        case .amx: return "AMX (or the operating system's permission for tile data)"
        }
    }
}
