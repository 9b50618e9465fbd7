// A Hugging Face `tokenizer.json` for a SentencePiece BPE (what transformers writes for LLaMA), read into the
// same model: merge ranks become piece scores, so the one BPE implementation serves both files.

import Foundation

extension SentencePieceModel {
    /// Reads a `tokenizer.json` whose model is a byte-fallback BPE converted from SentencePiece.
    ///
    /// Merged pieces score by their first merge rule (rank 0 highest); the converter lists every pair whose
    /// concatenation is a piece, ordered as SentencePiece scores them, so encoding gives the same ids.
    /// Other tokenizer.json families (byte-level BPE, WordPiece, Unigram) are refused with the reason.
    public init(huggingFaceTokenizerAt path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or not readable")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError.malformed(path: path, reason: "not a JSON object")
        }
        guard let model = root["model"] as? [String: Any], model["type"] as? String == "BPE" else {
            throw TokenizerError.unsupported(path: path, reason: "the model is not of type BPE")
        }
        guard let vocabulary = model["vocab"] as? [String: Int], !vocabulary.isEmpty else {
            throw TokenizerError.malformed(path: path, reason: "model.vocab is missing or empty")
        }
        let merges = try Self.merges(model["merges"], path: path)
        self.init()
        modelType = .bpe
        byteFallback = model["byte_fallback"] as? Bool ?? false
        normalizerName = "identity"
        try readNormalizer(root["normalizer"], path: path)
        removeExtraWhitespaces = false

        var texts = [String?](repeating: nil, count: vocabulary.count)
        for (text, id) in vocabulary {
            guard texts.indices.contains(id), texts[id] == nil else {
                throw TokenizerError.malformed(path: path, reason: "vocabulary ids are not 0..<\(vocabulary.count)")
            }
            texts[id] = text
        }
        var rank: [String: Int] = [:]
        for (index, pair) in merges.enumerated() where rank[pair.0 + pair.1] == nil {
            rank[pair.0 + pair.1] = index
        }
        let special = Set(
            ((root["added_tokens"] as? [[String: Any]]) ?? []).filter { $0["special"] as? Bool == true }
                .compactMap { $0["content"] as? String })
        let unknown = model["unk_token"] as? String
        pieces = texts.map { text in
            let text = text!
            let kind: PieceKind =
                text == unknown
                ? .unknown
                : special.contains(text)
                    ? .control : (byteFallback && Self.isBytePiece(text)) ? .byte : .normal
            return Piece(text: text, score: rank[text].map { -Float($0) } ?? 0, kind: kind)
        }
        unknownID = unknown.flatMap { vocabulary[$0] } ?? 0
        bosID = vocabulary["<s>"] ?? 1
        eosID = vocabulary["</s>"] ?? 2
    }

    private init() {}

    private static func merges(_ value: Any?, path: String) throws -> [(String, String)] {
        guard let list = value as? [Any] else {
            throw TokenizerError.malformed(path: path, reason: "model.merges is missing")
        }
        return try list.map { entry in
            if let pair = entry as? [String], pair.count == 2 { return (pair[0], pair[1]) }
            if let text = entry as? String, let space = text.firstIndex(of: " ") {
                return (String(text[..<space]), String(text[text.index(after: space)...]))
            }
            throw TokenizerError.malformed(path: path, reason: "a merge is neither \"a b\" nor [\"a\", \"b\"]")
        }
    }

    /// Accepts the normalizers transformers writes for SentencePiece BPE: Prepend("▁") and Replace(" ", "▁").
    private mutating func readNormalizer(_ value: Any?, path: String) throws {
        addDummyPrefix = false
        escapeWhitespaces = false
        guard let normalizer = value as? [String: Any] else { return }
        let steps =
            normalizer["type"] as? String == "Sequence"
            ? (normalizer["normalizers"] as? [[String: Any]] ?? []) : [normalizer]
        for step in steps {
            switch step["type"] as? String {
            case "Prepend" where step["prepend"] as? String == "\u{2581}":
                addDummyPrefix = true
            case "Replace"
            where (step["pattern"] as? [String: Any])?["String"] as? String == " "
                && step["content"] as? String == "\u{2581}":
                escapeWhitespaces = true
            default:
                throw TokenizerError.unsupported(
                    path: path, reason: "normalizer step \(step["type"] as? String ?? "?") is not implemented")
            }
        }
    }

    private static func isBytePiece(_ text: String) -> Bool {
        SentencePieceTokenizer.byteValue(ofPiece: text) != nil
    }
}
