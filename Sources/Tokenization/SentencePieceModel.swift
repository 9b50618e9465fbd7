// A SentencePiece `tokenizer.model`: the ModelProto's pieces and the trainer and normalizer settings that
// encoding depends on. Field numbers follow sentencepiece_model.proto.

import Foundation

/// The contents of a SentencePiece model file that matter for encoding and decoding.
public struct SentencePieceModel: Sendable {
    /// What a piece is for; raw values are the proto's `SentencePiece.Type`.
    public enum PieceKind: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public struct Piece: Sendable, Equatable {
        public var text: String
        public var score: Float
        public var kind: PieceKind
    }

    public enum ModelType: Int, Sendable {
        case unigram = 1, bpe = 2, word = 3, character = 4
    }

    public var pieces: [Piece] = []
    public var modelType: ModelType = .unigram
    public var byteFallback = false
    public var treatWhitespaceAsSuffix = false
    public var unknownID = 0
    public var bosID = 1
    public var eosID = 2
    public var padID = -1
    /// What decoding shows for the unknown piece (the proto's default is " ⁇ ").
    public var unknownSurface = " \u{2047} "
    public var normalizerName = "nmt_nfkc"
    public var hasPrecompiledCharsmap = false
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    /// Reads a `tokenizer.model` file.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or not readable")
        }
        try self.init(bytes: [UInt8](data), path: path)
    }

    /// Parses ModelProto bytes; `path` names the source in errors.
    public init(bytes: [UInt8], path: String = "<memory>") throws {
        do {
            var reader = ProtobufReader(bytes)
            while !reader.isAtEnd {
                let (number, wireType) = try reader.nextField()
                switch (number, wireType) {
                case (1, .lengthDelimited): pieces.append(try Self.piece(try reader.message()))
                case (2, .lengthDelimited): try readTrainerSpec(try reader.message())
                case (3, .lengthDelimited): try readNormalizerSpec(try reader.message())
                default: try reader.skip(wireType)
                }
            }
        } catch let failure as ProtobufReader.Failure {
            throw TokenizerError.malformed(path: path, reason: failure.reason)
        }
        guard !pieces.isEmpty else { throw TokenizerError.malformed(path: path, reason: "the model has no pieces") }
        for (name, id) in [("unk_id", unknownID), ("bos_id", bosID), ("eos_id", eosID)]
        where id < 0 || id >= pieces.count {
            throw TokenizerError.malformed(path: path, reason: "\(name) \(id) is outside the \(pieces.count) pieces")
        }
    }

    private static func piece(_ message: ProtobufReader) throws -> Piece {
        var reader = message
        var piece = Piece(text: "", score: 0, kind: .normal)
        while !reader.isAtEnd {
            let (number, wireType) = try reader.nextField()
            switch (number, wireType) {
            case (1, .lengthDelimited): piece.text = try reader.string()
            case (2, .fixed32): piece.score = try reader.float()
            case (3, .varint):
                // An enum: a negative value comes as ten bytes, the 64-bit two's complement.
                let raw = Int(Int64(bitPattern: try reader.varint()))
                guard let kind = PieceKind(rawValue: raw) else {
                    throw ProtobufReader.Failure(reason: "piece \"\(piece.text)\" has unknown type \(raw)")
                }
                piece.kind = kind
            default: try reader.skip(wireType)
            }
        }
        return piece
    }

    private mutating func readTrainerSpec(_ message: ProtobufReader) throws {
        var reader = message
        while !reader.isAtEnd {
            let (number, wireType) = try reader.nextField()
            switch (number, wireType) {
            case (3, .varint):
                let raw = Int(Int64(bitPattern: try reader.varint()))
                guard let type = ModelType(rawValue: raw) else {
                    throw ProtobufReader.Failure(reason: "unknown model_type \(raw)")
                }
                modelType = type
            case (24, .varint): treatWhitespaceAsSuffix = try reader.varint() != 0
            case (35, .varint): byteFallback = try reader.varint() != 0
            case (40, .varint): unknownID = Int(Int32(truncatingIfNeeded: try reader.varint()))
            case (41, .varint): bosID = Int(Int32(truncatingIfNeeded: try reader.varint()))
            case (42, .varint): eosID = Int(Int32(truncatingIfNeeded: try reader.varint()))
            case (43, .varint): padID = Int(Int32(truncatingIfNeeded: try reader.varint()))
            case (44, .lengthDelimited): unknownSurface = try reader.string()
            default: try reader.skip(wireType)
            }
        }
    }

    private mutating func readNormalizerSpec(_ message: ProtobufReader) throws {
        var reader = message
        while !reader.isAtEnd {
            let (number, wireType) = try reader.nextField()
            switch (number, wireType) {
            case (1, .lengthDelimited): normalizerName = try reader.string()
            case (2, .lengthDelimited): hasPrecompiledCharsmap = !(try reader.data().isEmpty)
            case (3, .varint): addDummyPrefix = try reader.varint() != 0
            case (4, .varint): removeExtraWhitespaces = try reader.varint() != 0
            case (5, .varint): escapeWhitespaces = try reader.varint() != 0
            default: try reader.skip(wireType)
            }
        }
    }
}
