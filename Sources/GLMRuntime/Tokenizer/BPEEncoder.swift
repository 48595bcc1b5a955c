// BPEEncoder.swift — SentencePiece's BPE encoding: start from characters
// (user-defined symbols stay whole and never merge), repeatedly merge the
// adjacent pair whose concatenation is the highest-scoring piece (leftmost on
// ties), then split any piece marked unused back into the pair it came from.

extension Tokenizer {
    func encodeBPE(_ text: [UInt8]) -> [(Range<Int>, Int32)] {
        struct Symbol { var range: Range<Int>; var prev: Int; var next: Int; var frozen: Bool }
        var symbols: [Symbol] = []
        var i = 0
        while i < text.count {
            var length = min(Tokenizer.characterLength(text[i]), text.count - i)
            var frozen = false
            if let match = userDefined.longestMatch(text, from: i) {
                length = match.length
                frozen = true
            }
            symbols.append(Symbol(range: i..<(i + length), prev: symbols.count - 1, next: -1, frozen: frozen))
            i += length
        }
        for k in 0..<max(symbols.count - 1, 0) { symbols[k].next = k + 1 }

        var agenda = PairHeap()
        var reverseMerges: [[UInt8]: (Range<Int>, Range<Int>)] = [:]
        func consider(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0, !symbols[left].frozen, !symbols[right].frozen else { return }
            let merged = Array(text[symbols[left].range]) + Array(text[symbols[right].range])
            guard let id = pieceIDs[merged] else { return }
            agenda.push(.init(score: vocabulary.scores[Int(id)], left: left, right: right, size: merged.count))
            if vocabulary.types[Int(id)] == .unused { reverseMerges[merged] = (symbols[left].range, symbols[right].range) }
        }
        for k in 0..<max(symbols.count - 1, 0) { consider(k, k + 1) }

        while let top = agenda.pop() {
            let (l, r) = (top.left, top.right)
            // skip pairs whose symbols changed since they were queued
            guard !symbols[l].range.isEmpty, !symbols[r].range.isEmpty,
                  symbols[l].range.count + symbols[r].range.count == top.size else { continue }
            symbols[l].range = symbols[l].range.lowerBound..<symbols[r].range.upperBound
            symbols[l].next = symbols[r].next
            if symbols[r].next >= 0 { symbols[symbols[r].next].prev = l }
            symbols[r].range = symbols[r].range.upperBound..<symbols[r].range.upperBound
            consider(symbols[l].prev, l)
            consider(l, symbols[l].next)
        }

        var segments: [(Range<Int>, Int32)] = []
        func resegment(_ range: Range<Int>) {
            let bytes = Array(text[range])
            guard let id = pieceIDs[bytes] else { segments.append((range, vocabulary.unknownID)); return }
            if vocabulary.types[Int(id)] == .unused, let (a, b) = reverseMerges[bytes] {
                resegment(a)
                resegment(b)
            } else {
                segments.append((range, id))
            }
        }
        var k = symbols.isEmpty ? -1 : 0
        while k >= 0 {
            resegment(symbols[k].range)
            k = symbols[k].next
        }
        return segments
    }
}

/// A max-heap of candidate merges: higher score first, then the leftmost.
struct PairHeap {
    struct Pair { let score: Float; let left: Int; let right: Int; let size: Int }
    private var items: [Pair] = []

    private static func before(_ a: Pair, _ b: Pair) -> Bool {
        a.score != b.score ? a.score > b.score : a.left < b.left
    }

    mutating func push(_ pair: Pair) {
        items.append(pair)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard PairHeap.before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Pair? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var first = parent
            if left < items.count, PairHeap.before(items[left], items[first]) { first = left }
            if right < items.count, PairHeap.before(items[right], items[first]) { first = right }
            if first == parent { break }
            items.swapAt(parent, first)
            parent = first
        }
        return top
    }
}
