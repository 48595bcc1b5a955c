// SequenceForwarding.swift — what generation needs of one sequence's forward
// pass: run tokens, keep their keys and values, say how full the cache is.
// An InferenceSession does it in this process; the MPI pipeline's rank 0 does
// it with the layers spread over ranks (GLMDistributed), so TokenStream, blank
// filling and chat run unchanged on either.

public protocol SequenceForwarding: AnyObject {
    /// Tokens the KV cache holds.
    var length: Int { get }
    /// Most tokens the cache can hold.
    var capacity: Int { get }
    /// Empties the cache; the next forward call is a new prompt.
    func reset()
    /// Keeps the cached tokens a causal prompt starts with and returns how many (InferenceSession.reusePrefix).
    func reusePrefix(of ids: [Int32]) -> Int
    /// Runs `ids`, appending them to the cache; the logits of every position or of the last.
    func forward(_ ids: [Int32], allLogits: Bool, layout: PromptLayout?) throws -> [Float]
}

extension SequenceForwarding {
    public func forward(_ ids: [Int32]) throws -> [Float] { try forward(ids, allLogits: false, layout: nil) }
    public func forward(_ ids: [Int32], allLogits: Bool) throws -> [Float] { try forward(ids, allLogits: allLogits, layout: nil) }
    public func forward(_ ids: [Int32], layout: PromptLayout?) throws -> [Float] { try forward(ids, allLogits: false, layout: layout) }
}

extension InferenceSession: SequenceForwarding {}
