// Why a Parquet file could not be written or read.

/// A value that does not fit the file's columns (writing), or a file that cannot be read, with the reason.
public struct ParquetError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) { self.description = description }
}
