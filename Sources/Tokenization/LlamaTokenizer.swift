// LLaMA's tokenizer as transformers 4.31's slow `LlamaTokenizer` with `legacy=False` uses it (vicuna-7b-v1.5's
// settings, loaded with `from_pretrained`): special tokens written in the text (`<s>`, `</s>`, `<unk>`) become their
// ids, and the text after one is encoded with SentencePiece's dummy prefix, which is then taken off its first piece
// unless the text starts with a space. Taking it off can leave a piece the vocabulary does not have (`▁USER` becomes
// `USER`, or <unk>): that is what the released model was trained and evaluated with, and what is reproduced here.

/// The tokenizer InfMLLM's prompts are built with.
public struct LlamaTokenizer: Sendable {
    public let pieces: SentencePieceTokenizer
    /// Special tokens recognised in text, longest first: the unknown, BOS and EOS pieces.
    private let specials: [(text: [UInt8], id: Int)]

    public init(_ pieces: SentencePieceTokenizer) {
        self.pieces = pieces
        let ids = [pieces.unknownID, pieces.bosID, pieces.eosID]
        specials = ids.compactMap { id in pieces.piece(for: id).map { (Array($0.utf8), id) } }
            .sorted { $0.text.count > $1.text.count }
    }

    /// Reads a `tokenizer.model` file.
    public init(contentsOf path: String) throws {
        self.init(try SentencePieceTokenizer(contentsOf: path))
    }

    public var bosID: Int { pieces.bosID }
    public var eosID: Int { pieces.eosID }
    public var unknownID: Int { pieces.unknownID }
    public var vocabularySize: Int { pieces.vocabularySize }

    /// The ids of `text`, as `tokenizer(text, add_special_tokens=addBOS).input_ids`.
    public func encode(_ text: String, addBOS: Bool = false) -> [Int] {
        var ids: [Int] = addBOS ? [bosID] : []
        guard !text.isEmpty else { return ids }
        // The text's own ▁ characters are spaces; a ▁ is then put in front of the whole text.
        var bytes = Array("\u{2581}".utf8)
        for byte in Array(text.replacingSpaceSymbols().utf8) { bytes.append(byte) }
        var chunkStart = 0
        var position = 0
        while position < bytes.count {
            if let special = special(in: bytes, at: position) {
                encodeChunk(bytes[chunkStart..<position], first: chunkStart == 0, into: &ids)
                ids.append(special.id)
                position += special.text.count
                chunkStart = position
            } else {
                position += 1
            }
        }
        encodeChunk(bytes[chunkStart..<bytes.count], first: chunkStart == 0, into: &ids)
        return ids
    }

    /// Decodes generated ids; special tokens are dropped unless `skipSpecialTokens` is false.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        pieces.decode(ids, skipSpecialTokens: skipSpecialTokens)
    }

    private func special(in bytes: [UInt8], at position: Int) -> (text: [UInt8], id: Int)? {
        specials.first { special in
            special.text.count <= bytes.count - position
                && bytes[position..<(position + special.text.count)].elementsEqual(special.text)
        }
    }

    /// One stretch of text between special tokens (`LlamaTokenizer._tokenize`). The first stretch starts with the
    /// ▁ put in front of the whole text, which stands for SentencePiece's dummy prefix. Any other stretch is
    /// encoded with the dummy prefix too, and unless it starts with a space its first piece loses its leading ▁:
    /// the piece spelled without it, <unk> when there is none, nothing when the piece was a lone ▁.
    private func encodeChunk(_ chunk: ArraySlice<UInt8>, first: Bool, into ids: inout [Int]) {
        let text = first ? chunk.dropFirst(SentencePieceTokenizer.spaceSymbol.count) : chunk
        guard !text.isEmpty else { return }
        let start = ids.count
        ids.append(contentsOf: pieces.encode(String(decoding: text, as: UTF8.self)))
        // Python's `tokens[0][1:]`: the first code point, not the first grapheme (▁ with a combining mark after).
        guard !first, text.first != 0x20, ids.count > start, let piece = pieces.piece(for: ids[start]),
            piece.unicodeScalars.first == "\u{2581}"
        else { return }
        let rest = String(piece.unicodeScalars.dropFirst())
        if rest.isEmpty {
            ids.remove(at: start)
        } else {
            ids[start] = pieces.id(forPiece: rest) ?? unknownID
        }
    }
}

extension String {
    fileprivate func replacingSpaceSymbols() -> String {
        guard contains("\u{2581}") else { return self }
        return String(map { $0 == "\u{2581}" ? " " : $0 })
    }
}

extension LlamaTokenizer {
    /// The ids of the text around each image marker in `prompt`, each chunk tokenized on its own.
    ///
    /// - Parameters:
    ///   - marker: `<ImageHere>` for the multitask model, `<image>` for the chat model; never tokenized itself.
    ///   - addBOS: false for the multitask model (its caller puts one BOS in front of everything); true for the
    ///     chat model, where each chunk is tokenized with BOS and only the first chunk keeps it.
    /// - Returns: one id list per chunk, `k + 1` lists for `k` markers; the image goes between consecutive lists.
    public func encodeSegments(_ prompt: String, around marker: String, addBOS: Bool) -> [[Int]] {
        prompt.components(separatedBy: marker).enumerated().map { index, chunk in
            let ids = encode(chunk, addBOS: addBOS)
            return addBOS && index > 0 && ids.first == bosID ? Array(ids.dropFirst()) : ids
        }
    }
}
