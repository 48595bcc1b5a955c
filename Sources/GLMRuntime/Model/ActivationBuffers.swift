// ActivationBuffers.swift — the named activations of a forward pass, one
// array per buffer, each sized for the most tokens (rows) a chunk has had.
// They grow only when a larger chunk comes, so once a session has run its
// prompt (or a batch its widest step) a decode step allocates nothing.
// A row is one token: of the prompt, or of one sequence in a batch.

struct ActivationBuffers {
    /// Rows every buffer holds.
    private(set) var rows = 0
    private let hidden: Int, qkvWidth: Int, attentionWidth: Int, upRows: Int, inner: Int, vocab: Int

    var embedded: [Float] = []   // (rows, hidden) token embeddings, before the first LN
    var x: [Float] = []          // (rows, hidden) layer input: already normalised (DeepNorm), the residual stream (pre-norm)
    var normed: [Float] = []     // (rows, hidden) pre-norm: the norm of x a sublayer reads
    var qkv: [Float] = []        // (rows, QKV width) see QKVLayout
    var attended: [Float] = []   // (rows, heads x head dim: hidden but for some kin)
    var projected: [Float] = []  // (rows, hidden)
    var residual: [Float] = []   // (rows, hidden) x * alpha + sublayer(x), before LN (unfused plan only)
    var y: [Float] = []          // (rows, hidden) LN2 output
    var up: [Float] = []         // (rows, up rows)
    var activated: [Float] = []  // (rows, inner)
    var down: [Float] = []       // (rows, hidden)
    var branch: [Float] = []     // (rows, hidden) sandwich: a sublayer's output after its own norm
    var positions: [Int32] = []  // (rows) position id per row
    var blocks: [Int32] = []     // (rows) block position per row (2D RoPE)
    var lastRow: [Float] = []    // (hidden) the row whose logits a prompt returns
    /// Rows of `logits`: one per sequence of a batch (a prompt returns only its last).
    private(set) var logitRows = 0
    var logits: [Float] = []     // (logitRows, vocab)

    init(config c: ModelConfig) {
        (hidden, qkvWidth, attentionWidth, upRows, inner, vocab) = (c.hidden, c.qkvWidth, c.attentionWidth, c.ffnUpRows, c.ffnInner, c.vocab)
        lastRow = [Float](repeating: 0, count: hidden)
    }

    /// Makes every buffer hold at least `count` rows (keeping nothing when it grows).
    mutating func reserve(rows count: Int) {
        guard count > rows else { return }
        rows = count
        func sized(_ width: Int) -> [Float] { [Float](repeating: 0, count: count * width) }
        (embedded, x, attended, projected, residual, y, down) = (sized(hidden), sized(hidden), sized(attentionWidth), sized(hidden),
                                                                 sized(hidden), sized(hidden), sized(hidden))
        (normed, branch) = (sized(hidden), sized(hidden))
        (qkv, up, activated) = (sized(qkvWidth), sized(upRows), sized(inner))
        positions = [Int32](repeating: 0, count: count)
        blocks = positions
    }

    /// Makes `logits` hold at least `count` rows.
    mutating func reserve(logitRows count: Int) {
        guard count > logitRows else { return }
        logitRows = count
        logits = [Float](repeating: 0, count: count * vocab)
    }

    /// Floats per row of a plan buffer.
    func width(_ b: PlanBuffer) -> Int {
        switch b {
        case .x, .normed, .projected, .residual, .y, .down, .branch: return hidden
        case .attended: return attentionWidth
        case .qkv: return qkvWidth
        case .up: return upRows
        case .activated: return inner
        }
    }

    subscript(b: PlanBuffer) -> [Float] {
        get {
            switch b {
            case .x: return x
            case .normed: return normed
            case .branch: return branch
            case .qkv: return qkv
            case .attended: return attended
            case .projected: return projected
            case .residual: return residual
            case .y: return y
            case .up: return up
            case .activated: return activated
            case .down: return down
            }
        }
        _modify {
            switch b {
            case .x: yield &x
            case .normed: yield &normed
            case .branch: yield &branch
            case .qkv: yield &qkv
            case .attended: yield &attended
            case .projected: yield &projected
            case .residual: yield &residual
            case .y: yield &y
            case .up: yield &up
            case .activated: yield &activated
            case .down: yield &down
            }
        }
    }
}
