// FuzzTargets.swift — one entry point per parser of untrusted input, each
// taking the raw bytes a fuzzer (or a replayed corpus file) supplies. Every
// thrown error is the parser saying no, which is fine; a trap, an overflow, a
// hang or an unbounded allocation is a finding. scripts/fuzz runs them under
// libFuzzer with AddressSanitizer; RuntimeTests replays their corpora.
//
// Inputs that are files on disk in real use (GGUF, safetensors, torch .bin,
// SAT folders) are written to a per-process scratch folder first, so the
// real code path (mmap included) is what runs.

import Foundation
import GLMRuntime

public enum FuzzTargets {
    public struct Target: Sendable {
        public let name: String
        public let summary: String
        /// Runs one input; false when the parser refused it (a thrown error), true when it got through.
        public let run: @Sendable ([UInt8]) -> Bool
    }

    public static let all: [Target] = [
        Target(name: "gguf", summary: "model file -> config -> tokenizer -> a short forward pass", run: gguf),
        Target(name: "safetensors", summary: "safetensors header and every tensor read as FP32", run: safetensors),
        Target(name: "torch-bin", summary: "ZIP + pickle (torch.save .bin) and every tensor", run: torchBin),
        Target(name: "sat", summary: "a SAT folder: 2-byte config length, config.json, then mp_rank_00_model_states.pt", run: sat),
        Target(name: "config-json", summary: "config.json -> each architecture's ModelConfig -> its tensor plan", run: configJSON),
        Target(name: "sentencepiece", summary: "SentencePiece .model -> encode and decode of fixed and fuzzed text", run: sentencePiece),
        Target(name: "prompt", summary: "prompt text -> prompt builder (special spellings, invalid UTF-8) -> decode", run: prompt),
        Target(name: "bench-json", summary: "bench results JSON -> machine rates", run: benchJSON),
        Target(name: "tiktoken", summary: "a tiktoken rank file (GLM-4-9B's tokenizer.model) -> encode and decode", run: tiktoken),
        Target(name: "tokenizer-json", summary: "a Hugging Face tokenizer.json (GLM-4-0414's) -> encode and decode", run: tokenizerJSON),
    ]

    public static func named(_ name: String) -> Target? { all.first { $0.name == name } }

    /// The target a libFuzzer build runs: GLM_FUZZ_TARGET's.
    public static let selected: Target? = ProcessInfo.processInfo.environment["GLM_FUZZ_TARGET"].flatMap(named)

    // MARK: - Scratch files

    private static let scratch: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-fuzz-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func write(_ bytes: [UInt8], _ name: String) -> String {
        let path = scratch + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    // MARK: - Targets

    static func gguf(_ bytes: [UInt8]) -> Bool {
        let path = write(bytes, "model.gguf")
        guard let file = try? GGUFFile(path: path) else { return false }
        _ = try? TextTokenizers.load(gguf: file).map { tokenizer in
            let ids = tokenizer.encode("The meaning of life 床前明月光 \n\t  x")
            _ = try? tokenizer.decode(ids)
        }
        guard let model = try? GLMModel(file: file) else { return false }
        let c = model.config
        guard let session = try? InferenceSession(model: model, capacity: min(8, c.contextLength)) else { return false }
        let ids = [Int32(0), Int32(min(c.vocab - 1, 1)), c.tokens.gmask, c.tokens.sop].filter { $0 >= 0 && Int($0) < c.vocab }
        guard !ids.isEmpty else { return false }
        // a forward pass either throws (non-finite logits included) or returns finite logits
        return (try? session.forward(Array(ids.prefix(session.capacity)))) != nil
    }

    static func safetensors(_ bytes: [UInt8]) -> Bool {
        guard let file = try? SafeTensorsFile(path: write(bytes, "model.safetensors")) else { return false }
        return file.names.allSatisfy { (try? file.floats($0)) != nil }
    }

    static func torchBin(_ bytes: [UInt8]) -> Bool {
        guard let file = try? TorchCheckpoint(path: write(bytes, "pytorch_model.bin")) else { return false }
        return file.names.allSatisfy { (try? file.floats($0)) != nil }
    }

    static func sat(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 2 else { return false }
        let length = min(Int(bytes[0]) | Int(bytes[1]) << 8, bytes.count - 2)
        let folder = scratch + "/sat"
        try? FileManager.default.removeItem(atPath: folder)
        try? FileManager.default.createDirectory(atPath: folder + "/1", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/config.json", contents: Data(bytes[2..<(2 + length)]))
        FileManager.default.createFile(atPath: folder + "/latest", contents: Data("1".utf8))
        FileManager.default.createFile(atPath: folder + "/1/mp_rank_00_model_states.pt", contents: Data(bytes[(2 + length)...]))
        guard let checkpoint = try? CheckpointFolder.open(folder) else { return false }
        return checkpoint.names.prefix(64).allSatisfy { (try? checkpoint.floats($0)) != nil }
    }

    static func configJSON(_ bytes: [UInt8]) -> Bool {
        guard let json = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else { return false }
        var accepted = false
        for arch in Architectures.all where arch.recognises(checkpointConfig: json) {
            guard let config = try? arch.config(fromCheckpoint: json, source: "config.json"),
                  (try? config.validate(source: "config.json")) != nil else { continue }
            _ = arch.checkpointTensors(config).count
            accepted = true
        }
        return accepted
    }

    /// The fixed texts every fuzzed model encodes, then the input's tail as text.
    private static let texts = ["", " ", "The meaning of life", "床前明月光，\n疑是地上霜。", "  a  b\t[MASK] 🙂 ﬁ ①"]

    /// Encodes the fixed texts and decodes what came out: a byte-level tokenizer is lossless.
    private static func roundTrips(_ bpe: ByteLevelBPE) -> Bool {
        texts.allSatisfy { (try? bpe.decode(bpe.encode($0))) == $0 }
    }

    static func tiktoken(_ bytes: [UInt8]) -> Bool {
        guard let bpe = try? ByteLevelBPE(tiktoken: Data(bytes), specialTokens: nil, source: "fuzz.tiktoken") else { return false }
        precondition(roundTrips(bpe), "a tiktoken tokenizer that loads must decode its own encodings back")
        return true
    }

    static func tokenizerJSON(_ bytes: [UInt8]) -> Bool {
        guard let bpe = try? ByteLevelBPE(tokenizerJSON: Data(bytes), source: "fuzz.json") else { return false }
        precondition(roundTrips(bpe), "a tokenizer.json that loads must decode its own encodings back")
        return true
    }

    static func sentencePiece(_ bytes: [UInt8]) -> Bool {
        guard let vocabulary = try? TokenizerVocabulary(sentencePieceModel: bytes, file: "fuzz.model") else { return false }
        let tokenizer = Tokenizer(vocabulary)
        let tail = String(decoding: bytes.suffix(48), as: UTF8.self)
        for text in texts + [tail] {
            let ids = tokenizer.encode(text)
            _ = try? tokenizer.decode(ids)
            for layout in [TokenizerLayout.chatglm(offset: 20000), .icetk(offset: 20000)] {
                let glm = GLMTokenizer(tokenizer, layout: layout)
                _ = try? glm.decode(glm.encode(text, addDummyPrefix: false))
            }
        }
        return (try? tokenizer.decode((0..<Int32(min(tokenizer.count, 512))).map { $0 })) != nil
    }

    /// The ice_text-shaped fixture model and the golden GLM-130B special ids.
    private static let promptBuilder: PromptBuilder? = {
        let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizer/glm/ice_text.model").path
        guard let vocabulary = try? TokenizerVocabulary(sentencePieceModelAt: model) else { return nil }
        let tokens = SpecialTokens(mask: 21500, gmask: 21501, smask: 21502, sop: 21504, eop: 21505, eos: 20002, pad: nil)
        let config = ModelConfig(architecture: GLM130B.name, layers: 1, hidden: 64, heads: 4, headDim: 16, ffnInner: 64,
                                 vocab: 21900, contextLength: 2048, layerNormEps: 1e-5, ropeBase: 10000, rope: .oneD,
                                 feedForward: .gegluErf, tiedOutput: true, tokens: tokens, alpha: 2)
        return PromptBuilder(tokenizer: GLMTokenizer(Tokenizer(vocabulary), layout: .icetk(offset: 20000)), config: config)
    }()

    static func prompt(_ bytes: [UInt8]) -> Bool {
        guard let builder = promptBuilder, let text = String(validating: bytes, as: UTF8.self) else { return false }
        var accepted = false
        for mode in [PromptMode.continueText, .fillBlank] {
            guard let ids = try? builder.build(text, mode: mode) else { continue }
            _ = try? builder.decode(ids)
            _ = ids.map(builder.pieceName)
            accepted = true
        }
        _ = ChatGLM6B.postprocessResponse(text)
        return accepted
    }

    static func benchJSON(_ bytes: [UInt8]) -> Bool {
        (try? MachineRates(benchResults: bytes, file: "results.json")) != nil
    }
}
