// EndToEndBench.swift — tokens per second through L GLM-130B-shaped layers
// (hidden 12288, 96 heads, GeGLU inner 32768) with random INT4 weights in
// GLM-130B's per-row format (q4_row) held in memory, prefill and decode, at each thread count; then the extrapolation
// to the full 70-layer model with its 150528-token embedding.

import GLMRuntime
import KernelBridge

struct EndToEndBench {
    let machine: MachineFigures
    let quick: Bool
    let repetitions: Int
    let log: (String) -> Void

    /// GLM-130B's layer shape (or a small one for --quick), with `layers` layers and a small vocabulary:
    /// the embedding and output projection are accounted for by the extrapolation instead.
    func config(layers: Int) -> ModelConfig {
        var c = Architectures.preset("glm-130b")!
        if quick { (c.hidden, c.heads, c.kvHeads, c.headDim, c.ffnInner) = (256, 4, 4, 64, 704) }
        c.layers = layers
        c.vocab = 1024
        c.tokens = SpecialTokens(mask: 1, gmask: 2, smask: 3, sop: 4, eop: 5, eos: 6, pad: nil)
        return c
    }

    func model(layers: Int) throws -> GLMModel { try SyntheticModel.build(config(layers: layers), type: .q4Row) }

    func run(layers: Int, threadCounts: [Int]) throws -> [EndToEndFigure] {
        log("building \(layers) GLM-130B-shaped layer(s) with random INT4 weights (q4_row, GLM-130B's per-row format) ...")
        let glm = try model(layers: layers)
        let promptLength = quick ? 16 : 128
        let decodeSteps = quick ? 4 : 8
        let prompt = (0..<promptLength).map { Int32(10 + $0 % 1000) }
        var out: [EndToEndFigure] = []
        for threads in threadCounts {
          for fused in [true, false] {
            try Threads.configure(count: threads)
            let session = try InferenceSession(model: glm, capacity: promptLength + decodeSteps + 1, fusion: fused)
            let prefill = try measure(warmup: 1, repetitions: max(2, repetitions / 2)) {
                session.reset()
                _ = try session.forward(prompt)
            }
            // decode: each single-token step after the prompt is one sample (the cache grows
            // by one token per step, a negligible change at these lengths); the median step
            var step = 0
            let decode = try measure(warmup: 0, repetitions: decodeSteps) {
                _ = try session.forward([Int32(20 + step)])
                step += 1
            }
            let perToken = decode.median
            let bound = Double(glm.layerWeightBytes * layers) / (machine.limit(threads: threads).read_gbps * 1e9)
            let figures = [
                EndToEndFigure(layers: layers, phase: "prefill", tokens: promptLength, threads: threads, fused: fused,
                               median_s: prefill.median, spread: prefill.spread, tokens_per_s: Double(promptLength) / prefill.median,
                               fraction_of_bandwidth_bound: nil),
                EndToEndFigure(layers: layers, phase: "decode", tokens: decodeSteps, threads: threads, fused: fused,
                               median_s: perToken, spread: decode.spread, tokens_per_s: 1 / perToken,
                               fraction_of_bandwidth_bound: bound / perToken),
            ]
            figures.forEach { log(Table.endToEndRow($0)) }
            out += figures
          }
        }
        out += try longPrefill(glm, layers: layers, threads: threadCounts.last!)
        for threads in threadCounts {
            for phase in ["prefill", "decode"] {
                let f = out.first { $0.threads == threads && $0.phase == phase && $0.fused }!
                let u = out.first { $0.threads == threads && $0.phase == phase && !$0.fused }!
                log(String(format: "fusion, %d thread(s), %@: fused %.2f vs unfused %.2f tokens/s: %.3fx", threads, phase,
                           f.tokens_per_s, u.tokens_per_s, f.tokens_per_s / u.tokens_per_s))
            }
        }
        return out
    }

    /// A 512-token prompt (32 for --quick) at all threads, fused, with FP32 activations and
    /// with 8-bit ones (the int8 mat-mat; only where the CPU has it): tokens per second and
    /// the layers' equivalent flops against the FP32 FMA peak.
    func longPrefill(_ glm: GLMModel, layers: Int, threads: Int) throws -> [EndToEndFigure] {
        try Threads.configure(count: threads)
        let c = glm.config
        let length = quick ? 32 : 512
        let prompt = (0..<length).map { Int32(10 + $0 % 1000) }
        let products = 2.0 * Double(length) * Double(c.hidden * (3 * c.hidden + c.hidden + c.ffnUpRows) + c.ffnInner * c.hidden)
        let attention = 4.0 * Double(c.heads * c.headDim) * Double(length * length)
        let flops = Double(layers) * (products + attention)
        var out: [EndToEndFigure] = []
        for precision in [ActivationPrecision.f32, .q8] where precision == .f32 || Kernels.hasFastInt8MatMul {
            let session = try InferenceSession(model: glm, capacity: length, kernels: Kernels(activations: precision), fusion: true)
            let t = try measure(warmup: 0, repetitions: 2) {
                session.reset()
                _ = try session.forward(prompt)
            }
            var f = EndToEndFigure(layers: layers, phase: "prefill", tokens: length, threads: threads, fused: true,
                                   median_s: t.median, spread: t.spread, tokens_per_s: Double(length) / t.median,
                                   fraction_of_bandwidth_bound: nil)
            f.activations = precision.rawValue
            f.fraction_of_fma_peak = flops / t.median / 1e9 / machine.limit(threads: threads).fma_gflops
            log(Table.endToEndRow(f))
            out.append(f)
        }
        return out
    }

    /// Seconds per token for 70 layers plus the 150528 x 12288 INT4 output projection
    /// (streamed at the measured INT4 mat-vec rate) — GLM-130B on this machine.
    func extrapolate(_ figures: [EndToEndFigure], kernels: [KernelFigure], layers: Int) -> Extrapolation? {
        let threads = figures.map(\.threads).max() ?? 1
        guard let decode = figures.first(where: { $0.phase == "decode" && $0.threads == threads && $0.fused }),
              let prefill = figures.first(where: { $0.phase == "prefill" && $0.threads == threads && $0.fused }) else { return nil }
        // q4_row: half a byte per weight plus one fp16 scale per row
        let g = glm130b, h = g.hidden
        let rows = Double(g.ffnUpRows + 3 * h + h + h)
        let layerBytes = Double(g.ffnUpRows * h + 3 * h * h + h * h + h * g.ffnInner) / 2 + 2 * rows
        let embeddingBytes = Double(g.vocab) * Double(h) / 2 + 2 * Double(g.vocab)
        let int4Rate = kernels.filter { $0.op.hasPrefix("matvec") && $0.weight_type == "q4_row" && $0.threads == threads }.map(\.gbps).max()
            ?? machine.limit(threads: threads).read_gbps
        let perLayerDecode = decode.median_s / Double(layers)
        let perLayerPrefill = prefill.median_s / Double(prefill.tokens) / Double(layers)
        let output = embeddingBytes / (int4Rate * 1e9)
        let depth = Double(g.layers)
        return Extrapolation(layers: g.layers, model_bytes: depth * layerBytes + embeddingBytes,
                             decode_s_per_token: depth * perLayerDecode + output,
                             prefill_s_per_token: depth * perLayerPrefill + output / Double(prefill.tokens),
                             note: quick ? "quick run: small layers, the extrapolation is not meaningful"
                                 : "70 x the measured per-layer time, plus the 150528-row INT4 output projection at the measured q4_row mat-vec rate (once per generated token; once per prompt in prefill)")
    }
}
