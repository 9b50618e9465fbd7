// LLaMA's tokenizer as Hugging Face's slow `LlamaTokenizer` with `legacy=False` uses it: special tokens written
// in the text (`<s>`, `</s>`, `<unk>`) become their ids, and text right after one gets no dummy-prefix space.

/// The tokenizer InfMLLM's prompts are built with.
public struct LlamaTokenizer: Sendable {
    public let pieces: SentencePieceTokenizer
    /// Special tokens recognised in text, longest first: the unknown, BOS and EOS pieces.
    private let specials: [(text: [UInt8], id: Int)]
    /// The unknown token's text and how many pieces it encodes to, for the prefix trick in `encodeChunk`.
    private let unknownText: String
    private let unknownPrefixLength: Int

    public init(_ pieces: SentencePieceTokenizer) {
        self.pieces = pieces
        let ids = [pieces.unknownID, pieces.bosID, pieces.eosID]
        specials = ids.compactMap { id in pieces.piece(for: id).map { (Array($0.utf8), id) } }
            .sorted { $0.text.count > $1.text.count }
        unknownText = pieces.piece(for: pieces.unknownID) ?? "<unk>"
        unknownPrefixLength = pieces.encode(unknownText, addDummyPrefix: false).count
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
        let start = ids.count
        // The text's own ▁ characters are spaces; a ▁ is then put in front of the whole text.
        var bytes = Array("\u{2581}".utf8)
        for byte in Array(text.replacingSpaceSymbols().utf8) { bytes.append(byte) }
        var chunkStart = 0
        var position = 0
        while position < bytes.count {
            if let special = special(in: bytes, at: position) {
                encodeChunk(bytes[chunkStart..<position], into: &ids)
                ids.append(special.id)
                position += special.text.count
                chunkStart = position
            } else {
                position += 1
            }
        }
        encodeChunk(bytes[chunkStart..<bytes.count], into: &ids)
        // A text that opens with a special token keeps no lone ▁ in front of it.
        if ids.count - start > 1, pieces.piece(for: ids[start]) == "\u{2581}", isSpecial(ids[start + 1]) {
            ids.remove(at: start)
        }
        return ids
    }

    /// Decodes generated ids; special tokens are dropped unless `skipSpecialTokens` is false.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        pieces.decode(ids, skipSpecialTokens: skipSpecialTokens)
    }

    private func isSpecial(_ id: Int) -> Bool {
        specials.contains { $0.id == id }
    }

    private func special(in bytes: [UInt8], at position: Int) -> (text: [UInt8], id: Int)? {
        specials.first { special in
            special.text.count <= bytes.count - position
                && bytes[position..<(position + special.text.count)].elementsEqual(special.text)
        }
    }

    /// One stretch of text between special tokens. A stretch that starts with a space or ▁ keeps it as its own
    /// ▁ (encoded behind the unknown token's text so SentencePiece cannot drop it); any other stretch is encoded
    /// without a dummy prefix.
    private func encodeChunk(_ chunk: ArraySlice<UInt8>, into ids: inout [Int]) {
        guard !chunk.isEmpty else { return }
        let text = String(decoding: chunk, as: UTF8.self)
        if chunk.first == 0x20 || chunk.starts(with: SentencePieceTokenizer.spaceSymbol) {
            let encoded = pieces.encode(unknownText + text, addDummyPrefix: false)
            ids.append(
                contentsOf: encoded.count >= unknownPrefixLength ? encoded.dropFirst(unknownPrefixLength) : encoded[...]
            )
        } else {
            pieces.encode(text, addDummyPrefix: false, into: &ids)
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
