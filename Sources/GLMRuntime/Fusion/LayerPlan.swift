// LayerPlan.swift — a transformer layer as a list of operations over named
// buffers. `unfused` is the layer as the reference code writes it: every
// bias add, residual scale-add, norm and activation its own pass over
// memory: DeepNorm post-LN for GLM-130B and ChatGLM-6B, pre-norm (with the
// sandwich's branch norms for GLM-4-0414) for the kin. FusionPass rewrites chains of those into the fused kernels.
// Attention is one operation in both: its scale and mask live inside the
// tiled kernel, which never materialises the score matrix.

public enum PlanBuffer: Hashable, Sendable, CaseIterable {
    case x          // (m, hidden) layer input: already normalised (DeepNorm: the residual is LN(x)); pre-norm: the residual stream
    case normed     // (m, hidden) pre-norm: norm(x), the input of a sublayer's first product
    case qkv        // (m, QKV width) see QKVLayout
    case attended   // (m, hidden)
    case projected  // (m, hidden)
    case residual   // (m, hidden) x * alpha + sublayer(x), before LayerNorm (unfused only)
    case y          // (m, hidden) LN2 output
    case up         // (m, up rows)
    case activated  // (m, inner)
    case down       // (m, hidden)
    case branch     // (m, hidden) sandwich: a sublayer's output after its own norm
}

public enum PlanWeight: Sendable, Equatable { case qkv, attentionOutput, ffnUp, ffnDown }
public enum PlanBias: Sendable, Equatable { case qkv, attentionOutput, ffnUp, ffnDown }
/// ffn: this layer's LN2 (pre-norm: the norm before the feed-forward); next: the next layer's
/// LN1 (or the final LayerNorm after the last layer, DeepNorm); attention: this layer's input
/// norm (pre-norm); postAttention, postFFN: the sandwich's norms of each sublayer's output.
public enum PlanNorm: Sendable, Equatable { case ffn, next, attention, postAttention, postFFN }

public enum PlanOp: Sendable, Equatable {
    case matmul(PlanWeight, input: PlanBuffer, output: PlanBuffer, bias: PlanBias?)
    case addBias(PlanBuffer, PlanBias)
    case rope                                                                // q and k inside qkv, in place
    case attention                                                           // qkv -> attended; appends k, v to the cache
    case scaleAdd(output: PlanBuffer, x: PlanBuffer, y: PlanBuffer)          // output = x * alpha + y
    case layerNorm(output: PlanBuffer, input: PlanBuffer, PlanNorm)
    case residualLayerNorm(output: PlanBuffer, x: PlanBuffer, y: PlanBuffer, PlanNorm) // fused: LN(x * alpha + y)
    case geluGate(output: PlanBuffer, input: PlanBuffer)                     // output = gelu_erf(input[:, inner:])
    case mulGate(output: PlanBuffer, input: PlanBuffer)                      // output = input[:, :inner] * output
    case biasGeGLU(output: PlanBuffer, input: PlanBuffer, PlanBias)          // fused
    case gelu(output: PlanBuffer, input: PlanBuffer)                         // tanh GeLU
    case biasGeLU(output: PlanBuffer, input: PlanBuffer, PlanBias)           // fused
    case rmsNorm(output: PlanBuffer, input: PlanBuffer, PlanNorm)            // output = RMSNorm(input)
    case residualAdd(PlanBuffer, PlanBuffer)                                 // first += second (pre-norm residual)
    case residualRMSNorm(output: PlanBuffer, residual: PlanBuffer, y: PlanBuffer, PlanNorm) // fused: residual += y; output = RMSNorm(residual)
    case siluGate(output: PlanBuffer, input: PlanBuffer)                     // output = silu(input[:, :inner])
    case mulUp(output: PlanBuffer, input: PlanBuffer)                        // output = output * input[:, inner:]
    case swiGLU(output: PlanBuffer, input: PlanBuffer)                       // fused: silu(input[:, :inner]) * input[:, inner:]
}

public enum LayerPlan {
    /// The layer as separate steps, in the config's residual form.
    public static func unfused(_ c: ModelConfig) -> [PlanOp] {
        c.residual == .deepNorm ? deepNorm(c) : preNorm(c)
    }

    /// DeepNorm post-LN, GLM-130B or ChatGLM feed-forward.
    static func deepNorm(_ c: ModelConfig) -> [PlanOp] {
        var ops: [PlanOp] = [
            .matmul(.qkv, input: .x, output: .qkv, bias: nil), .addBias(.qkv, .qkv),
            .rope, .attention,
            .matmul(.attentionOutput, input: .attended, output: .projected, bias: nil), .addBias(.projected, .attentionOutput),
            .scaleAdd(output: .residual, x: .x, y: .projected), .layerNorm(output: .y, input: .residual, .ffn),
            .matmul(.ffnUp, input: .y, output: .up, bias: nil), .addBias(.up, .ffnUp),
        ]
        switch c.feedForward {
        case .gegluErf: ops += [.geluGate(output: .activated, input: .up), .mulGate(output: .activated, input: .up)]
        case .geluTanh: ops += [.gelu(output: .activated, input: .up)]
        case .swiglu: ops += [.siluGate(output: .activated, input: .up), .mulUp(output: .activated, input: .up)]
        }
        ops += [
            .matmul(.ffnDown, input: .activated, output: .down, bias: nil), .addBias(.down, .ffnDown),
            .scaleAdd(output: .residual, x: .y, y: .down), .layerNorm(output: .x, input: .residual, .next),
        ]
        return ops
    }

    /// Pre-norm (ChatGLM2/3, GLM-4): x = x + f(norm(x)) per sublayer, each layer starting
    /// from the residual stream alone (so a pipeline stage hands on x only); the sandwich
    /// form norms each sublayer's output before its add. Biases as the config has them.
    static func preNorm(_ c: ModelConfig) -> [PlanOp] {
        let sandwich = c.residual == .sandwich
        func product(_ w: PlanWeight, _ input: PlanBuffer, _ output: PlanBuffer, _ bias: PlanBias, _ has: Bool) -> [PlanOp] {
            [.matmul(w, input: input, output: output, bias: nil)] + (has ? [.addBias(output, bias)] : [])
        }
        func add(_ branch: PlanBuffer, _ norm: PlanNorm) -> [PlanOp] {
            sandwich ? [.rmsNorm(output: .branch, input: branch, norm), .residualAdd(.x, .branch)] : [.residualAdd(.x, branch)]
        }
        var ops: [PlanOp] = [.rmsNorm(output: .normed, input: .x, .attention)]
        ops += product(.qkv, .normed, .qkv, .qkv, c.qkvBias)
        ops += [.rope, .attention]
        ops += product(.attentionOutput, .attended, .projected, .attentionOutput, c.linearBias)
        ops += add(.projected, .postAttention)
        ops += [.rmsNorm(output: .normed, input: .x, .ffn)]
        ops += product(.ffnUp, .normed, .up, .ffnUp, c.linearBias)
        switch c.feedForward {
        case .swiglu: ops += [.siluGate(output: .activated, input: .up), .mulUp(output: .activated, input: .up)]
        case .gegluErf: ops += [.geluGate(output: .activated, input: .up), .mulGate(output: .activated, input: .up)]
        case .geluTanh: ops += [.gelu(output: .activated, input: .up)]
        }
        ops += product(.ffnDown, .activated, .down, .ffnDown, c.linearBias)
        ops += add(.down, .postFFN)
        return ops
    }

    /// The fused plan the runtime runs by default.
    public static func fused(_ c: ModelConfig) -> [PlanOp] { FusionPass.run(unfused(c)) }
}

/// Rewrites chains of element-wise steps into fused kernels, first match wins:
///  - bias add + GeGLU gate + multiply  -> bias_geglu
///  - bias add + GeLU                   -> bias_gelu
///  - mat-mat + bias add                -> mat-mat with the bias in its epilogue
///  - residual scale-add + LayerNorm    -> residual_layernorm
///  - SiLU gate + multiply              -> SwiGLU in one pass
///  - residual add + RMSNorm of the sum -> residual_rmsnorm
public enum FusionPass {
    public static func run(_ ops: [PlanOp]) -> [PlanOp] {
        var out: [PlanOp] = []
        var i = 0
        while i < ops.count {
            let rest = Array(ops[i...])
            if rest.count >= 3, case let .addBias(b, bias) = rest[0], case let .geluGate(o, input) = rest[1], input == b,
               case let .mulGate(o2, input2) = rest[2], o2 == o, input2 == b {
                out.append(.biasGeGLU(output: o, input: b, bias))
                i += 3
            } else if rest.count >= 2, case let .addBias(b, bias) = rest[0], case let .gelu(o, input) = rest[1], input == b {
                out.append(.biasGeLU(output: o, input: b, bias))
                i += 2
            } else if rest.count >= 2, case let .matmul(w, input, output, nil) = rest[0], case let .addBias(b, bias) = rest[1], b == output,
                      !isActivationInput(ops, after: i + 1, buffer: output) {
                out.append(.matmul(w, input: input, output: output, bias: bias))
                i += 2
            } else if rest.count >= 2, case let .siluGate(o, input) = rest[0], case let .mulUp(o2, input2) = rest[1], o2 == o, input2 == input {
                out.append(.swiGLU(output: o, input: input))
                i += 2
            } else if rest.count >= 2, case let .residualAdd(r, y) = rest[0], case let .rmsNorm(o, input, norm) = rest[1], input == r {
                out.append(.residualRMSNorm(output: o, residual: r, y: y, norm))
                i += 2
            } else if rest.count >= 2, case let .scaleAdd(r, x, y) = rest[0], case let .layerNorm(o, input, norm) = rest[1], input == r {
                out.append(.residualLayerNorm(output: o, x: x, y: y, norm))
                i += 2
            } else {
                out.append(ops[i])
                i += 1
            }
        }
        return out
    }

    /// Whether the bias add at `index` feeds an activation it can fuse with instead.
    private static func isActivationInput(_ ops: [PlanOp], after index: Int, buffer: PlanBuffer) -> Bool {
        guard index + 1 < ops.count else { return false }
        switch ops[index + 1] {
        case let .geluGate(_, input), let .gelu(_, input): return input == buffer
        default: return false
        }
    }
}
