// Text as PostgreSQL can keep it. `text` and `jsonb` refuse U+0000 (a model can emit it through the byte-fallback
// token `<0x00>`), and a parameter sent as a C string would be cut at it.

extension String {
    /// This text without U+0000, the one character PostgreSQL's `text` and `jsonb` cannot store. Token ids stored
    /// beside a text keep what was removed.
    public var storable: String {
        guard utf8.contains(0) else { return self }
        return String(decoding: utf8.filter { $0 != 0 }, as: UTF8.self)
    }
}
