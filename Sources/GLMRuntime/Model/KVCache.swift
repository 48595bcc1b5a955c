// KVCache.swift — one sequence's keys and values, per layer. A session holds
// one; the batch decoder holds one per sequence it serves, so each sequence
// keeps its own positions and mask while their weight products are shared.
//
// GLM attends bidirectionally over the prompt before <sop>: when text is added
// there (a chat's new turn), every earlier key changes, so a cache is only
// ever extended with tokens after the prompt, never reused across prompts.

import KernelBridge

public protocol KVCache: AnyObject {
    /// Most tokens the cache holds.
    var capacity: Int { get }
    /// Tokens stored so far: the next token's cache index.
    var length: Int { get set }
    /// Stores the post-RoPE k and v of `count` tokens, rows [row, row + count) of a fused
    /// QKV buffer (laid out as QKVLayout says), at cache indices [start, start + count) of `layer`.
    func store(layer: Int, qkv: [Float], row: Int, count: Int, at start: Int)
    /// Attention of those rows' queries over cache entries [0, start + count) with GLM's
    /// mask, into rows [row, row + count) of `out` (hidden floats each).
    func attend(layer: Int, kernels: any KernelSet, qkv: [Float], row: Int, count: Int, start: Int,
                bidirectionalLength: Int, into out: inout [Float]) throws
}

/// What every cache layout shares: the shapes, the copy out of a fused QKV row,
/// and the attention over (capacity, kv heads, head_dim) keys and values.
struct KVLayout {
    let heads: Int, kvHeads: Int, headDim: Int
    let qkv: QKVLayout
    /// Elements per layer of keys (and of values).
    let size: Int

    /// Checks that a cache of `capacity` tokens of `type` fits in this machine's memory: the
    /// layer count and context come from a model file or the command line, and an
    /// allocation the machine cannot back would end the process instead of failing cleanly.
    init(config c: ModelConfig, capacity: Int, type: KVCacheType, layers: Int) throws {
        guard capacity > 0 else { throw GenerationError.invalidArgument("the KV cache capacity must be positive") }
        let (size, overflow) = capacity.multipliedReportingOverflow(by: c.kvHeads * c.headDim)
        guard !overflow, size <= Int(Int32.max) * 4 else {
            throw GenerationError.invalidArgument("a KV cache of \(capacity) tokens is too large for this model")
        }
        try KVLayout.requireMemory(type.bytes(config: c, capacity: capacity, layers: layers), for: "a \(type.rawValue) KV cache of \(capacity) tokens")
        (heads, kvHeads, headDim, self.size, qkv) = (c.heads, c.kvHeads, c.headDim, size, QKVLayout(config: c))
    }

    /// The machine's physical memory (hwloc); nil when it cannot say.
    private static let machineMemory: Int? = (try? Topology.query()).map(\.memoryBytes).flatMap { $0 > 0 ? $0 : nil }

    /// Throws when `bytes` exceed the machine's physical memory.
    static func requireMemory(_ bytes: Int, for what: @autoclosure () -> String) throws {
        guard let memory = machineMemory, bytes > memory else { return }
        throw GenerationError.invalidArgument(String(format: "%@ needs %.1f GB, more than this machine's %.1f GB: use a shorter context",
                                                     what(), Double(bytes) / 1e9, Double(memory) / 1e9))
    }

    /// Each key/value head's k and v of QKV rows [row, row + count) into cache indices
    /// [start, start + count): both are contiguous in the row, one `copy` each.
    func store<T>(_ rows: [Float], row: Int, count: Int, at start: Int, keys: inout [T], values: inout [T],
                  copy: (UnsafePointer<Float>, UnsafeMutablePointer<T>, Int) -> Void) {
        let d = headDim, width = kvHeads * d, l = qkv
        precondition(start >= 0 && (start + count) * width <= keys.count, "cache index outside the KV cache")
        rows.withUnsafeBufferPointer { source in
            keys.withUnsafeMutableBufferPointer { k in
                values.withUnsafeMutableBufferPointer { v in
                    for t in 0..<count {
                        let from = source.baseAddress! + (row + t) * l.tokenStride
                        let to = (start + t) * width
                        for head in 0..<kvHeads {
                            copy(from + l.keyOffset + head * l.headStride, k.baseAddress! + to + head * d, d)
                            copy(from + l.valueOffset + head * l.headStride, v.baseAddress! + to + head * d, d)
                        }
                    }
                }
            }
        }
    }

    /// The attention of QKV rows [row, row + count) over cache entries [0, start + count).
    func shape(row: Int, count: Int, start: Int, bidirectionalLength: Int) -> AttentionShape {
        var shape = AttentionShape(queries: count, keys: start + count, heads: heads, headDim: headDim,
                                   firstQueryPosition: start, bidirectionalLength: bidirectionalLength)
        shape.qTokenStride = qkv.tokenStride
        shape.qHeadStride = qkv.headStride
        shape.qOffset = row * qkv.tokenStride
        shape.outOffset = row * heads * headDim
        shape.kvGroup = heads / kvHeads
        shape.kvTokenStride = kvHeads * headDim
        return shape
    }
}

/// FP32 keys and values, (capacity, heads, head_dim) per layer it holds, allocated once.
public final class DenseKVCache: KVCache {
    public let capacity: Int
    public var length = 0
    private let layout: KVLayout
    /// The model's layers this cache holds (a pipeline stage's; all of them otherwise).
    public let layers: Range<Int>
    private var keys: [[Float]]     // per held layer (capacity, heads, head_dim), post-RoPE
    private var values: [[Float]]   // per held layer (capacity, heads, head_dim)

    public init(config c: ModelConfig, capacity: Int, layers: Range<Int>? = nil) throws {
        let layers = layers ?? 0..<c.layers
        layout = try KVLayout(config: c, capacity: capacity, type: .f32, layers: layers.count)
        self.capacity = capacity
        self.layers = layers
        keys = Array(repeating: [Float](repeating: 0, count: layout.size), count: layers.count)
        values = keys
    }

    public func store(layer: Int, qkv: [Float], row: Int, count: Int, at start: Int) {
        let i = layer - layers.lowerBound
        layout.store(qkv, row: row, count: count, at: start, keys: &keys[i], values: &values[i]) { $1.update(from: $0, count: $2) }
    }

    public func attend(layer: Int, kernels: any KernelSet, qkv: [Float], row: Int, count: Int, start: Int,
                       bidirectionalLength: Int, into out: inout [Float]) throws {
        let shape = layout.shape(row: row, count: count, start: start, bidirectionalLength: bidirectionalLength)
        let i = layer - layers.lowerBound
        try kernels.attention(q: qkv, k: keys[i], v: values[i], shape: shape, into: &out)
    }
}

/// The KV cache's element type: FP32, or IEEE fp16 at half the memory.
public enum KVCacheType: String, Sendable, CaseIterable {
    case f32, f16

    /// FP32: on glm-130b-tiny an fp16 cache keeps every greedy token but moves the
    /// logits 4x more than the model authors' whole fp16 run does (KVCacheTests),
    /// so it is opt-in (--kv-type f16).
    public static let `default` = KVCacheType.f32

    /// An empty cache of this type for `capacity` tokens of a model's `layers` (all by default).
    public func make(config: ModelConfig, capacity: Int, layers: Range<Int>? = nil) throws -> any KVCache {
        switch self {
        case .f32: return try DenseKVCache(config: config, capacity: capacity, layers: layers)
        case .f16: return try HalfKVCache(config: config, capacity: capacity, layers: layers)
        }
    }

    /// Bytes a cache of `capacity` tokens takes for a model (keys and values of every layer,
    /// or of `layers` of them). Int.max when the product overflows (a hostile config).
    public func bytes(config c: ModelConfig, capacity: Int, layers: Int? = nil) -> Int {
        [layers ?? c.layers, capacity, c.kvHeads, c.headDim, self == .f32 ? 4 : 2].reduce(2) { total, factor in
            let (p, overflow) = total.multipliedReportingOverflow(by: factor)
            return overflow ? Int.max : p
        }
    }
}

/// Keys and values rounded to fp16 (nearest even) as they are stored, (capacity,
/// heads, head_dim) per layer: half the memory of DenseKVCache, and half the
/// bytes a decode step's attention reads. The attention kernels widen them to
/// FP32 as they read; the softmax and the sums stay FP32.
public final class HalfKVCache: KVCache {
    public let capacity: Int
    public var length = 0
    private let layout: KVLayout
    /// The model's layers this cache holds (a pipeline stage's; all of them otherwise).
    public let layers: Range<Int>
    private var keys: [[UInt16]]
    private var values: [[UInt16]]

    public init(config c: ModelConfig, capacity: Int, layers: Range<Int>? = nil) throws {
        let layers = layers ?? 0..<c.layers
        layout = try KVLayout(config: c, capacity: capacity, type: .f16, layers: layers.count)
        self.capacity = capacity
        self.layers = layers
        keys = Array(repeating: [UInt16](repeating: 0, count: layout.size), count: layers.count)
        values = keys
    }

    public func store(layer: Int, qkv: [Float], row: Int, count: Int, at start: Int) {
        let i = layer - layers.lowerBound
        layout.store(qkv, row: row, count: count, at: start, keys: &keys[i], values: &values[i]) {
            Kernels.roundToHalf($0, into: $1, count: $2)
        }
    }

    public func attend(layer: Int, kernels: any KernelSet, qkv: [Float], row: Int, count: Int, start: Int,
                       bidirectionalLength: Int, into out: inout [Float]) throws {
        let shape = layout.shape(row: row, count: count, start: start, bidirectionalLength: bidirectionalLength)
        let i = layer - layers.lowerBound
        try kernels.attention(q: qkv, halfK: keys[i], halfV: values[i], shape: shape, into: &out)
    }
}
