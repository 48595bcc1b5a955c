// PlanExecution.swift — how InferenceSession runs one PlanOp on its buffers.

import KernelBridge

struct LayerContext {
    let index: Int
    let weights: LayerWeights
    let nextNorm: (weight: [Float], bias: [Float])
    let tokens: Int
    let start: Int
    let positions: [Int32]
    let blocks: [Int32]
    let bidirectional: Int
}

extension InferenceSession {
    /// The buffer's width in floats per token.
    func width(_ b: PlanBuffer) -> Int {
        let c = model.config
        switch b {
        case .x, .attended, .projected, .residual, .y, .down: return c.hidden
        case .qkv: return 3 * c.hidden
        case .up: return c.ffnUpRows
        case .activated: return c.ffnInner
        }
    }

    func weight(_ w: PlanWeight, _ l: LayerWeights) -> WeightMatrix {
        switch w {
        case .qkv: return l.qkv
        case .attentionOutput: return l.attentionOutput
        case .ffnUp: return l.ffnUp
        case .ffnDown: return l.ffnDown
        }
    }

    func bias(_ b: PlanBias, _ l: LayerWeights) -> [Float] {
        switch b {
        case .qkv: return l.qkvBias
        case .attentionOutput: return l.attentionOutputBias
        case .ffnUp: return l.ffnUpBias
        case .ffnDown: return l.ffnDownBias
        }
    }

    func norm(_ n: PlanNorm, _ c: LayerContext) -> (weight: [Float], bias: [Float]) {
        n == .ffn ? (c.weights.ffnNormWeight, c.weights.ffnNormBias) : c.nextNorm
    }
}
