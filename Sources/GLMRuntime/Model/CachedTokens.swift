// CachedTokens.swift — the ids whose keys and values a KV cache holds, in order:
// what a causal model's next prompt may keep (InferenceSession.reusePrefix, the
// batch decoder's prefill). A causal key at position t depends on ids[0 ... t]
// alone, so the cached tokens a prompt starts with are still valid for it.

public struct CachedTokens: Sendable {
    public private(set) var ids: [Int32] = []

    /// Room for a whole cache: the ids grow by one every decode step, and growing would allocate.
    public init(capacity: Int) { ids.reserveCapacity(capacity) }

    /// How many of `prompt`'s first tokens are cached, at most all but its last (one token
    /// must run, for its logits).
    public func shared(with prompt: [Int32]) -> Int {
        var k = 0
        while k < min(ids.count, prompt.count - 1), ids[k] == prompt[k] { k += 1 }
        return k
    }

    /// Keeps the first `count` ids (the cache is cut back to them).
    public mutating func keep(_ count: Int) { ids.removeSubrange(min(count, ids.count)...) }
    public mutating func append(_ id: Int32) { ids.append(id) }
    public mutating func append(contentsOf new: [Int32]) { ids.append(contentsOf: new) }
}
