// pyarrow (the Parquet reader under pandas and Hugging Face datasets) and DuckDB, the independent readers of the
// Parquet files this project writes. ops/test.sh installs them (tools/parquet_readers.sh), names their Python in
// INFMLLM_PARQUET_PYTHON and sets INFMLLM_REQUIRE_PARQUET=1, so the suites that read with them fail rather than skip
// without them.

import Foundation

public enum ParquetReaders {
    public static var python: String? { ProcessInfo.processInfo.environment["INFMLLM_PARQUET_PYTHON"] }
    /// Whether the suites that read Parquet files run: pyarrow is named, or required.
    public static var runs: Bool {
        ProcessInfo.processInfo.environment["INFMLLM_REQUIRE_PARQUET"] == "1" || python != nil
    }

    /// What the readers find in `file`: `tools/reference/parquet_read.py`'s report (each column's Arrow type and
    /// nullability, the row groups' row counts and statistics, the created-by string, pyarrow's rows and each
    /// double's repr, whether DuckDB read the same rows, whether the chunks' sizes add up to the file's).
    public static func read(_ file: URL) throws -> [String: Any] {
        guard let python else { throw ParquetReadError(description: "INFMLLM_PARQUET_PYTHON is not set") }
        let report = file.appendingPathExtension("json")
        defer { try? FileManager.default.removeItem(at: report) }
        let result = try ProcessResult.run(
            URL(fileURLWithPath: python),
            [RepositoryFiles.path("tools/reference/parquet_read.py"), file.path, report.path])
        guard result.status == 0 else {
            throw ParquetReadError(description: "the readers could not read it: \(result.output)")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any] else {
            throw ParquetReadError(description: "the report of \(file.path) is not a JSON object")
        }
        return object
    }
}

public struct ParquetReadError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) { self.description = description }
}
