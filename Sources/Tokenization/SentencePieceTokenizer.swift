// SentencePiece BPE encoding and decoding, id for id as Python `sentencepiece` does it, for models with the
// identity normalizer (LLaMA's): whitespace escaping, dummy prefix, score-ordered merges, byte fallback.
// Mirrors sentencepiece's bpe_model.cc (Encode) and sentencepiece_processor.cc (Encode, Decode).

/// A SentencePiece BPE tokenizer.
///
/// Immutable and `Sendable`: one instance serves every thread.
public struct SentencePieceTokenizer: Sendable {
    public let model: SentencePieceModel
    /// Pieces that merges may produce: normal, user-defined and unused ones (bpe_model's `pieces_`).
    let mergeable: PieceTable
    /// Every piece, for turning final symbols into ids.
    let all: PieceTable
    /// Ids of `<0x00>` ... `<0xFF>`, or the unknown id where a byte piece is missing.
    let byteIDs: [Int]
    /// The byte each id stands for when it is a byte piece, else -1.
    let byteValue: [Int16]
    /// User-defined pieces, longest first, matched whole and never merged further.
    let userDefined: [[UInt8]]
    let scores: [Float]
    let kinds: [SentencePieceModel.PieceKind]

    /// Prepares `model` for encoding; `path` names it in errors.
    public init(model: SentencePieceModel, path: String = "<memory>") throws {
        guard model.modelType == .bpe else {
            throw TokenizerError.unsupported(
                path: path, reason: "model type \(model.modelType), only BPE is implemented")
        }
        guard !model.hasPrecompiledCharsmap else {
            throw TokenizerError.unsupported(
                path: path,
                reason:
                    "normalizer \"\(model.normalizerName)\" has a character map; only the identity normalizer is implemented"
            )
        }
        guard !model.treatWhitespaceAsSuffix else {
            throw TokenizerError.unsupported(path: path, reason: "treat_whitespace_as_suffix is not implemented")
        }
        self.model = model
        let texts = model.pieces.map(\.text)
        kinds = model.pieces.map(\.kind)
        scores = model.pieces.map(\.score)
        mergeable = PieceTable(pieces: texts) { [kinds] id in
            kinds[id] == .normal || kinds[id] == .userDefined || kinds[id] == .unused
        }
        all = PieceTable(pieces: texts) { _ in true }
        var byteIDs = [Int](repeating: model.unknownID, count: 256)
        var byteValue = [Int16](repeating: -1, count: texts.count)
        for (id, piece) in model.pieces.enumerated() where piece.kind == .byte {
            if let value = Self.byteValue(ofPiece: piece.text) {
                byteIDs[Int(value)] = id
                byteValue[id] = Int16(value)
            }
        }
        self.byteIDs = byteIDs
        self.byteValue = byteValue
        userDefined = model.pieces.filter { $0.kind == .userDefined }.map { Array($0.text.utf8) }
            .sorted { $0.count > $1.count }
    }

    /// Reads and prepares a `tokenizer.model` file.
    public init(contentsOf path: String) throws {
        try self.init(model: SentencePieceModel(contentsOf: path), path: path)
    }

    public var vocabularySize: Int { model.pieces.count }
    public var unknownID: Int { model.unknownID }
    public var bosID: Int { model.bosID }
    public var eosID: Int { model.eosID }

    /// The piece text of `id` (`▁the`, `<0x0A>`, `<s>`).
    public func piece(for id: Int) -> String? {
        model.pieces.indices.contains(id) ? model.pieces[id].text : nil
    }

    /// The id of the piece spelled `text`, if there is one.
    public func id(forPiece text: String) -> Int? {
        all.id(text)
    }

    /// Whether `id` is a control piece (`<s>`, `</s>`) or the unknown piece.
    public func isSpecial(_ id: Int) -> Bool {
        model.pieces.indices.contains(id) && (kinds[id] == .control || kinds[id] == .unknown)
    }

    // MARK: - Encoding

    /// Encodes `text` as `sentencepiece.SentencePieceProcessor.encode` does.
    ///
    /// - Parameter addDummyPrefix: overrides the model's `add_dummy_prefix`, as Hugging Face's LLaMA tokenizer does
    ///   for text after a special token.
    public func encode(_ text: String, addDummyPrefix: Bool? = nil) -> [Int] {
        var ids: [Int] = []
        encode(text, addDummyPrefix: addDummyPrefix ?? model.addDummyPrefix, into: &ids)
        return ids
    }

    /// Appends the ids of `text` to `ids`.
    public func encode(_ text: String, addDummyPrefix: Bool, into ids: inout [Int]) {
        let normalized = normalize(text, addDummyPrefix: addDummyPrefix)
        guard !normalized.isEmpty else { return }
        normalized.withUnsafeBufferPointer { bytes in
            var merger = BPEMerger(bytes: bytes, tokenizer: self)
            merger.run(into: &ids)
        }
    }

    /// The identity normalizer: optional whitespace cleanup, the dummy prefix, and spaces escaped as `▁`.
    func normalize(_ text: String, addDummyPrefix: Bool) -> [UInt8] {
        if model.removeExtraWhitespaces {
            return escaped(Self.collapsingSpaces(Array(text.utf8)), addDummyPrefix: addDummyPrefix)
        }
        return escaped(text.utf8, addDummyPrefix: addDummyPrefix)
    }

    private func escaped(_ input: some Collection<UInt8>, addDummyPrefix: Bool) -> [UInt8] {
        guard !input.isEmpty else { return [] }
        let escape = model.escapeWhitespaces
        var output: [UInt8] = []
        output.reserveCapacity(input.count + input.count / 2 + 3)
        if addDummyPrefix {
            if escape { output.append(contentsOf: Self.escapedSpace) } else { output.append(0x20) }
        }
        for byte in input {
            if byte == 0x20 && escape {
                output.append(0xE2)
                output.append(0x96)
                output.append(0x81)
            } else {
                output.append(byte)
            }
        }
        return output
    }

    /// Leading and trailing spaces removed and runs of spaces collapsed to one (`remove_extra_whitespaces`).
    private static func collapsingSpaces(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var pendingSpace = false
        for byte in input {
            if byte == 0x20 {
                pendingSpace = !output.isEmpty
            } else {
                if pendingSpace { output.append(0x20) }
                pendingSpace = false
                output.append(byte)
            }
        }
        return output
    }

    private static let escapedSpace: [UInt8] = [0xE2, 0x96, 0x81]

    static func byteValue(ofPiece text: String) -> UInt8? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 6, utf8.starts(with: Array("<0x".utf8)), utf8[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }
}
