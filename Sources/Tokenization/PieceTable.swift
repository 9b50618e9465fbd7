// Looks up pieces by their UTF-8 bytes without building a String: an open-addressing hash table over one
// contiguous byte store, because the BPE inner loop asks "is this byte range a piece?" for every pair.

/// An immutable map from piece bytes to piece id.
struct PieceTable: Sendable {
    private let store: [UInt8]  // every piece's bytes, back to back
    private let offsets: [Int32]  // piece id -> start in `store`; offsets[id + 1] is its end
    private let slots: [Int32]  // hash slot -> piece id, or -1 when empty
    private let mask: Int

    /// Builds the table for `pieces`, in id order; `included` says which ids may be found.
    init(pieces: [String], included: (Int) -> Bool) {
        var store: [UInt8] = []
        var offsets: [Int32] = [0]
        for piece in pieces {
            store.append(contentsOf: piece.utf8)
            offsets.append(Int32(store.count))
        }
        var capacity = 16
        while capacity < pieces.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        store.withUnsafeBufferPointer { bytes in
            for id in pieces.indices where included(id) {
                let start = Int(offsets[id]), count = Int(offsets[id + 1]) - start
                var slot = Self.hash(bytes.baseAddress! + start, count) & mask
                // First entry wins, as SentencePiece keeps the first of duplicate pieces.
                var duplicate = false
                while slots[slot] >= 0 {
                    let other = Int(slots[slot])
                    let otherStart = Int(offsets[other]), otherCount = Int(offsets[other + 1]) - otherStart
                    if otherCount == count
                        && memcmp(bytes.baseAddress! + start, bytes.baseAddress! + otherStart, count) == 0
                    {
                        duplicate = true
                        break
                    }
                    slot = (slot + 1) & mask
                }
                if !duplicate { slots[slot] = Int32(id) }
            }
        }
        self.store = store
        self.offsets = offsets
        self.slots = slots
        self.mask = mask
    }

    /// The id of the piece whose bytes are `bytes[0..<count]`, or nil.
    @inline(__always)
    func id(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int? {
        var slot = Self.hash(bytes, count) & mask
        return store.withUnsafeBufferPointer { stored in
            while true {
                let id = Int(slots[slot])
                if id < 0 { return nil }
                let start = Int(offsets[id])
                if Int(offsets[id + 1]) - start == count && memcmp(bytes, stored.baseAddress! + start, count) == 0 {
                    return id
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func id(_ text: String) -> Int? {
        var text = text
        return text.withUTF8 { buffer in
            guard let base = buffer.baseAddress else { return nil }
            return id(base, buffer.count)
        }
    }

    /// FNV-1a, 64-bit: short keys, no allocation.
    @inline(__always)
    private static func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for index in 0..<count {
            value = (value ^ UInt64(bytes[index])) &* 0x0000_0100_0000_01B3
        }
        return Int(truncatingIfNeeded: value ^ (value >> 29))
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
