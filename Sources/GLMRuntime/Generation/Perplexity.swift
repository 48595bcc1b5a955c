// Perplexity.swift — per-token log-likelihood of text under the model, the
// way GLM scores a continuation: each document is laid out as
// [gMASK] <sop> text, and every text token is predicted from the ones before
// it (the [gMASK] prefix is the bidirectional context). Perplexity is
// exp(mean negative log-likelihood per predicted token).

import Foundation
import KernelBridge

public struct PerplexityResult: Sendable, Codable {
    public var documents = 0
    public var tokens = 0
    public var negativeLogLikelihood = 0.0
    public var meanNLL: Double { tokens > 0 ? negativeLogLikelihood / Double(tokens) : .nan }
    public var perplexity: Double { exp(meanNLL) }
}

public enum Perplexity {
    /// Splits text into documents at lines holding only "%" (the fortune format);
    /// without such lines the whole text is one document.
    public static func documents(_ text: String) -> [String] {
        let parts = text.components(separatedBy: "\n%\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .map { $0.hasSuffix("\n%") ? String($0.dropLast(2)) : $0 }
        return parts.filter { !$0.isEmpty && $0 != "%" }
    }

    public static func evaluate(model: GLMModel, codec: PromptBuilder, documents: [String], kernels: (any KernelSet)? = nil,
                                progress: ((Int, Int) -> Void)? = nil) throws -> PerplexityResult {
        let t = model.config.tokens
        let context = model.config.contextLength
        guard context >= 3 else {
            throw GenerationError.invalidArgument("the model's context of \(context) cannot score text ([gMASK] <sop> and a token need 3)")
        }
        // each document's tokens, cut to the context; the cache holds the longest pass, not the context maximum
        let texts = documents.map { Array(codec.encode($0).prefix(context - 2)) }
        let longest = texts.map(\.count).max() ?? 0
        guard longest > 0 else { return PerplexityResult() }
        let session = try InferenceSession(model: model, capacity: longest + 1, kernels: kernels)
        var result = PerplexityResult()
        for (index, text) in texts.enumerated() {
            guard !text.isEmpty else { continue }
            session.reset()
            let ids = [t.gmask, t.sop] + text
            let logits = try session.forward(Array(ids.dropLast()), allLogits: true)
            let vocab = model.config.vocab
            // position i (from sop on) predicts ids[i + 1]
            for i in 1..<(ids.count - 1) {
                let row = logits[(i * vocab)..<((i + 1) * vocab)]
                let maxLogit = Double(row.max()!)
                let logSum = log(row.reduce(0.0) { $0 + exp(Double($1) - maxLogit) }) + maxLogit
                result.negativeLogLikelihood += logSum - Double(row[row.startIndex + Int(ids[i + 1])])
                result.tokens += 1
            }
            result.documents += 1
            progress?(index + 1, documents.count)
        }
        return result
    }
}
