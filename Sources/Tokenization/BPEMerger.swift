// The BPE merge loop of one normalized string: split into characters, merge the best-scoring adjacent pair
// until none is a piece, re-split unused pieces, and fall back to bytes for what is not in the vocabulary.

/// One run of SentencePiece's BPE over a normalized byte string.
struct BPEMerger {
    private struct Symbol {
        var start: Int32
        var count: Int32  // 0 once merged into its left neighbour
        var previous: Int32
        var next: Int32
        var frozen: Bool  // user-defined pieces are never merged
        var id: Int32  // the piece id once known from a merge, else -1
    }

    /// A candidate merge of `left` and the symbol after it, `size` bytes long in total.
    private struct Candidate {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32
        var id: Int32

        /// Higher score first; among equal scores, the leftmost (SentencePiece's agenda order).
        func outranks(_ other: Candidate) -> Bool {
            score > other.score || (score == other.score && left < other.left)
        }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private let tokenizer: SentencePieceTokenizer
    private var symbols: [Symbol] = []
    private var heap: [Candidate] = []
    /// For pieces of kind `unused` that merges produced: merged piece id -> the two parts, to split them again.
    private var unusedParts: [Int: ((Int32, Int32), (Int32, Int32))] = [:]

    init(bytes: UnsafeBufferPointer<UInt8>, tokenizer: SentencePieceTokenizer) {
        self.bytes = bytes
        self.tokenizer = tokenizer
    }

    mutating func run(into ids: inout [Int]) {
        split()
        heap.reserveCapacity(symbols.count)
        for index in 1..<max(symbols.count, 1) { consider(Int32(index - 1), Int32(index)) }
        while let top = popBest() {
            let left = Int(top.left), right = Int(top.right)
            // Skip stale candidates: either side already merged away or grown since.
            guard symbols[left].count > 0, symbols[right].count > 0,
                symbols[left].count + symbols[right].count == top.size
            else { continue }
            symbols[left].count += symbols[right].count
            symbols[left].id = top.id
            symbols[left].next = symbols[right].next
            if symbols[right].next >= 0 { symbols[Int(symbols[right].next)].previous = Int32(left) }
            symbols[right].count = 0
            consider(symbols[left].previous, Int32(left))
            consider(Int32(left), symbols[left].next)
        }
        var index: Int32 = symbols.isEmpty ? -1 : 0
        while index >= 0 {
            let symbol = symbols[Int(index)]
            if symbol.id >= 0 && tokenizer.kinds[Int(symbol.id)] != .unused {
                ids.append(Int(symbol.id))
                previousWasUnknown = false
            } else {
                emit(start: symbol.start, count: symbol.count, into: &ids)
            }
            index = symbol.next
        }
    }

    /// One symbol per UTF-8 character, or per user-defined piece found at that position.
    private mutating func split() {
        var position = 0
        symbols.reserveCapacity(bytes.count)
        while position < bytes.count {
            var length = 0
            var frozen = false
            for piece in tokenizer.userDefined where piece.count <= bytes.count - position {
                if piece.withUnsafeBufferPointer({ memcmp($0.baseAddress!, bytes.baseAddress! + position, piece.count) }
                ) == 0 {
                    length = piece.count
                    frozen = true
                    break
                }
            }
            if length == 0 { length = Self.characterLength(bytes, at: position) }
            let index = Int32(symbols.count)
            symbols.append(
                Symbol(
                    start: Int32(position), count: Int32(length), previous: index - 1,
                    next: position + length < bytes.count ? index + 1 : -1, frozen: frozen, id: -1))
            position += length
        }
    }

    /// Bytes in the UTF-8 character at `position`; a malformed lead byte counts as one.
    private static func characterLength(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int) -> Int {
        let lead = bytes[position]
        let length: Int
        switch lead {
        case 0..<0x80: length = 1
        case 0xC0..<0xE0: length = 2
        case 0xE0..<0xF0: length = 3
        case 0xF0..<0xF8: length = 4
        default: length = 1
        }
        return min(length, bytes.count - position)
    }

    private mutating func consider(_ left: Int32, _ right: Int32) {
        guard left >= 0, right >= 0 else { return }
        let l = symbols[Int(left)], r = symbols[Int(right)]
        guard !l.frozen, !r.frozen else { return }
        let size = l.count + r.count
        guard let id = tokenizer.mergeable.id(bytes.baseAddress! + Int(l.start), Int(size)) else { return }
        push(Candidate(score: tokenizer.scores[id], left: left, right: right, size: size, id: Int32(id)))
        if tokenizer.kinds[id] == .unused {
            unusedParts[id] = ((l.start, l.count), (r.start, r.count))
        }
    }

    /// Appends the id of the piece at `start`, splitting unused pieces back into their parts and spelling
    /// out-of-vocabulary pieces as bytes.
    private mutating func emit(start: Int32, count: Int32, into ids: inout [Int]) {
        let pointer = bytes.baseAddress! + Int(start)
        if let id = tokenizer.all.id(pointer, Int(count)) {
            if tokenizer.kinds[id] == .unused, let (first, second) = unusedParts[id] {
                emit(start: first.0, count: first.1, into: &ids)
                emit(start: second.0, count: second.1, into: &ids)
                return
            }
            if id != tokenizer.unknownID || !tokenizer.model.byteFallback {
                ids.append(id)
                previousWasUnknown = false
                return
            }
        }
        guard tokenizer.model.byteFallback else {
            // Without byte fallback, consecutive unknown pieces collapse into one unknown id.
            if !previousWasUnknown { ids.append(tokenizer.unknownID) }
            previousWasUnknown = true
            return
        }
        for offset in 0..<Int(count) { ids.append(tokenizer.byteIDs[Int(pointer[offset])]) }
    }

    private var previousWasUnknown = false

    // MARK: - Agenda (a binary max-heap by `outranks`)

    private mutating func push(_ candidate: Candidate) {
        heap.append(candidate)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].outranks(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popBest() -> Candidate? {
        guard let best = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var top = parent
                if left < heap.count && heap[left].outranks(heap[top]) { top = left }
                if right < heap.count && heap[right].outranks(heap[top]) { top = right }
                if top == parent { break }
                heap.swapAt(parent, top)
                parent = top
            }
        }
        return best
    }
}

#if canImport(Glibc)
    import Glibc
#endif
