// Ids back to text as `sentencepiece` decodes them: `▁` to spaces, byte pieces to UTF-8 with U+FFFD for
// each invalid byte, control pieces invisible, the dummy prefix's space removed at the start.

extension SentencePieceTokenizer {
    /// Decodes `ids` as `SentencePieceProcessor.decode` does.
    ///
    /// - Parameter skipSpecialTokens: when false, control pieces such as `<s>` appear as their text instead of
    ///   being invisible. Ids outside the vocabulary are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var text: [UInt8] = []
        var pendingBytes: [UInt8] = []
        // Only the first visible piece loses the ▁ that the dummy prefix put there.
        var atStart = model.addDummyPrefix || model.removeExtraWhitespaces
        for id in ids where model.pieces.indices.contains(id) {
            if byteValue[id] >= 0 {
                pendingBytes.append(UInt8(byteValue[id]))
                atStart = false
                continue
            }
            Self.appendValidatingUTF8(pendingBytes, to: &text)
            pendingBytes.removeAll(keepingCapacity: true)
            let piece = model.pieces[id]
            switch piece.kind {
            case .control:
                if !skipSpecialTokens { text.append(contentsOf: piece.text.utf8) }
            case .unknown:
                text.append(contentsOf: (skipSpecialTokens ? model.unknownSurface : piece.text).utf8)
                atStart = false
            default:
                var surface = Array(piece.text.utf8)[...]
                if atStart && surface.starts(with: Self.spaceSymbol) {
                    surface = surface.dropFirst(3)
                }
                atStart = false
                Self.appendUnescaped(surface, to: &text)
            }
        }
        Self.appendValidatingUTF8(pendingBytes, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    static let spaceSymbol: [UInt8] = [0xE2, 0x96, 0x81]  // ▁ U+2581

    private static func appendUnescaped(_ surface: ArraySlice<UInt8>, to text: inout [UInt8]) {
        var index = surface.startIndex
        while index < surface.endIndex {
            if surface[index] == 0xE2, index + 2 < surface.endIndex, surface[index + 1] == 0x96,
                surface[index + 2] == 0x81
            {
                text.append(0x20)
                index += 3
            } else {
                text.append(surface[index])
                index += 1
            }
        }
    }

    /// Appends `bytes`, replacing each byte that does not start a valid UTF-8 character with U+FFFD.
    static func appendValidatingUTF8(_ bytes: [UInt8], to text: inout [UInt8]) {
        var index = 0
        while index < bytes.count {
            let length = validCharacterLength(bytes, at: index)
            if length == 0 {
                text.append(contentsOf: [0xEF, 0xBF, 0xBD])
                index += 1
            } else {
                text.append(contentsOf: bytes[index..<(index + length)])
                index += length
            }
        }
    }

    /// The length of the well-formed UTF-8 character at `index` (RFC 3629: no overlongs, no surrogates,
    /// nothing past U+10FFFF), or 0 when the bytes there are not one.
    static func validCharacterLength(_ bytes: [UInt8], at index: Int) -> Int {
        let lead = bytes[index]
        let remaining = bytes.count - index
        func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
            offset < remaining && range.contains(bytes[index + offset])
        }
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: return continuation(1) ? 2 : 0
        case 0xE0: return continuation(1, 0xA0...0xBF) && continuation(2) ? 3 : 0
        case 0xE1...0xEC, 0xEE...0xEF: return continuation(1) && continuation(2) ? 3 : 0
        case 0xED: return continuation(1, 0x80...0x9F) && continuation(2) ? 3 : 0
        case 0xF0: return continuation(1, 0x90...0xBF) && continuation(2) && continuation(3) ? 4 : 0
        case 0xF1...0xF3: return continuation(1) && continuation(2) && continuation(3) ? 4 : 0
        case 0xF4: return continuation(1, 0x80...0x8F) && continuation(2) && continuation(3) ? 4 : 0
        default: return 0
        }
    }
}
