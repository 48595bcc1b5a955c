// RankPlacement.swift — which layers each process of a multi-machine pipeline
// (an MPI rank) holds: contiguous stages from the pipeline planner over the
// model's costs, every stage with at least one layer, and each rank's resident
// bytes — its weights plus its sequences' KV caches for its layers — within a
// memory budget per rank. The first rank also holds the embedding, the last
// the output layer (its own copy of a tied table). `glm-run pipeline plan
// --ranks` prints the placement that `--mpi` runs.

import Foundation

public struct RankPlacement: Sendable, Equatable {
    /// Per rank, the model layers it runs.
    public let layers: [Range<Int>]
    public let plan: PipelinePlan
    /// Per rank, its resident bytes as planned (weights and KV caches).
    public var bytes: [Double] { plan.stageBytes }
    /// Per rank, seconds per step (the planner's costs).
    public var seconds: [Double] { plan.stageSeconds }

    /// Layers of item range `r` of CostModel.items (embedding, layers, output).
    static func layers(of r: Range<Int>, layerCount: Int) -> Range<Int> {
        let first = min(max(r.lowerBound, 1), layerCount + 1), end = min(max(r.upperBound, 1), layerCount + 1)
        return (first - 1)..<(end - 1)
    }

    /// `items`: CostModel.items of the model; `kvBytesPerLayer`: one layer's KV caches
    /// for every sequence a rank serves; `memoryPerRank`: nil for no budget.
    public static func place(items: [StageItem], layerCount: Int, ranks: Int, kvBytesPerLayer: Double,
                             memoryPerRank: Double?) throws -> RankPlacement {
        guard ranks >= 1 else { throw PlacementError("at least one rank is needed") }
        guard ranks <= layerCount + 2 else {
            throw PlacementError("\(ranks) ranks but the model has only \(layerCount) layers: a rank holds at least one layer, or the embedding or the output layer alone, so use at most \(layerCount + 2) ranks")
        }
        guard items.count == layerCount + 2 else { throw PlacementError("the costs must list the embedding, \(layerCount) layers and the output layer") }
        let withCaches = items.enumerated().map { i, item in
            (1...layerCount).contains(i) ? StageItem(name: item.name, seconds: item.seconds, bytes: item.bytes + kvBytesPerLayer) : item
        }
        var prefix = [0.0]
        for item in withCaches { prefix.append(prefix.last! + item.bytes) }
        let budget = memoryPerRank ?? .infinity
        let fits = { (r: Range<Int>) in prefix[r.upperBound] - prefix[r.lowerBound] <= budget }
        guard let plan = Partitioner.plan(withCaches, stages: ranks, allowed: fits) else {
            let total = prefix.last!
            throw PlacementError(String(format: "the model needs %.2f GB (weights and KV caches) and does not fit %d ranks of %.2f GB each (smallest even share %.2f GB): add ranks, raise --memory-per-rank, or shorten the context",
                                        total / 1e9, ranks, budget / 1e9, total / Double(ranks) / 1e9))
        }
        return RankPlacement(layers: plan.stages.map { layers(of: $0, layerCount: layerCount) }, plan: plan)
    }

    /// Parses a memory size: a number with B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (of 1024).
    public static func parseBytes(_ text: String) -> Double? {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
                                         ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)),
                  value.isFinite, value > 0 else { return nil }
            return value * scale
        }
        return nil
    }
}

public struct PlacementError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
