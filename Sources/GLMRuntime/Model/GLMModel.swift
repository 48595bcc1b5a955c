// GLMModel.swift — a loaded GLM model: its configuration and its weights,
// which stay in the memory-mapped model file (no copy) except the small FP32
// norm and bias vectors. Every tensor's shape is checked against the config.

import KernelBridge

public struct LayerWeights: Sendable {
    public init(attentionNormWeight: [Float], attentionNormBias: [Float]?, qkv: WeightMatrix, qkvBias: [Float]?,
                attentionOutput: WeightMatrix, attentionOutputBias: [Float]?, ffnNormWeight: [Float], ffnNormBias: [Float]?,
                ffnUp: WeightMatrix, ffnUpBias: [Float]?, ffnDown: WeightMatrix, ffnDownBias: [Float]?,
                postAttentionNormWeight: [Float]? = nil, postFFNNormWeight: [Float]? = nil) {
        self.attentionNormWeight = attentionNormWeight
        self.attentionNormBias = attentionNormBias
        self.qkv = qkv
        self.qkvBias = qkvBias
        self.attentionOutput = attentionOutput
        self.attentionOutputBias = attentionOutputBias
        self.ffnNormWeight = ffnNormWeight
        self.ffnNormBias = ffnNormBias
        self.ffnUp = ffnUp
        self.ffnUpBias = ffnUpBias
        self.ffnDown = ffnDown
        self.ffnDownBias = ffnDownBias
        self.postAttentionNormWeight = postAttentionNormWeight
        self.postFFNNormWeight = postFFNNormWeight
    }

    // Norm biases exist for LayerNorm only; product biases as the config says (ModelConfig.qkvBias, linearBias).
    public let attentionNormWeight: [Float], attentionNormBias: [Float]?  // (hidden)
    public let qkv: WeightMatrix                                          // (QKV rows, hidden), see TensorNames.qkvWeight
    public let qkvBias: [Float]?                                          // (QKV rows)
    public let attentionOutput: WeightMatrix                              // (hidden, heads x head dim)
    public let attentionOutputBias: [Float]?                              // (hidden)
    public let ffnNormWeight: [Float], ffnNormBias: [Float]?              // (hidden)
    public let ffnUp: WeightMatrix                                        // (up rows, hidden)
    public let ffnUpBias: [Float]?                                        // (up rows)
    public let ffnDown: WeightMatrix                                      // (hidden, inner)
    public let ffnDownBias: [Float]?                                      // (hidden)
    /// The sandwich residual's branch-output norms (GLM-4-0414).
    public let postAttentionNormWeight: [Float]?, postFFNNormWeight: [Float]?
}

public final class GLMModel: Sendable {
    public let config: ModelConfig
    public let architecture: any GLMArchitecture.Type
    /// The model file the weights live in; nil for a model built in memory (the bench's).
    public let file: GGUFFile?
    public let tokenEmbedding: WeightMatrix          // (vocab, hidden)
    public let layers: [LayerWeights]
    public let outputNormWeight: [Float], outputNormBias: [Float]?
    /// The output projection: the token embedding when tied.
    public let output: WeightMatrix                   // (vocab, hidden)

    public convenience init(path: String) throws {
        try self.init(file: GGUFFile(path: path))
    }

    public init(file: GGUFFile) throws {
        let config = try ModelConfig(gguf: file)
        guard let arch = Architectures.named(config.architecture) else {
            throw ModelFileError.unknownArchitecture(file: file.path, name: config.architecture, known: Architectures.names)
        }
        self.config = config
        self.file = file
        architecture = arch
        let source = file.path.lastPathComponentForErrors
        let h = config.hidden

        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> WeightMatrix {
            guard let info = file.tensorInfo(name) else { throw ModelFileError.missingTensor(file: source, tensor: name) }
            guard info.shape == [rows, cols] else { throw ModelFileError.tensorShape(file: source, tensor: name, expected: [rows, cols], actual: info.shape) }
            return try file.matrix(name)
        }
        func vector(_ name: String, _ count: Int) throws -> [Float] {
            guard let info = file.tensorInfo(name) else { throw ModelFileError.missingTensor(file: source, tensor: name) }
            guard info.shape == [count] else { throw ModelFileError.tensorShape(file: source, tensor: name, expected: [count], actual: info.shape) }
            return try file.floats(name)
        }

        let (layerNorm, sandwich) = (config.norm == .layerNorm, config.residual == .sandwich)
        /// A tensor the config says the model has, else nil.
        func vector(_ name: String, _ count: Int, if present: Bool) throws -> [Float]? { present ? try vector(name, count) : nil }
        tokenEmbedding = try matrix(TensorNames.tokenEmbedding, config.vocab, h)
        // a loop rather than map: map would reserve room for `layers` entries before
        // the first missing tensor is noticed, and a corrupt count can be huge
        var layers: [LayerWeights] = []
        for i in 0..<config.layers {
            layers.append(LayerWeights(
                attentionNormWeight: try vector(TensorNames.attentionNormWeight(i), h),
                attentionNormBias: try vector(TensorNames.attentionNormBias(i), h, if: layerNorm),
                qkv: try matrix(TensorNames.qkvWeight(i), config.qkvWidth, h),
                qkvBias: try vector(TensorNames.qkvBias(i), config.qkvWidth, if: config.qkvBias),
                attentionOutput: try matrix(TensorNames.attentionOutputWeight(i), h, config.attentionWidth),
                attentionOutputBias: try vector(TensorNames.attentionOutputBias(i), h, if: config.linearBias),
                ffnNormWeight: try vector(TensorNames.ffnNormWeight(i), h),
                ffnNormBias: try vector(TensorNames.ffnNormBias(i), h, if: layerNorm),
                ffnUp: try matrix(TensorNames.ffnUpWeight(i), config.ffnUpRows, h),
                ffnUpBias: try vector(TensorNames.ffnUpBias(i), config.ffnUpRows, if: config.linearBias),
                ffnDown: try matrix(TensorNames.ffnDownWeight(i), h, config.ffnInner),
                ffnDownBias: try vector(TensorNames.ffnDownBias(i), h, if: config.linearBias),
                postAttentionNormWeight: try vector(TensorNames.postAttentionNormWeight(i), h, if: sandwich),
                postFFNNormWeight: try vector(TensorNames.postFFNNormWeight(i), h, if: sandwich)))
        }
        self.layers = layers
        outputNormWeight = try vector(TensorNames.outputNormWeight, h)
        outputNormBias = try vector(TensorNames.outputNormBias, h, if: layerNorm)
        output = config.tiedOutput ? tokenEmbedding : try matrix(TensorNames.output, config.vocab, h)
    }

    /// A model from weights already in memory (the bench's synthetic layers).
    public init(config: ModelConfig, tokenEmbedding: WeightMatrix, layers: [LayerWeights],
                outputNormWeight: [Float], outputNormBias: [Float]?, output: WeightMatrix? = nil) throws {
        try config.validate(source: "in-memory model")
        guard let arch = Architectures.named(config.architecture) else {
            throw ModelFileError.unknownArchitecture(file: "in-memory model", name: config.architecture, known: Architectures.names)
        }
        self.config = config
        architecture = arch
        file = nil
        self.tokenEmbedding = tokenEmbedding
        self.layers = layers
        self.outputNormWeight = outputNormWeight
        self.outputNormBias = outputNormBias
        self.output = output ?? tokenEmbedding
    }

    /// Bytes of all weights as stored.
    public var weightBytes: Int {
        let matrices = [tokenEmbedding] + layers.flatMap { [$0.qkv, $0.attentionOutput, $0.ffnUp, $0.ffnDown] } + (config.tiedOutput ? [] : [output])
        return matrices.reduce(0) { $0 + $1.byteCount }
    }

    /// Bytes one layer's matrices stream per token.
    public var layerWeightBytes: Int {
        guard let l = layers.first else { return 0 }
        return [l.qkv, l.attentionOutput, l.ffnUp, l.ffnDown].reduce(0) { $0 + $1.byteCount }
    }
}
