// Peak memory of a process as the kernel counts it, for tests that bound what a piece of work may take.

import Foundation

public enum ProcessMemory {
    /// The peak resident set (VmHWM) of `process` (this one by default), in kilobytes; 0 when it cannot be read.
    public static func peakResidentKilobytes(of process: Int32? = nil) -> Int {
        let path = "/proc/\(process.map(String.init) ?? "self")/status"
        let status = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
