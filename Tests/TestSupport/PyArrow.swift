// pyarrow, the Parquet reader under pandas and Hugging Face datasets, as the independent reader of the Parquet files
// this project writes. ops/test.sh installs it (tools/pyarrow.sh), names its Python in INFMLLM_PARQUET_PYTHON and sets
// INFMLLM_REQUIRE_PARQUET=1, so the suites that read with it fail rather than skip without it.

import Foundation

public enum PyArrow {
    public static var python: String? { ProcessInfo.processInfo.environment["INFMLLM_PARQUET_PYTHON"] }
    /// Whether the suites that read Parquet files run: pyarrow is named, or required.
    public static var runs: Bool {
        ProcessInfo.processInfo.environment["INFMLLM_REQUIRE_PARQUET"] == "1" || python != nil
    }

    /// What pyarrow reads from `file`: `tools/reference/parquet_read.py`'s report (each column's Arrow type and
    /// nullability, the row groups' row counts, the created-by string, the rows).
    public static func read(_ file: URL) throws -> [String: Any] {
        guard let python else { throw PyArrowError(description: "INFMLLM_PARQUET_PYTHON is not set") }
        let report = file.appendingPathExtension("json")
        defer { try? FileManager.default.removeItem(at: report) }
        let result = try ProcessResult.run(
            URL(fileURLWithPath: python),
            [RepositoryFiles.path("tools/reference/parquet_read.py"), file.path, report.path])
        guard result.status == 0 else { throw PyArrowError(description: "pyarrow could not read it: \(result.output)") }
        guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any] else {
            throw PyArrowError(description: "the report of \(file.path) is not a JSON object")
        }
        return object
    }
}

public struct PyArrowError: Error, CustomStringConvertible {
    public let description: String
}
