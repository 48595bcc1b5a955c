// PipelineCommand.swift — `glm-run pipeline plan|simulate`: split a model into
// pipeline stages from its measured-rate costs, and simulate GPipe and 1F1B
// schedules with an SVG Gantt chart.

import ArgumentParser
import Foundation
import GLMBench
import GLMDistributed
import GLMRuntime
import KernelBridge

struct PipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Plan pipeline stages for a model and simulate schedules.",
        subcommands: [PipelinePlanCommand.self, PipelineSimulateCommand.self, PipelineRunCommand.self, PipelineSyntheticCommand.self]
    )
}

struct PipelineModelOptions: ParsableArguments {
    @Argument(help: "A model file (.gguf) or a named configuration: glm-130b, chatglm-6b.") var model: String
    @Option(help: "Pipeline stages.") var stages = 8
    @Option(help: "Tokens per step: 1 plans for decode, a prompt length for prefill.") var tokens = 1
    @Option(help: "Bits per weight (4.5 for INT4 with its scales, 16 for fp16).") var bits = 4.5
    @Option(help: "FP32 FMA rate in GFLOP/s (default: this project's measured CI machine; see bench).") var gflops = MachineRates.reference.flopsPerSecond / 1e9
    @Option(help: "Read bandwidth in GB/s.") var gbps = MachineRates.reference.bytesPerSecond / 1e9
    @Option(help: "Take the FMA rate and bandwidth from a bench results JSON (bench/results/*.json) instead of --gflops/--gbps.") var benchResults: String?
    @Flag(help: "For a model file: time its embedding, a layer and its output layer on this machine instead of estimating from rates.") var measure = false
    @Flag(help: "Print JSON.") var json = false

    func rates() throws -> MachineRates {
        guard let benchResults else { return MachineRates(flopsPerSecond: gflops * 1e9, bytesPerSecond: gbps * 1e9) }
        guard let data = FileManager.default.contents(atPath: benchResults) else { throw CLIError("\(benchResults): cannot read") }
        return try MachineRates(benchResults: [UInt8](data), file: benchResults)
    }

    func config() throws -> ModelConfig {
        if let named = CostModel.named(model) { return named }
        guard FileManager.default.fileExists(atPath: model) else {
            throw CLIError("\(model): neither a model file nor a known configuration (\(Architectures.presetNames.joined(separator: ", ")))")
        }
        return try GLMModel(path: model).config
    }

    func plan() throws -> ([StageItem], PipelinePlan) {
        guard (1...1024).contains(stages), (1...(1 << 20)).contains(tokens), bits > 0, bits <= 64,
              gflops > 0, gflops.isFinite, gbps > 0, gbps.isFinite else {
            throw ValidationError("--stages must be in 1...1024, --tokens in 1...2^20, --bits in (0, 64], and the rates positive and finite")
        }
        let items: [StageItem]
        if measure {
            guard CostModel.named(model) == nil else { throw ValidationError("--measure needs a model file, not a named configuration") }
            items = try CostModel.measuredItems(try GLMModel(path: model), tokens: tokens)
        } else {
            items = CostModel.items(try config(), tokens: tokens, bitsPerWeight: bits, rates: try rates())
        }
        guard let plan = Partitioner.plan(items, stages: stages) else {
            throw CLIError("cannot split \(items.count) items (embedding, layers, output) into \(stages) stages")
        }
        return (items, plan)
    }
}

struct PipelinePlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Split the model into stages, minimising the slowest stage.",
        discussion: """
        With --ranks: the placement that `mpirun -np RANKS glm-run ... --mpi` runs, one stage per \
        machine, each machine's weights and KV caches within --memory-per-rank, and the predicted \
        tokens per second (decode costs; --tokens N adds a prefill figure).
        """
    )
    @OptionGroup var options: PipelineModelOptions
    @Option(help: "Plan for this many MPI ranks (machines), with their memory and KV caches, instead of --stages.") var ranks: Int?
    @Option(help: "With --ranks: memory each rank may use, e.g. 22GiB (default: no limit).") var memoryPerRank: String?
    @Option(help: "With --ranks: tokens each sequence's KV cache holds (default: the model's context).") var context: Int?
    @Option(help: "With --ranks: sequences each rank holds caches for.") var sequences = 1
    @Option(help: "With --ranks: the KV cache type, f32 or f16.") var kvType: KVCacheType = .default

    func run() throws {
        if let ranks { return try planRanks(ranks) }
        let (items, plan) = try options.plan()
        struct Stage: Encodable { let stage: Int; let layers: Int; let embedding: Bool; let output: Bool; let seconds: Double; let gigabytes: Double }
        let stages = plan.stages.enumerated().map { i, r in
            Stage(stage: i, layers: r.filter { items[$0].name.hasPrefix("layer") }.count, embedding: r.contains(0),
                  output: r.contains(items.count - 1), seconds: plan.stageSeconds[i], gigabytes: plan.stageBytes[i] / 1e9)
        }
        if options.json {
            struct Output: Encodable { let stages: [Stage]; let slowest_s: Double; let balance: Double; let largest_gb: Double }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(Output(stages: stages, slowest_s: plan.slowestSeconds, balance: plan.balance,
                                                             largest_gb: plan.largestBytes / 1e9)), as: UTF8.self))
            return
        }
        for s in stages {
            let extras = [s.embedding ? "embedding" : nil, s.output ? "output layer" : nil].compactMap { $0 }
            print(String(format: "stage %d: %2d layers%@  %8.4f s/step  %7.2f GB", s.stage, s.layers,
                         extras.isEmpty ? "" : " + " + extras.joined(separator: " + "), s.seconds, s.gigabytes))
        }
        print(String(format: "layers per stage: %@; slowest stage %.4f s; balance %.1f%% (mean / slowest); largest stage %.2f GB",
                     stages.map { String($0.layers) }.joined(separator: ", "), plan.slowestSeconds, plan.balance * 100, plan.largestBytes / 1e9))
    }
}

extension PipelinePlanCommand {
    /// The --ranks placement and its predicted throughput.
    func planRanks(_ ranks: Int) throws {
        guard (1...1024).contains(ranks), (1...4096).contains(sequences) else { throw ValidationError("--ranks must be in 1...1024 and --sequences in 1...4096") }
        let budget = try memoryPerRank.map { text -> Double in
            guard let bytes = RankPlacement.parseBytes(text) else { throw ValidationError("--memory-per-rank must be a size such as 22GiB, not '\(text)'") }
            return bytes
        }
        let c = try options.config()
        let capacity = min(context ?? c.contextLength, c.contextLength)
        guard capacity > 0 else { throw ValidationError("--context must be positive") }
        let rates = try options.rates()
        let decode = CostModel.items(c, tokens: 1, bitsPerWeight: options.bits, rates: rates)
        let kv = Double(kvType.bytes(config: c, capacity: capacity, layers: 1)) * Double(sequences)
        let placement = try RankPlacement.place(items: decode, layerCount: c.layers, ranks: ranks, kvBytesPerLayer: kv, memoryPerRank: budget)
        let prefill = options.tokens > 1 ? CostModel.items(c, tokens: options.tokens, bitsPerWeight: options.bits, rates: rates) : nil
        let prefillSeconds = prefill.map { items in placement.plan.stages.map { r in r.reduce(0) { $0 + items[$1].seconds } } }
        let oneSequence = 1 / placement.seconds.reduce(0, +), batched = 1 / (placement.seconds.max() ?? 1)
        if options.json {
            struct Rank: Encodable { let rank: Int; let first_layer: Int; let layers: Int; let embedding: Bool; let output: Bool; let decode_s: Double; let gigabytes: Double }
            struct Output: Encodable { let ranks: [Rank]; let decode_tokens_per_s_one_sequence: Double; let decode_tokens_per_s_batched: Double
                let prefill_tokens_per_s: Double?; let memory_per_rank_gb: Double? }
            let rows = placement.layers.enumerated().map { i, l in
                Rank(rank: i, first_layer: l.lowerBound, layers: l.count, embedding: i == 0, output: i == ranks - 1,
                     decode_s: placement.seconds[i], gigabytes: placement.bytes[i] / 1e9)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let o = Output(ranks: rows, decode_tokens_per_s_one_sequence: oneSequence, decode_tokens_per_s_batched: batched,
                           prefill_tokens_per_s: prefillSeconds.map { Double(options.tokens) / ($0.max() ?? 1) }, memory_per_rank_gb: budget.map { $0 / 1e9 })
            return print(String(decoding: try encoder.encode(o), as: UTF8.self))
        }
        print(String(format: "%@ on %d ranks, %@ weights at %.1f bits, %@ KV cache of %d tokens x %d sequence(s)%@:",
                     options.model, ranks, "\(c.layers)-layer", options.bits, kvType.rawValue, capacity, sequences,
                     budget.map { String(format: ", at most %.2f GB per rank", $0 / 1e9) } ?? ""))
        for (i, layers) in placement.layers.enumerated() {
            let extras = [i == 0 ? "embedding" : nil, i == ranks - 1 ? "output layer" : nil].compactMap { $0 }
            print(String(format: "rank %d: layers %2d..<%-2d (%2d)%@  %8.4f s/token  %7.2f GB", i, layers.lowerBound, layers.upperBound, layers.count,
                         extras.isEmpty ? "" : " + " + extras.joined(separator: " + "), placement.seconds[i], placement.bytes[i] / 1e9))
        }
        print(String(format: "predicted decode: %.2f tokens/s for one sequence (each token passes every rank in turn: %d of %d ranks idle at any time); %.2f tokens/s with %d or more sequences in flight (pipelined, the slowest rank binds)",
                     oneSequence, ranks - 1, ranks, batched, ranks))
        if let prefillSeconds {
            print(String(format: "predicted prefill of %d-token prompts in micro-batches: %.1f tokens/s (the slowest rank binds)",
                         options.tokens, Double(options.tokens) / (prefillSeconds.max() ?? 1)))
        }
        print(String(format: "rates: %.0f GFLOP/s, %.0f GB/s per machine (--bench-results FILE for a machine's own)", rates.flopsPerSecond / 1e9, rates.bytesPerSecond / 1e9))
    }
}

struct PipelineSimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "simulate", abstract: "Simulate GPipe or 1F1B on the planned stages; write a Gantt SVG.")
    @OptionGroup var options: PipelineModelOptions
    @Option(help: "Micro-batches.") var microBatches = 16
    @Option(help: "gpipe or 1f1b.") var schedule = "1f1b"
    @Option(help: "Backward time as a multiple of forward (2 for training; 0 for inference).") var backwardRatio = 2.0
    @Option(help: "Where to write the Gantt chart.") var svg: String?

    func run() throws {
        guard let kind = Schedule(rawValue: schedule.lowercased()) else { throw ValidationError("--schedule must be gpipe or 1f1b") }
        guard (1...4096).contains(microBatches), backwardRatio >= 0, backwardRatio <= 100 else {
            throw ValidationError("--micro-batches must be in 1...4096 and --backward-ratio in 0...100")
        }
        let (_, plan) = try options.plan()
        let result = ScheduleSimulator.simulate(kind, forward: plan.stageSeconds, backward: plan.stageSeconds.map { $0 * backwardRatio },
                                                microBatches: microBatches)
        if let svg {
            try GanttChart.svg(result, title: options.model).write(toFile: svg, atomically: true, encoding: .utf8)
            printError("Gantt chart: \(svg)")
        }
        if options.json {
            struct Output: Encodable { let schedule: String; let stages: Int; let micro_batches: Int; let makespan_s: Double
                let bubble_fraction: Double; let formula_bubble: Double; let peak_activations: [Int] }
            let o = Output(schedule: kind.rawValue, stages: result.stages, micro_batches: microBatches, makespan_s: result.makespan,
                           bubble_fraction: result.bubbleFraction, formula_bubble: result.formulaBubble, peak_activations: result.peakActivations)
            print(String(decoding: try JSONEncoder().encode(o), as: UTF8.self))
        } else {
            print(String(format: "%@, %d stages, %d micro-batches: makespan %.4f s, bubble %.1f%% (equal-stage formula (P-1)/(m+P-1): %.1f%%)",
                         kind.rawValue, result.stages, microBatches, result.makespan, result.bubbleFraction * 100, result.formulaBubble * 100))
            print("peak micro-batches held per stage: \(result.peakActivations.map(String.init).joined(separator: ", "))")
        }
    }
}

struct PipelineRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model's prompt passes pipelined on this machine and compare with the simulator.",
        discussion: """
        Stages are threads bound to their own physical cores; micro-batches are independent prompts. \
        With --mpi (under mpirun) the stages are the job's ranks instead, each holding only its layers: \
        the prompts prefill as micro-batches, then every sequence decodes --decode-steps tokens \
        pipelined (the ranks work on different sequences at once), then one sequence alone; each \
        phase is compared with the simulator fed with the stage times the ranks measured.
        """
    )
    @Argument(help: "The model file (.gguf).") var model: String
    @Option(help: "Pipeline stages.") var stages = 2
    @Option(help: "Micro-batches (prompts).") var microBatches = 8
    @Option(help: "Tokens per prompt.") var tokens = 64
    @Option(help: "With --mpi: tokens each sequence then decodes, pipelined over the sequences, and again for one sequence alone.") var decodeSteps = 8
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var distributed: MPIOptions
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        if distributed.mpi { return try runMPI() }
        let glm = try loadModel(model)
        let cores = try Topology.query().cores
        guard stages > 0, stages <= glm.config.layers, (1...4096).contains(microBatches), tokens > 2, tokens <= glm.config.contextLength else {
            throw ValidationError("need 1 <= stages <= layers, micro-batches > 0 and 2 < tokens <= context")
        }
        let perStage = max(1, cores / stages)
        // stages from the partitioner over the model's costs (embedding and output stay with the first and last stages)
        let items = CostModel.items(glm.config, tokens: tokens, bitsPerWeight: 4.5, rates: .reference)
        guard let plan = Partitioner.plan(items, stages: stages) else { throw CLIError("cannot split into \(stages) stages") }
        let layers = plan.stages.map { r in max(r.lowerBound - 1, 0)..<min(r.upperBound - 1, glm.config.layers) }
        let t = glm.config.tokens
        let textIDs = max(1, Int(t.mask)) // ordinary ids sit below the special tokens
        var prompts: [[Int32]] = []
        for i in 0..<microBatches {
            var ids: [Int32] = []
            for j in 0..<(tokens - 2) { ids.append(Int32((17 + 31 * j + 7 * i) % textIDs)) }
            prompts.append(ids + [t.gmask, t.sop])
        }
        try Threads.configure()
        let sequential = try PipelineRunner.sequential(model: glm, prompts: prompts)
        let piped = try PipelineRunner.run(model: glm, stages: layers, prompts: prompts, coresPerStage: perStage)
        try Threads.configure()
        let simulated = ScheduleSimulator.simulate(.gpipe, forward: piped.stageSeconds, backward: piped.stageSeconds.map { _ in 0 },
                                                   microBatches: microBatches)
        let identical = piped.logits == sequential.logits
        if json {
            struct Output: Encodable { let stages: [[Int]]; let cores_per_stage: Int; let micro_batches: Int; let measured_s: Double
                let simulated_s: Double; let sequential_s: Double; let stage_s: [Double]; let identical_to_sequential: Bool }
            let o = Output(stages: layers.map { [$0.lowerBound, $0.upperBound] }, cores_per_stage: perStage, micro_batches: microBatches,
                           measured_s: piped.seconds, simulated_s: simulated.makespan, sequential_s: sequential.seconds,
                           stage_s: piped.stageSeconds, identical_to_sequential: identical)
            print(String(decoding: try JSONEncoder().encode(o), as: UTF8.self))
        } else {
            print("stages (layers): \(layers.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", ")), \(perStage) core(s) each")
            print(String(format: "per stage, one micro-batch: %@ s", piped.stageSeconds.map { String(format: "%.4f", $0) }.joined(separator: ", ")))
            print(String(format: "pipelined: %.3f s for %d micro-batches (%.1f tokens/s); simulator, same stage costs: %.3f s (measured / simulated %.3f)",
                         piped.seconds, microBatches, Double(microBatches * tokens) / piped.seconds, simulated.makespan, piped.seconds / simulated.makespan))
            print(String(format: "sequential (all cores, one prompt after another): %.3f s; logits identical to sequential: %@",
                         sequential.seconds, identical ? "yes" : "NO"))
        }
        if !identical { throw ExitCode(1) }
    }
}

struct PipelineSyntheticCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthetic",
        abstract: "Write a model file of a named configuration's shape with random weights (for pipeline and MPI measurements).",
        discussion: "Norm weights are 1 and biases 0; the file has no tokenizer (drive it with token ids: logits, pipeline run)."
    )
    @Argument(help: "A named configuration: \(Architectures.presetNames.joined(separator: ", ")).") var preset: String
    @Option(help: "Layers (default: the configuration's own).") var layers: Int?
    @Option(help: "Weight type of the matrices: q4_0, q8_0, f16 or f32.") var type = "q4_0"
    @Option(name: .shortAndLong, help: "The model file to write.") var output: String

    func run() throws {
        guard var c = CostModel.named(preset) else {
            throw ValidationError("unknown configuration '\(preset)' (known: \(Architectures.presetNames.joined(separator: ", ")))")
        }
        guard let stored = GGUFTensorType.allCases.first(where: { $0.name == type }) else {
            throw ValidationError("--type must be one of \(GGUFTensorType.allCases.map(\.name).joined(separator: ", "))")
        }
        if let layers {
            guard (1...1000).contains(layers) else { throw ValidationError("--layers must be in 1...1000") }
            c.layers = layers
        }
        try c.validate(source: preset)
        let start = DispatchTime.now().uptimeNanoseconds
        try SyntheticModelFile.write(c, type: stored, to: output) { name, i, n in
            if i % 8 == 0 || i == n - 1 { printError("[\(i + 1)/\(n)] \(name)") }
        }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        printError(String(format: "wrote %@: %d layers of %@, %.2f GB in %.0f s", output, c.layers, preset, Double(bytes) / 1e9,
                          Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9))
    }
}
