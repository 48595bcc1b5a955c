// ModelConfig+GGUF.swift — ModelConfig to and from a model file's metadata.

extension ModelConfig {
    /// Reads the configuration of `file`; the architecture must be registered.
    public init(gguf file: GGUFFile) throws {
        let source = file.path.lastPathComponentForErrors
        func value(_ key: String) throws -> GGUFValue {
            guard let v = file.metadata[key] else { throw ModelFileError.missingKey(file: source, key: key) }
            return v
        }
        func int(_ key: String) throws -> Int {
            let v = try value(key)
            guard let i = v.intValue else { throw ModelFileError.wrongKeyType(file: source, key: key, expected: "integer", actual: "\(v.type)") }
            return i
        }
        func float(_ key: String) throws -> Float {
            let v = try value(key)
            guard let f = v.floatValue else { throw ModelFileError.wrongKeyType(file: source, key: key, expected: "number", actual: "\(v.type)") }
            return Float(f)
        }
        func token(_ key: String) throws -> Int32 {
            let id = try int(key)
            guard let v = Int32(exactly: id), v >= 0 else {
                throw ModelFileError.malformed(file: source, what: "'\(key)' = \(id) is not a token id")
            }
            return v
        }
        /// An optional id: absent, or stored as 0xFFFFFFFF (the common "none" marker), is nil.
        func optionalToken(_ key: String) throws -> Int32? {
            guard let value = file.metadata[key] else { return nil }
            if value.intValue == 0xFFFF_FFFF || value.intValue == -1 { return nil }
            return try token(key)
        }

        let archValue = try value(ModelKeys.architecture)
        guard let arch = archValue.stringValue else {
            throw ModelFileError.wrongKeyType(file: source, key: ModelKeys.architecture, expected: "string", actual: "\(archValue.type)")
        }
        guard let architecture = Architectures.named(arch) else {
            throw ModelFileError.unknownArchitecture(file: source, name: arch, known: Architectures.names)
        }
        let tokens = SpecialTokens(mask: try token(ModelKeys.maskToken), gmask: try token(ModelKeys.gmaskToken),
                                   smask: try optionalToken(ModelKeys.smaskToken),
                                   sop: try token(ModelKeys.sopToken), eop: try token(ModelKeys.eopToken),
                                   eos: try token(ModelKeys.eosToken), pad: try optionalToken(ModelKeys.padToken))
        func optionalInt(_ key: String) throws -> Int? { file.metadata[key] == nil ? nil : try int(key) }
        self.init(architecture: arch, layers: try int(ModelKeys.blockCount(arch)), hidden: try int(ModelKeys.embeddingLength(arch)),
                  heads: try int(ModelKeys.headCount(arch)), headDim: try int(ModelKeys.keyLength(arch)),
                  ffnInner: try int(ModelKeys.feedForwardLength(arch)), vocab: try int(ModelKeys.vocabSize(arch)),
                  contextLength: try int(ModelKeys.contextLength(arch)), layerNormEps: try float(ModelKeys.layerNormEps(arch)),
                  ropeBase: try float(ModelKeys.ropeBase(arch)), rope: architecture.rope,
                  feedForward: architecture.feedForward, tiedOutput: file.tensorInfo(TensorNames.output) == nil,
                  tokens: tokens, alpha: try float(ModelKeys.residualAlpha(arch)), kvHeads: try optionalInt(ModelKeys.headCountKV(arch)),
                  norm: architecture.norm, residual: architecture.residual, rotaryDim: try optionalInt(ModelKeys.ropeDimensionCount(arch)),
                  // DeepNorm layers always have their biases (a missing one is a missing tensor at load);
                  // the kin have those their checkpoint had
                  qkvBias: architecture.residual == .deepNorm || file.tensorInfo(TensorNames.qkvBias(0)) != nil,
                  linearBias: architecture.residual == .deepNorm || file.tensorInfo(TensorNames.attentionOutputBias(0)) != nil)
        if let format = file.metadata[ModelKeys.chatFormat(arch)] {
            guard let f = format.stringValue.flatMap(ChatFormat.init(rawValue:)) else {
                throw ModelFileError.malformed(file: source, what: "'\(ModelKeys.chatFormat(arch))' is not chatglm2 or roles")
            }
            chatFormat = f
        }
        try validate(source: source)
    }

    /// Writes the configuration's keys (the inverse of init(gguf:)).
    public func write(to writer: inout GGUFWriter) {
        let a = architecture
        writer.set(ModelKeys.architecture, .string(a))
        writer.set(ModelKeys.blockCount(a), .uint32(UInt32(layers)))
        writer.set(ModelKeys.embeddingLength(a), .uint32(UInt32(hidden)))
        writer.set(ModelKeys.headCount(a), .uint32(UInt32(heads)))
        writer.set(ModelKeys.headCountKV(a), .uint32(UInt32(kvHeads)))
        if let declaredRotaryDim { writer.set(ModelKeys.ropeDimensionCount(a), .uint32(UInt32(declaredRotaryDim))) }
        writer.set(ModelKeys.keyLength(a), .uint32(UInt32(headDim)))
        writer.set(ModelKeys.feedForwardLength(a), .uint32(UInt32(ffnInner)))
        writer.set(ModelKeys.vocabSize(a), .uint32(UInt32(vocab)))
        writer.set(ModelKeys.contextLength(a), .uint32(UInt32(contextLength)))
        writer.set(ModelKeys.layerNormEps(a), .float32(layerNormEps))
        writer.set(ModelKeys.ropeBase(a), .float32(ropeBase))
        writer.set(ModelKeys.residualAlpha(a), .float32(alpha))
        if let chatFormat { writer.set(ModelKeys.chatFormat(a), .string(chatFormat.rawValue)) }
        writer.set(ModelKeys.maskToken, .uint32(UInt32(tokens.mask)))
        writer.set(ModelKeys.gmaskToken, .uint32(UInt32(tokens.gmask)))
        if let smask = tokens.smask { writer.set(ModelKeys.smaskToken, .uint32(UInt32(smask))) }
        writer.set(ModelKeys.sopToken, .uint32(UInt32(tokens.sop)))
        writer.set(ModelKeys.bosToken, .uint32(UInt32(tokens.sop)))
        writer.set(ModelKeys.eopToken, .uint32(UInt32(tokens.eop)))
        writer.set(ModelKeys.eosToken, .uint32(UInt32(tokens.eos)))
        if let pad = tokens.pad { writer.set(ModelKeys.padToken, .uint32(UInt32(pad))) }
    }
}
