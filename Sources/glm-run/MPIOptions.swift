// MPIOptions.swift — `--mpi` for the commands that run a model: under
// `mpirun -np P`, every rank runs the same command line, holds its own layers
// of the model (placed by the pipeline planner within --memory-per-rank) and
// serves them; rank 0 does the command's work and prints. Without mpirun,
// --mpi is a job of one rank.

import ArgumentParser
import Foundation
import GLMDistributed
import GLMRuntime
import KernelBridge

struct MPIOptions: ParsableArguments {
    @Flag(help: "Run as pipeline stages over the ranks of an MPI job (mpirun -np P glm-run ... --mpi): each rank holds only its own layers; rank 0 prints.")
    var mpi = false

    @Option(help: "With --mpi: the memory each rank may use for its weights and KV caches, e.g. 22GiB or 20GB (default: no limit).")
    var memoryPerRank: String?

    func validate() throws {
        if let memoryPerRank, RankPlacement.parseBytes(memoryPerRank) == nil {
            throw ValidationError("--memory-per-rank must be a size such as 22GiB, 20GB or 512MiB, not '\(memoryPerRank)'")
        }
        if memoryPerRank != nil, !mpi { throw ValidationError("--memory-per-rank needs --mpi") }
    }

    /// Ranks on this machine (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE; 1 without mpirun).
    static var localRanks: Int {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init).map { max(1, $0) } ?? 1
    }

    /// Threads of each rank: --threads, OMP_NUM_THREADS, or this machine's physical cores
    /// shared among its ranks (ranks that share a machine must not oversubscribe it).
    static func configureThreads(_ runtime: RuntimeOptions) throws {
        try runtime.validate()
        if runtime.threads != nil || ProcessInfo.processInfo.environment["OMP_NUM_THREADS"] != nil { return try runtime.apply() }
        let cores = (try? Topology.query().cores) ?? 1
        try Threads.configure(count: max(1, cores / localRanks), bind: runtime.bind)
    }

    /// Runs `body` on rank 0 of a pipeline over `model`; the other ranks serve their stage
    /// until rank 0 is done. Rank 0 stops the pipeline also when `body` throws, so that
    /// no rank is left waiting.
    func run(model: String, runtime: RuntimeOptions, sequences: Int = 1, capacity: Int?,
             _ body: (MPIPipeline) throws -> Void) throws {
        try MPIOptions.configureThreads(runtime)
        var options = MPIPipelineOptions()
        options.sequences = sequences
        options.capacity = capacity
        options.memoryPerRank = memoryPerRank.flatMap(RankPlacement.parseBytes)
        options.fusion = !runtime.noFusion
        options.kvType = runtime.kvType
        let pipeline: MPIPipeline
        do {
            pipeline = try MPIPipeline.start(modelPath: model, kernels: { try runtime.kernelSet() }, options: options)
        } catch let error as MPIPipelineError where error.reported {
            throw ExitCode.failure
        }
        defer { pipeline.finalize() }
        guard pipeline.isDriver else { return pipeline.serve() }
        if runtime.verbose, let placement = pipeline.placement {
            for (rank, layers) in placement.layers.enumerated() {
                printError(String(format: "rank %d: layers %d..<%d, %.2f GB planned", rank, layers.lowerBound, layers.upperBound, placement.bytes[rank] / 1e9))
            }
        }
        do {
            try body(pipeline)
        } catch {
            do { try pipeline.stop() } catch { pipeline.mpi.abort() }
            throw error
        }
        try pipeline.stop()
    }
}
