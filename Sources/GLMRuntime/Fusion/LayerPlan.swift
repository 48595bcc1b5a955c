// LayerPlan.swift — a transformer layer as a list of operations over named
// buffers. `unfused` is the layer as the reference code writes it: every
// bias add, residual scale-add, LayerNorm and activation its own pass over
// memory. FusionPass rewrites chains of those into the fused kernels.
// Attention is one operation in both: its scale and mask live inside the
// tiled kernel, which never materialises the score matrix.

public enum PlanBuffer: Hashable, Sendable, CaseIterable {
    case x          // (m, hidden) layer input, already normalised (DeepNorm: the residual is LN(x))
    case qkv        // (m, 3 hidden) per head [q | k | v]
    case attended   // (m, hidden)
    case projected  // (m, hidden)
    case residual   // (m, hidden) x * alpha + sublayer(x), before LayerNorm (unfused only)
    case y          // (m, hidden) LN2 output
    case up         // (m, up rows)
    case activated  // (m, inner)
    case down       // (m, hidden)
}

public enum PlanWeight: Sendable, Equatable { case qkv, attentionOutput, ffnUp, ffnDown }
public enum PlanBias: Sendable, Equatable { case qkv, attentionOutput, ffnUp, ffnDown }
/// attention: this layer's LN2; next: the next layer's LN1 (or the final LayerNorm after the last layer).
public enum PlanNorm: Sendable, Equatable { case ffn, next }

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
}

public enum LayerPlan {
    /// The layer as separate steps (DeepNorm post-LN, GLM-130B or ChatGLM feed-forward).
    public static func unfused(_ c: ModelConfig) -> [PlanOp] {
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
        }
        ops += [
            .matmul(.ffnDown, input: .activated, output: .down, bias: nil), .addBias(.down, .ffnDown),
            .scaleAdd(output: .residual, x: .y, y: .down), .layerNorm(output: .x, input: .residual, .next),
        ]
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
