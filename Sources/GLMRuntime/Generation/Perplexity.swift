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
        let session = try InferenceSession(model: model, capacity: model.config.contextLength, kernels: kernels)
        var result = PerplexityResult()
        for (index, document) in documents.enumerated() {
            let text = Array(codec.encode(document).prefix(model.config.contextLength - 2))
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
