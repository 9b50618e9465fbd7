// The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the data. Read through a memory map; every field is validated before use.

import Foundation

/// Reading and writing `.safetensors` files.
public enum Safetensors {
    /// The tensors of one file, mapped, not copied.
    public static func read(path: String) throws -> [String: WeightTensor] {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw TensorError.badHeader(file: path, reason: "\(bytes.count) bytes is too short")
        }
        let headerLength = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(bytes.count - 8), headerLength <= 100_000_000 else {
            throw TensorError.badHeader(file: path, reason: "header length \(headerLength) exceeds the file")
        }
        let dataStart = 8 + Int(headerLength)
        let headerData = Data(bytes[8..<dataStart])
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw TensorError.badHeader(file: path, reason: "the header is not a JSON object")
        }
        var tensors: [String: WeightTensor] = [:]
        for (name, value) in header where name != "__metadata__" {
            tensors[name] = try tensor(name, value, file: file, dataStart: dataStart)
        }
        return tensors
    }

    private static func tensor(_ name: String, _ value: Any, file: MappedFile, dataStart: Int) throws -> WeightTensor {
        let path = file.path
        guard let entry = value as? [String: Any] else {
            throw TensorError.badTensor(file: path, tensor: name, reason: "its header entry is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String, let dtype = DType(rawValue: dtypeName) else {
            throw TensorError.badTensor(
                file: path, tensor: name, reason: "dtype \(entry["dtype"] ?? "none") is not F32, F16 or BF16")
        }
        guard let shape = entry["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.badTensor(file: path, tensor: name, reason: "shape is not a list of sizes")
        }
        guard let offsets = entry["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0,
            offsets[0] <= offsets[1]
        else {
            throw TensorError.badTensor(file: path, tensor: name, reason: "data_offsets is not [begin, end]")
        }
        guard let count = WeightTensor.elementCount(of: shape, size: dtype.size) else {
            throw TensorError.badTensor(file: path, tensor: name, reason: "shape \(shape) is too large to address")
        }
        guard offsets[1] - offsets[0] == count * dtype.size else {
            throw TensorError.badTensor(
                file: path, tensor: name,
                reason: "\(offsets[1] - offsets[0]) bytes do not hold \(shape) \(dtype.rawValue) elements")
        }
        guard offsets[1] <= file.bytes.count - dataStart else {
            throw TensorError.badTensor(
                file: path, tensor: name, reason: "its data runs past the end of the file (truncated?)")
        }
        let base = file.bytes.baseAddress! + dataStart + offsets[0]
        if Int(bitPattern: base) % dtype.size != 0 {
            // Misaligned data (a header not padded to 8 bytes): copy so reads are aligned.
            let copy = OwnedBytes(count: count * dtype.size)
            copy.pointer.copyMemory(from: base, byteCount: count * dtype.size)
            return WeightTensor(
                name: name, shape: shape, dtype: dtype, base: UnsafeRawPointer(copy.pointer), owner: copy)
        }
        return WeightTensor(name: name, shape: shape, dtype: dtype, base: base, owner: file)
    }

    /// A tensor to write: its name, shape and stored type.
    public struct Header: Sendable {
        public var name: String
        public var shape: [Int]
        public var dtype: DType

        public init(name: String, shape: [Int], dtype: DType) {
            self.name = name
            self.shape = shape
            self.dtype = dtype
        }

        var count: Int { shape.reduce(1, *) }
    }

    /// Writes one safetensors file, asking `values` for each tensor's elements in turn so that only one tensor
    /// is in memory at a time. The header is padded to 8 bytes, as the reference writer does.
    public static func write(
        _ headers: [Header], to path: String, metadata: [String: String] = ["format": "pt"],
        values: (Int) throws -> [Float]
    ) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for entry in headers {
            let size = entry.count * entry.dtype.size
            header[entry.name] = [
                "dtype": entry.dtype.rawValue, "shape": entry.shape, "data_offsets": [offset, offset + size],
            ]
            offset += size
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw TensorError.unreadable(file: path, reason: "cannot create the file") }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) })
            try handle.write(contentsOf: json)
            for (index, entry) in headers.enumerated() {
                let data = try values(index)
                precondition(data.count == entry.count, "\(entry.name): \(data.count) values for shape \(entry.shape)")
                try handle.write(contentsOf: entry.dtype.encode(data))
            }
        } catch let error as TensorError {
            throw error
        } catch {
            throw TensorError.unreadable(file: path, reason: "write failed: \(error)")
        }
    }
}
