// UnigramEncoder.swift — SentencePiece's unigram encoding: the best-scoring
// segmentation by Viterbi over every vocabulary piece that matches at each
// character boundary. A character with no single-character piece becomes an
// unknown node scored (lowest piece score - 10); user-defined pieces score
// length * max_score - 0.1 so that they always win. Ties keep the first
// candidate found, as the library does.

extension Tokenizer {
    func encodeUnigram(_ text: [UInt8]) -> [(Range<Int>, Int32)] {
        struct Node { var score: Float = 0; var start = -1; var id: Int32 = -1 }
        let unknownScore = minNormalScore - 10
        var best = [Node](repeating: Node(), count: text.count + 1)
        var start = 0
        while start < text.count {
            let here = best[start].score
            let charLength = min(Tokenizer.characterLength(text[start]), text.count - start)
            var hasSingleCharacter = false
            matchable.prefixes(text, from: start) { length, id in
                let type = vocabulary.types[Int(id)]
                if type == .unused { return }
                let score = type == .userDefined ? Float(length) * maxNormalScore - 0.1 : vocabulary.scores[Int(id)]
                let candidate = here + score
                let end = start + length
                if best[end].start < 0 || candidate > best[end].score { best[end] = Node(score: candidate, start: start, id: id) }
                if length == charLength { hasSingleCharacter = true }
            }
            if !hasSingleCharacter {
                let end = start + charLength
                let candidate = here + unknownScore
                if best[end].start < 0 || candidate > best[end].score {
                    best[end] = Node(score: candidate, start: start, id: vocabulary.unknownID)
                }
            }
            start += charLength
        }
        var segments: [(Range<Int>, Int32)] = []
        var end = text.count
        while end > 0 {
            let node = best[end]
            segments.append((node.start..<end, node.id))
            end = node.start
        }
        return segments.reversed()
    }
}
