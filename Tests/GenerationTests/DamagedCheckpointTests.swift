// Checkpoint and tokenizer files whose headers claim what cannot be: sizes that overflow, offsets past any storage,
// another byte order, settings of the wrong kind. Each is refused with the file and the reason; none traps.

import Foundation
import Models
import Tensors
import TestSupport
import Testing
import Tokenization

@Suite struct DamagedCheckpointTests {
    static func scratch(_ name: String) throws -> String {
        let folder = ScratchFolders.url("infmllm-damaged")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent(name).path
    }

    /// A safetensors file: the header's length, the header, then `data` bytes.
    static func safetensors(_ header: String, data: Int = 16) throws -> String {
        let path = try scratch("model.safetensors")
        let json = Array(header.utf8)
        var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json
        bytes += [UInt8](repeating: 0, count: data)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: [
        #"{"w":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,4]}}"#,
        #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775803,9223372036854775807]}}"#,
        #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#,
    ])
    func safetensorsSizesThatOverflowAreRefused(_ header: String) throws {
        let path = try Self.safetensors(header)
        #expect { try Safetensors.read(path: path) } throws: { error in
            guard case let .badTensor(file, tensor, _) = error as? TensorError else { return false }
            return file == path && tensor == "w"
        }
    }

    /// A torch.save archive whose one tensor, `w`, is rebuilt from a storage of four floats with `offset` and
    /// `sizes` (each a LONG1 integer) and contiguous strides.
    static func pickled(offset: Int, sizes: [Int], byteorder: String? = nil) throws -> String {
        func text(_ value: String) -> [UInt8] {
            [0x58] + withUnsafeBytes(of: UInt32(value.utf8.count).littleEndian) { Array($0) } + Array(value.utf8)
        }
        func long(_ value: Int) -> [UInt8] { [0x8A, 8] + withUnsafeBytes(of: Int64(value).littleEndian) { Array($0) } }
        var strides = [Int](repeating: 1, count: sizes.count)
        for index in stride(from: sizes.count - 2, through: 0, by: -1) {
            strides[index] = strides[index + 1] &* sizes[index + 1]
        }
        var pickle: [UInt8] = [0x80, 0x02, 0x7D] + text("w") + Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8)
        pickle += [0x28, 0x28] + text("storage") + Array("ctorch\nFloatStorage\n".utf8) + text("0") + text("cpu")
        pickle += [0x4B, 4, 0x74, 0x51] + long(offset)
        pickle += [0x28] + sizes.flatMap(long) + [0x74] + [0x28] + strides.flatMap(long) + [0x74]
        pickle += [0x89] + Array("ccollections\nOrderedDict\n".utf8) + [0x29, 0x52, 0x74, 0x52, 0x73, 0x2E]
        var entries = ["archive/data.pkl": pickle, "archive/data/0": [UInt8](repeating: 0, count: 16)]
        if let byteorder { entries["archive/byteorder"] = Array(byteorder.utf8) }
        let path = try scratch("pytorch_model.bin")
        try StoredZip.bytes(entries).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aPickledTensorWithinItsStorageLoads() throws {
        let tensors = try PickledCheckpoint.read(path: try Self.pickled(offset: 1, sizes: [3], byteorder: "little"))
        #expect(tensors["w"]?.shape == [3])
    }

    /// Offsets and sizes, and what refuses them (nil: a tensor with no element, which loads).
    static let pickledCases: [(offset: Int, sizes: [Int], reason: String?)] = [
        (0, [1 << 32, 1 << 32], "too large"), (1 << 62, [2], "past its storage"),
        (0, [2, 1 << 32, 1 << 32], "too large"), (0, [0, 1 << 32, 1 << 32, 1 << 32], nil),
    ]

    @Test(arguments: pickledCases)
    func pickledSizesAndOffsetsThatOverflowAreRefused(_ offset: Int, _ sizes: [Int], _ reason: String?) throws {
        let path = try Self.pickled(offset: offset, sizes: sizes)
        guard let reason else {
            #expect(try PickledCheckpoint.read(path: path)["w"]?.count == 0, "no elements: loads, empty")
            return
        }
        #expect { try PickledCheckpoint.read(path: path) } throws: { "\($0)".contains(reason) }
    }

    @Test func aCheckpointSavedOnABigEndianMachineIsRefused() throws {
        let path = try Self.pickled(offset: 0, sizes: [4], byteorder: "big")
        #expect { try PickledCheckpoint.read(path: path) } throws: { "\($0)".contains("big-endian") }
    }

    /// A Hugging Face config.json whose `infmllm_vision` is not an object, or whose sizes are negative.
    @Test(arguments: [("null", "not an object"), ("3", "not an object")])
    func visionSettingsOfTheWrongKindAreRefused(_ value: String, _ reason: String) throws {
        let directory = try HuggingFaceDirectoryTests.multitaskRelease()
        let path = directory.model + "/config.json"
        var config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        config["infmllm_vision"] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        #expect {
            try ModelConfiguration.load(directory: directory.model, languageDirectory: directory.vicuna)
        } throws: { "\($0)".contains(reason) && "\($0)".contains("config.json") }
    }

    @Test func negativeLayerCountsAreRefused() throws {
        let directory = try HuggingFaceDirectoryTests.multitaskRelease()
        let path = directory.vicuna + "/config.json"
        var config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        config["num_hidden_layers"] = -1
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        #expect {
            try ModelConfiguration.load(directory: directory.model, languageDirectory: directory.vicuna)
        } throws: { "\($0)".contains("layer counts must not be negative") }
    }

    /// A piece whose type is a negative enum (ten varint bytes) is refused as an unknown type, not trapped on.
    @Test func aTokenizerPieceOfNegativeTypeIsRefused() {
        // ModelProto field 1 (a piece): its text "a", its score, and type -1.
        let piece: [UInt8] = [0x0A, 1, 0x61, 0x15, 0, 0, 0, 0, 0x18] + [UInt8](repeating: 0xFF, count: 9) + [0x01]
        let model: [UInt8] = [0x0A, UInt8(piece.count)] + piece
        #expect { try SentencePieceModel(bytes: model, path: "negative.model") } throws: { "\($0)".contains("type -1") }
    }
}
